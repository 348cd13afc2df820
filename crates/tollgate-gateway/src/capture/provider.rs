//! What a provider supplies to usage capture, and what it writes into.
//!
//! A provider reads its request and answer shapes; everything that does not depend on a shape
//! (SSE framing, copying a JSON answer, holding events back, the tokenizer fallback) is shared.
//! Providers report counts in one vocabulary ([`Counts`]) and say how those become
//! [`TokenUsage`], so the tap settles on usage without knowing which provider spoke.

use std::ops::Range;

use serde_json::{Map, Value};
use tollgate_core::TokenUsage;

use super::lenient::Text;
use super::request::RequestInfo;
use super::text::CappedText;

/// One upstream API's request and answer shapes. Implementations are stateless: what an answer
/// said so far lives in [`Observed`].
pub(super) trait Provider: Sync {
    /// The request members whose text is the prompt, for the tokenizer fallback.
    fn prompt_fields(&self) -> &'static [&'static str];

    /// The request body to forward instead of `body` (whose members are `fields`), when the
    /// request must change for the answer to report its usage; notes the change in `info`.
    fn rewrite_request(
        &self,
        _fields: &Map<String, Value>,
        _body: &[u8],
        _info: &mut RequestInfo,
    ) -> Option<Vec<u8>> {
        None
    }

    /// Whether a streamed answer to `request` carries something the gateway asked for and the
    /// client did not, so its events are held back and edited ([`Provider::hidden_member`]).
    fn hides_injected(&self, _request: &RequestInfo) -> bool {
        false
    }

    /// Reads a whole JSON answer (an object, at most the JSON cap).
    fn read_answer(&self, body: &[u8], seen: &mut Observed);

    /// Reads the data of one SSE event; it starts with `{`.
    fn read_event(&self, data: &[u8], seen: &mut Observed) -> EventFacts;

    /// While hiding: the bytes to cut from the value of an event's only data line.
    fn hidden_member(&self, _value: &[u8]) -> Option<Range<usize>> {
        None
    }

    /// The usage the reported counts stand for; `None` when nothing was reported.
    fn tokens(&self, counts: &Counts) -> Option<TokenUsage>;
}

/// What an SSE event means for the client's copy of the stream.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EventFacts {
    /// The event exists only because the gateway asked for it (OpenAI's usage-only chunk that
    /// `include_usage` adds): while hiding, the client does not get it.
    pub(super) injected: bool,
}

/// Token counts as an upstream reported them so far, in one vocabulary for every provider.
/// Each provider fills the fields it has and turns them into [`TokenUsage`] with
/// [`Provider::tokens`].
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    /// Prompt tokens, as the provider counts them.
    pub(super) input: Option<i64>,
    /// Generated tokens.
    pub(super) output: Option<i64>,
    /// The total, when the provider states one.
    pub(super) total: Option<i64>,
    /// Prompt tokens read from a cache.
    pub(super) cache_read: Option<i64>,
    /// Prompt tokens written to a cache.
    pub(super) cache_write: Option<i64>,
    /// Generated tokens spent on reasoning.
    pub(super) reasoning: Option<i64>,
    /// The final figures arrived (a JSON answer, or the stream's closing usage). A stream cut
    /// before them is estimated from its text when that says more.
    pub(super) complete: bool,
}

/// What the answer said so far.
#[derive(Default)]
pub(super) struct Observed {
    pub(super) model: Option<String>,
    pub(super) counts: Counts,
    /// The assistant's text, for the tokenizer fallback.
    pub(super) text: CappedText,
    /// The upstream answered with an error object: nothing was generated, nothing is estimated.
    pub(super) failed: bool,
    /// Part of the answer could not be read: no estimate could be trusted.
    pub(super) unreadable: bool,
}

impl Observed {
    /// Keeps the first non-empty model the answer names.
    pub(super) fn note_model(&mut self, model: Text<'_>) {
        if self.model.is_none()
            && let Some(model) = model.0
            && !model.is_empty()
        {
            self.model = Some(model.into_owned());
        }
    }

    /// Appends answer text for the tokenizer fallback.
    pub(super) fn note_text(&mut self, text: Text<'_>) {
        if let Some(text) = text.0 {
            self.text.push(&text);
        }
    }
}

impl Counts {
    /// Counts for a provider that states the whole usage at once; they replace earlier figures.
    pub(super) fn whole(tokens: TokenUsage) -> Self {
        Self {
            input: Some(tokens.prompt),
            output: Some(tokens.completion),
            total: Some(tokens.total),
            cache_read: Some(tokens.cached),
            cache_write: None,
            reasoning: Some(tokens.reasoning),
            complete: true,
        }
    }

    /// The usage stored by [`Counts::whole`], if any was.
    pub(super) fn as_whole(&self) -> Option<TokenUsage> {
        Some(TokenUsage {
            prompt: self.input?,
            completion: self.output?,
            total: self.total?,
            cached: self.cache_read?,
            reasoning: self.reasoning?,
        })
    }
}
