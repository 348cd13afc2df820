//! The response tap: watches an answer chunk by chunk as it streams to the client (a copy of a
//! JSON answer, or the SSE reader) and settles on the call's usage when it ends: the counts the
//! upstream reported, else an estimate from the tokenizer when one can be trusted.

use std::fmt;
use std::mem;

use bytes::Bytes;
use tollgate_core::tokenize::count_tokens;
use tollgate_core::{RouteKind, TokenUsage};

use super::provider::{Observed, Provider};
use super::provider_for;
use super::request::RequestInfo;
use super::sse::SseReader;

/// Most bytes of a JSON answer kept to read its `usage`; a larger answer is not counted at all.
pub(super) const JSON_CAP: usize = 8 << 20;

/// A copy of a JSON answer, read once the body has ended.
#[derive(Default)]
struct JsonCopy {
    bytes: Vec<u8>,
    state: JsonState,
}

#[derive(Default, PartialEq)]
enum JsonState {
    /// Nothing but whitespace yet.
    #[default]
    Start,
    Copying,
    /// Not a JSON object (audio, text, …): nothing to read.
    NotObject,
    /// Larger than [`JSON_CAP`].
    TooLarge,
}

impl JsonCopy {
    fn take(&mut self, mut chunk: &[u8]) {
        if self.state == JsonState::Start {
            let Some(first) = chunk.iter().position(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            chunk = &chunk[first..];
            self.state = if chunk[0] == b'{' {
                JsonState::Copying
            } else {
                JsonState::NotObject
            };
        }
        if self.state != JsonState::Copying {
            return;
        }
        if self.bytes.len() + chunk.len() > JSON_CAP {
            self.state = JsonState::TooLarge;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(chunk);
        }
    }
}

enum BodyReader {
    /// Not an LLM route, or the body has ended.
    Done,
    Json(JsonCopy),
    Sse(SseReader),
}

/// What was captured from a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturedUsage {
    /// The model the upstream says answered (falls back to the requested one).
    pub model: Option<String>,
    /// Token counts.
    pub tokens: TokenUsage,
    /// Whether the counts come from the tokenizer rather than the upstream.
    pub estimated: bool,
}

/// Watches a response body chunk by chunk as it streams to the client.
pub struct ResponseTap {
    kind: RouteKind,
    /// `None` for routes whose bodies are not read.
    provider: Option<&'static dyn Provider>,
    request: RequestInfo,
    sse: bool,
    body: BodyReader,
    pub(super) seen: Observed,
    /// The upstream's status was not 2xx: nothing was generated, nothing is estimated.
    error_status: bool,
}

impl fmt::Debug for ResponseTap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reading = match &self.body {
            BodyReader::Done => "done",
            BodyReader::Json(_) => "json",
            BodyReader::Sse(reader) if reader.hide => "sse, hiding injected usage",
            BodyReader::Sse(_) => "sse",
        };
        f.debug_struct("ResponseTap")
            .field("kind", &self.kind)
            .field("request", &self.request)
            .field("reading", &reading)
            .finish_non_exhaustive()
    }
}

impl ResponseTap {
    /// A tap for one response; `sse` when the response is `text/event-stream`.
    pub fn new(kind: RouteKind, request: RequestInfo, sse: bool) -> Self {
        let provider = provider_for(kind);
        let body = match (provider, sse) {
            (None, _) => BodyReader::Done,
            (Some(_), false) => BodyReader::Json(JsonCopy::default()),
            (Some(provider), true) => {
                BodyReader::Sse(SseReader::new(provider, provider.hides_injected(&request)))
            }
        };
        Self {
            kind,
            provider,
            request,
            sse,
            body,
            seen: Observed::default(),
            error_status: false,
        }
    }

    /// Tells the tap the upstream's status: answers that are not 2xx are never estimated
    /// (usage the upstream does report is still taken).
    pub fn set_status(&mut self, status: u16) {
        self.error_status = !(200..300).contains(&status);
    }

