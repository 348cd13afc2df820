//! Request inspection: the model, the stream flag and the prompt's text from a peeked LLM
//! request body, and the provider's rewrite when the answer would not report its usage.

use std::fmt;

use bytes::Bytes;
use serde_json::Value;
use tollgate_core::RouteKind;

use super::provider_for;
use super::text::CappedText;
/// What the gateway learned from an LLM request body.
#[derive(Clone, Default, PartialEq)]
pub struct RequestInfo {
    /// `model` of the body.
    pub model: Option<String>,
    /// `stream: true`.
    pub stream: bool,
    /// The gateway added `stream_options.include_usage` and must hide the usage-only chunk.
    pub injected_include_usage: bool,
    /// The prompt's text (messages, system, prompt, input), kept only for the estimation fallback.
    pub prompt_text: String,
    /// The most completion tokens the call asks for (`max_tokens`, `max_completion_tokens` or
    /// `max_output_tokens`), for the admission estimate.
    pub max_tokens: Option<u64>,
}

// The prompt can be a megabyte of user text: logs get its size, not its content.
impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("model", &self.model)
            .field("stream", &self.stream)
            .field("injected_include_usage", &self.injected_include_usage)
            .field("prompt_text_bytes", &self.prompt_text.len())
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// Reads an LLM request body that was peeked in full. Returns what it learned and, when the body
/// had to change (OpenAI stream without `include_usage`), the body to forward instead.
pub fn inspect_request(kind: RouteKind, body: &[u8]) -> (RequestInfo, Option<Bytes>) {
    let mut info = RequestInfo::default();
    let Some(provider) = provider_for(kind) else {
        return (info, None);
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return (info, None);
    };
    info.model = fields
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    info.stream = fields.get("stream").and_then(Value::as_bool) == Some(true);
    info.max_tokens = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|name| fields.get(*name).and_then(Value::as_u64));
    let mut prompt = CappedText::default();
    for name in provider.prompt_fields() {
        if let Some(value) = fields.get(*name) {
            collect_prompt(value, &mut prompt);
        }
    }
    info.prompt_text = prompt.text;
    let rewritten = provider
        .rewrite_request(&fields, body, &mut info)
        .map(Bytes::from);
    (info, rewritten)
}

/// Appends the text a prompt value carries: strings, and the `text` / `content` of parts and
/// messages, at any depth (serde_json bounds the depth).
fn collect_prompt(value: &Value, out: &mut CappedText) {
    if out.full {
        return;
    }
    match value {
        Value::String(text) => out.push_piece(text),
        Value::Array(items) => {
            for item in items {
                collect_prompt(item, out);
            }
        }
        Value::Object(fields) => {
            for key in ["text", "content"] {
                if let Some(inner) = fields.get(key) {
                    collect_prompt(inner, out);
                }
            }
        }
        _ => {}
    }
}
