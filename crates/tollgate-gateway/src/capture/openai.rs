//! OpenAI: Chat Completions, legacy completions and the Responses API. A streamed chat or
//! completions request without `stream_options.include_usage` is rewritten to ask for it; the
//! usage-only chunk that adds, and the `"usage":null` it adds to every other chunk, are hidden
//! from the client.

use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use tollgate_core::TokenUsage;

use super::json_edit::{append_member, find_member, key_is, object_members, skip_ws, splice};
use super::lenient::{Count, Text};
use super::provider::{Counts, EventFacts, Observed, Provider};
use super::request::RequestInfo;

/// The OpenAI provider.
pub(super) struct Openai;

impl Provider for Openai {
    fn prompt_fields(&self) -> &'static [&'static str] {
        &["messages", "prompt", "input"]
    }

    fn rewrite_request(
        &self,
        fields: &Map<String, Value>,
        body: &[u8],
        info: &mut RequestInfo,
    ) -> Option<Vec<u8>> {
        // Only chat and legacy completions take `stream_options`; the Responses API (`input`)
        // refuses unknown parameters and reports usage in every stream anyway.
        let asks_usage = fields
            .get("stream_options")
            .and_then(|options| options.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        let completions = fields.contains_key("messages") || fields.contains_key("prompt");
        if !info.stream || !completions || asks_usage {
            return None;
        }
        let rewritten = with_include_usage(body)?;
        info.injected_include_usage = true;
        Some(rewritten)
    }

    fn hides_injected(&self, request: &RequestInfo) -> bool {
        request.injected_include_usage
    }

    fn read_answer(&self, body: &[u8], seen: &mut Observed) {
        if let Ok(body) = serde_json::from_slice::<OpenaiBody<'_>>(body) {
            read_body(body, false, seen);
        }
    }

    fn read_event(&self, data: &[u8], seen: &mut Observed) -> EventFacts {
        match serde_json::from_slice::<OpenaiBody<'_>>(data) {
            Ok(body) => {
                // A chunk with no choices and a usage object: the chunk `include_usage` adds.
                let injected =
                    body.choices.as_ref().is_some_and(Vec::is_empty) && body.usage.is_some();
                read_body(body, true, seen);
                EventFacts { injected }
            }
            Err(_) => EventFacts::default(),
        }
    }

    fn hidden_member(&self, value: &[u8]) -> Option<Range<usize>> {
        null_usage_member(value)
    }

    fn tokens(&self, counts: &Counts) -> Option<TokenUsage> {
        counts.as_whole()
    }
}

fn read_body(body: OpenaiBody<'_>, streaming: bool, seen: &mut Observed) {
    seen.failed |= body.error.is_some();
    seen.note_model(body.model);
    if let Some(usage) = body.usage.as_ref().and_then(OpenaiUsage::tokens) {
        seen.counts = Counts::whole(usage);
    }
    if let Some(response) = body.response {
        seen.note_model(response.model);
        if let Some(usage) = response.usage.as_ref().and_then(OpenaiUsage::tokens) {
            seen.counts = Counts::whole(usage);
        }
    }
    for choice in body.choices.into_iter().flatten() {
        for message in [choice.delta, choice.message].into_iter().flatten() {
            seen.note_text(message.content);
            for call in message.tool_calls.into_iter().flatten() {
                if let Some(function) = call.function {
                    seen.note_text(function.arguments);
                }
            }
        }
        seen.note_text(choice.text);
    }
    if streaming {
        let text_delta = matches!(
            body.event.0.as_deref(),
            Some(
                "response.output_text.delta"
                    | "response.refusal.delta"
                    | "response.function_call_arguments.delta"
            )
        );
        if text_delta {
            seen.note_text(body.delta);
        }
    } else {
        // Streams repeat the whole output in `response.completed`: only answers are read here.
        for item in body.output.into_iter().flatten() {
            seen.note_text(item.content);
            seen.note_text(item.arguments);
        }
    }
}