    /// Takes one chunk from the upstream and returns what to send to the client now (usually the
    /// same bytes; less when an injected usage-only event is hidden, or a partial line is held).
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        match &mut self.body {
            BodyReader::Done => chunk,
            BodyReader::Json(copy) => {
                copy.take(&chunk);
                chunk
            }
            BodyReader::Sse(reader) => {
                let out = reader.on_chunk(chunk, &mut self.seen);
                if reader.overflowed {
                    self.seen.unreadable = true;
                    self.body = BodyReader::Done;
                }
                out
            }
        }
    }

    /// Called at the end of the upstream body: returns any held bytes to send to the client.
    pub fn flush(&mut self) -> Bytes {
        match mem::replace(&mut self.body, BodyReader::Done) {
            BodyReader::Done => Bytes::new(),
            BodyReader::Json(copy) => {
                match copy.state {
                    JsonState::Copying => {
                        if let Some(provider) = self.provider {
                            provider.read_answer(&copy.bytes, &mut self.seen);
                        }
                    }
                    JsonState::TooLarge => self.seen.unreadable = true,
                    JsonState::Start | JsonState::NotObject => {}
                }
                Bytes::new()
            }
            BodyReader::Sse(mut reader) => reader.end(&mut self.seen),
        }
    }

    /// The usage, once the body has ended (or was cut short), counted now if it must be
    /// estimated (see [`ResponseTap::settle`] to count later).
    pub fn finish(self) -> CapturedUsage {
        match self.settle() {
            Settled::Ready(usage) => usage,
            Settled::Count(counting) => counting.count(),
        }
    }

    /// The usage, once the body has ended (or was cut short): ready when the upstream reported
    /// it (or nothing is to be counted), else the text still to be counted with the tokenizer,
    /// which the caller does off the response's path.
    pub fn settle(mut self) -> Settled {
        self.flush();
        let Self {
            provider,
            request,
            sse,
            seen,
            error_status,
            ..
        } = self;
        let model = seen.model.or(request.model);
        let Some(provider) = provider else {
            return Settled::Ready(CapturedUsage {
                model,
                ..CapturedUsage::default()
            });
        };
        let reported = provider.tokens(&seen.counts);
        match reported {
            // A stream cut before its closing usage (Anthropic's `message_delta`) only reported
            // its opening figures: the streamed text may show more.
            Some(tokens) if sse && !seen.counts.complete => Settled::Count(Counting {
                model,
                reported: Some(tokens),
                prompt: String::new(),
                completion: seen.text.text,
            }),
            Some(tokens) => Settled::Ready(CapturedUsage {
                model,
                tokens,
                estimated: false,
            }),
            None if seen.failed || seen.unreadable || error_status => {
                Settled::Ready(CapturedUsage {
                    model,
                    ..CapturedUsage::default()
                })
            }
            None if model.is_some() || !seen.text.text.is_empty() => Settled::Count(Counting {
                model,
                reported: None,
                prompt: request.prompt_text,
                completion: seen.text.text,
            }),
            None => Settled::Ready(CapturedUsage {
                model,
                ..CapturedUsage::default()
            }),
        }
    }
}

/// A response's usage once its body has ended.
#[derive(Debug)]
pub enum Settled {
    /// Known without counting.
    Ready(CapturedUsage),
    /// To be counted with the tokenizer (which may have to load its vocabulary first).
    Count(Counting),
}

/// The text of a call whose usage the tokenizer must estimate.
pub struct Counting {
    model: Option<String>,
    /// Counts the upstream reported before the stream was cut, if any.
    reported: Option<TokenUsage>,
    prompt: String,
    completion: String,
}

impl fmt::Debug for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The prompt and the answer are the caller's data: only their sizes are shown.
        f.debug_struct("Counting")
            .field("model", &self.model)
            .field("reported", &self.reported)
            .field("prompt_bytes", &self.prompt.len())
            .field("completion_bytes", &self.completion.len())
            .finish()
    }
}

impl Counting {
    /// Counts the text with the model's vocabulary (loading it if needed: call this off the
    /// request path).
    pub fn count(self) -> CapturedUsage {
        let Self {
            model,
            reported,
            prompt,
            completion,
        } = self;
        let count =
            |text: &str| i64::try_from(count_tokens(model.as_deref(), text)).unwrap_or(i64::MAX);
        let (tokens, estimated) = match reported {
            Some(mut tokens) => {
                let counted = count(&completion);
                let estimated = counted > tokens.completion;
                if estimated {
                    tokens.completion = counted;
                    tokens.total = tokens.prompt.saturating_add(counted);
                }
                (tokens, estimated)
            }
            None => {
                let prompt = count(&prompt);
                let completion = count(&completion);
                let total = prompt.saturating_add(completion);
                (
                    TokenUsage {
                        prompt,
                        completion,
                        total,
                        ..TokenUsage::default()
                    },
                    true,
                )
            }
        };
        CapturedUsage {
            model,
            tokens,
            estimated,
        }
    }
}
