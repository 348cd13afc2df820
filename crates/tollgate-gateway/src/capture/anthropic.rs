//! Anthropic: the Messages API. A stream reports its input at `message_start` and its output at
//! `message_delta`; the counts are merged field by field as they come.

use serde::Deserialize;
use serde::de::IgnoredAny;
use tollgate_core::TokenUsage;

use super::lenient::{Count, Text};
use super::provider::{Counts, EventFacts, Observed, Provider};

/// The Anthropic provider.
pub(super) struct Anthropic;

impl Provider for Anthropic {
    fn prompt_fields(&self) -> &'static [&'static str] {
        &["system", "messages"]
    }

    fn read_answer(&self, body: &[u8], seen: &mut Observed) {
        if let Ok(body) = serde_json::from_slice::<AnthropicBody<'_>>(body) {
            read_body(body, false, seen);
        }
    }

    fn read_event(&self, data: &[u8], seen: &mut Observed) -> EventFacts {
        if let Ok(body) = serde_json::from_slice::<AnthropicBody<'_>>(data) {
            read_body(body, true, seen);
        }
        EventFacts::default()
    }

    fn tokens(&self, counts: &Counts) -> Option<TokenUsage> {
        if [
            counts.input,
            counts.output,
            counts.cache_read,
            counts.cache_write,
        ]
        .iter()
        .all(Option::is_none)
        {
            return None;
        }
        let cached = counts.cache_read.unwrap_or(0);
        let prompt = counts
            .input
            .unwrap_or(0)
            .saturating_add(cached)
            .saturating_add(counts.cache_write.unwrap_or(0));
        let completion = counts.output.unwrap_or(0);
        Some(TokenUsage {
            prompt,
            completion,
            total: prompt.saturating_add(completion),
            cached,
            reasoning: 0,
        })
    }
}

fn read_body(body: AnthropicBody<'_>, streaming: bool, seen: &mut Observed) {
    seen.failed |= body.error.is_some();
    seen.note_model(body.model);
    if let Some(start) = body.message {
        seen.note_model(start.model);
        if let Some(usage) = &start.usage {
            merge(&mut seen.counts, usage);
        }
    }
    if let Some(usage) = &body.usage {
        merge(&mut seen.counts, usage);
        seen.counts.complete = true;
    }
    if let Some(delta) = body.delta {
        seen.note_text(delta.text);
        seen.note_text(delta.partial_json);
        seen.note_text(delta.thinking);
    }
    if !streaming {
        seen.note_text(body.content);
    }
}

/// Takes the figures a usage object states; the ones it leaves out keep their earlier value
/// (`message_start` first, `message_delta` updates).
fn merge(counts: &mut Counts, usage: &AnthropicUsage) {
    let updates = [
        (&mut counts.input, usage.input_tokens),
        (&mut counts.output, usage.output_tokens),
        (&mut counts.cache_read, usage.cache_read_input_tokens),
        (&mut counts.cache_write, usage.cache_creation_input_tokens),
    ];
    for (slot, value) in updates {
        if value.0.is_some() {
            *slot = value.0;
        }
    }
}

/// An Anthropic message (JSON answer) or stream event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicBody<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    /// The answer's usage, or `message_delta`'s.
    usage: Option<AnthropicUsage>,
    /// The answer's content blocks, joined.
    #[serde(borrow)]
    content: Text<'a>,
    /// `message_start`.
    #[serde(borrow)]
    message: Option<AnthropicStart<'a>>,
    /// `content_block_delta`.
    #[serde(borrow)]
    delta: Option<AnthropicDelta<'a>>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicStart<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicDelta<'a> {
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(borrow)]
    partial_json: Text<'a>,
    #[serde(borrow)]
    thinking: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicUsage {
    input_tokens: Count,
    output_tokens: Count,
    cache_read_input_tokens: Count,
    cache_creation_input_tokens: Count,
}