/// The request body with `stream_options.include_usage` set to `true`, other bytes unchanged.
fn with_include_usage(body: &[u8]) -> Option<Vec<u8>> {
    let open = skip_ws(body, 0);
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let (members, close) = object_members(body, open)?;
    let Some(options) = find_member(body, &members, "stream_options") else {
        let member = br#""stream_options":{"include_usage":true}"#;
        return append_member(body, close, members.is_empty(), member);
    };
    if body.get(options.value.start) != Some(&b'{') {
        // `null` or a wrong type: the upstream would have refused it anyway.
        return splice(body, options.value.clone(), br#"{"include_usage":true}"#);
    }
    let (inner, inner_close) = object_members(body, options.value.start)?;
    match find_member(body, &inner, "include_usage") {
        Some(flag) => splice(body, flag.value.clone(), b"true"),
        None => append_member(
            body,
            inner_close,
            inner.is_empty(),
            br#""include_usage":true"#,
        ),
    }
}

/// The bytes to cut from the JSON object `json` so that its top-level `"usage": null` member
/// disappears together with the comma that separated it.
fn null_usage_member(json: &[u8]) -> Option<Range<usize>> {
    // OpenAI's own layout: the member comes last, compact.
    const TAIL: &[u8] = br#","usage":null}"#;
    if json.ends_with(TAIL) {
        return Some(json.len() - TAIL.len()..json.len() - 1);
    }
    let open = skip_ws(json, 0);
    if json.get(open) != Some(&b'{') {
        return None;
    }
    let (members, _) = object_members(json, open)?;
    let at = members
        .iter()
        .position(|m| key_is(json, m, "usage") && json.get(m.value.clone()) == Some(b"null"))?;
    let member = members.get(at)?;
    Some(
        match (
            at.checked_sub(1).and_then(|p| members.get(p)),
            members.get(at + 1),
        ) {
            (Some(previous), _) => previous.value.end..member.value.end,
            (None, Some(next)) => member.key.start..next.key.start,
            (None, None) => member.key.start..member.value.end,
        },
    )
}

/// An OpenAI answer, stream chunk or Responses API event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiBody<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    #[serde(borrow)]
    choices: Option<Vec<OpenaiChoice<'a>>>,
    usage: Option<OpenaiUsage>,
    /// Responses API event type.
    #[serde(borrow, rename = "type")]
    event: Text<'a>,
    /// Responses API text delta.
    #[serde(borrow)]
    delta: Text<'a>,
    /// Responses API answer items.
    #[serde(borrow)]
    output: Option<Vec<ResponsesItem<'a>>>,
    /// Responses API stream events carry the response here (with its usage at the end).
    #[serde(borrow)]
    response: Option<ResponsesEnvelope<'a>>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiChoice<'a> {
    #[serde(borrow)]
    delta: Option<OpenaiMessage<'a>>,
    #[serde(borrow)]
    message: Option<OpenaiMessage<'a>>,
    /// Legacy completions.
    #[serde(borrow)]
    text: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiMessage<'a> {
    #[serde(borrow)]
    content: Text<'a>,
    #[serde(borrow)]
    tool_calls: Option<Vec<OpenaiToolCall<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiToolCall<'a> {
    #[serde(borrow)]
    function: Option<OpenaiFunction<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiFunction<'a> {
    #[serde(borrow)]
    arguments: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesItem<'a> {
    #[serde(borrow)]
    content: Text<'a>,
    #[serde(borrow)]
    arguments: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesEnvelope<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    usage: Option<OpenaiUsage>,
}

/// OpenAI `usage`, in the Chat Completions or the Responses API naming.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count,
    prompt_tokens_details: Option<UsageDetails>,
    completion_tokens_details: Option<UsageDetails>,
    input_tokens: Count,
    output_tokens: Count,
    input_tokens_details: Option<UsageDetails>,
    output_tokens_details: Option<UsageDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageDetails {
    cached_tokens: Count,
    reasoning_tokens: Count,
}

fn detail(details: Option<&UsageDetails>, pick: fn(&UsageDetails) -> Count) -> i64 {
    details.and_then(|d| pick(d).0).unwrap_or(0)
}

impl OpenaiUsage {
    /// The counts, when the object holds any.
    fn tokens(&self) -> Option<TokenUsage> {
        let (prompt, completion, cached, reasoning) =
            if self.prompt_tokens.0.is_some() || self.completion_tokens.0.is_some() {
                (
                    self.prompt_tokens.0,
                    self.completion_tokens.0,
                    detail(self.prompt_tokens_details.as_ref(), |d| d.cached_tokens),
                    detail(self.completion_tokens_details.as_ref(), |d| {
                        d.reasoning_tokens
                    }),
                )
            } else if self.input_tokens.0.is_some() || self.output_tokens.0.is_some() {
                (
                    self.input_tokens.0,
                    self.output_tokens.0,
                    detail(self.input_tokens_details.as_ref(), |d| d.cached_tokens),
                    detail(self.output_tokens_details.as_ref(), |d| d.reasoning_tokens),
                )
            } else {
                return None;
            };
        let prompt = prompt.unwrap_or(0);
        let completion = completion.unwrap_or(0);
        let total = self
            .total_tokens
            .0
            .unwrap_or(prompt.saturating_add(completion));
        Some(TokenUsage {
            prompt,
            completion,
            total,
            cached,
            reasoning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_usage_member_cuts_only_the_top_level_member() {
        let cases: [(&str, Option<&str>); 7] = [
            (r#"{"a":1,"usage":null}"#, Some(r#"{"a":1}"#)),
            (r#"{"usage":null,"a":1}"#, Some(r#"{"a":1}"#)),
            (
                r#"{ "a": 1 , "usage" : null , "b": [2] }"#,
                Some(r#"{ "a": 1 , "b": [2] }"#),
            ),
            (r#"{"usage":null}"#, Some("{}")),
            (r#"{"a":{"usage":null},"b":"\"usage\":null"}"#, None),
            (r#"{"usage":{"prompt_tokens":1}}"#, None),
            (r#"[DONE]"#, None),
        ];
        for (json, expected) in cases {
            let cut = null_usage_member(json.as_bytes());
            let edited = cut.map(|cut| format!("{}{}", &json[..cut.start], &json[cut.end..]));
            assert_eq!(edited.as_deref(), expected, "{json}");
        }
    }
}
