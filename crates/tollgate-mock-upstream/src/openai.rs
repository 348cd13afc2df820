//! OpenAI-shaped answers: chat completions and legacy completions, JSON and SSE.
//!
//! Structs rather than `json!` so that fields come out in OpenAI's order, compactly.

use bytes::Bytes;
use serde::Serialize;

use crate::controls::Controls;
use crate::llm::{LlmRequest, sse_data, unix_now};

const CHAT_ID: &str = "chatcmpl-mock";
const LEGACY_ID: &str = "cmpl-mock";

/// OpenAI's `usage` object.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

fn usage(c: &Controls) -> Option<Usage> {
    (!c.no_usage).then(|| Usage {
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        total_tokens: c.prompt_tokens.saturating_add(c.completion_tokens),
        prompt_tokens_details: PromptDetails {
            cached_tokens: c.cached_tokens,
        },
        completion_tokens_details: CompletionDetails {
            reasoning_tokens: c.reasoning_tokens,
        },
    })
}

#[derive(Serialize)]
struct Completion<'a, C> {
    id: &'static str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// A streamed chunk; `usage` is absent (`None`), `null` (`Some(None)`) or the object.
#[derive(Serialize)]
struct Chunk<'a, C> {
    id: &'static str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChatChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct LegacyChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// `POST …/chat/completions` answered as one JSON document.
pub(crate) fn chat_json(req: &LlmRequest, c: &Controls) -> serde_json::Result<Bytes> {
    let choice = ChatChoice {
        index: 0,
        message: Message {
            role: "assistant",
            content: c.text(),
        },
        finish_reason: "stop",
    };
    let body = Completion {
        id: CHAT_ID,
        object: "chat.completion",
        created: unix_now(),
        model: req.model(),
        choices: vec![choice],
        usage: usage(c),
    };
    serde_json::to_vec(&body).map(Bytes::from)
}

/// `POST …/chat/completions` with `stream: true`: role chunk, one chunk per piece of text, the
/// finish chunk, the usage chunk when `include_usage` was asked for, then `[DONE]`.
pub(crate) fn chat_events(req: &LlmRequest, c: &Controls) -> serde_json::Result<Vec<Bytes>> {
    let created = unix_now();
    let with_usage = req.include_usage() && !c.no_usage;
    let chunk = |delta: Delta<'_>, finish_reason| -> serde_json::Result<Bytes> {
        sse_data(&Chunk {
            id: CHAT_ID,
            object: "chat.completion.chunk",
            created,
            model: req.model(),
            choices: vec![ChatChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: with_usage.then_some(None),
        })
    };
    let pieces = c.text_pieces();
    let mut events = Vec::with_capacity(pieces.len() + 4);
    events.push(chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
        },
        None,
    )?);
    for piece in &pieces {
        events.push(chunk(
            Delta {
                role: None,
                content: Some(piece),
            },
            None,
        )?);
    }
    events.push(chunk(
        Delta {
            role: None,
            content: None,
        },
        Some("stop"),
    )?);
    if with_usage {
        events.push(sse_data(&Chunk::<ChatChunkChoice<'_>> {
            id: CHAT_ID,
            object: "chat.completion.chunk",
            created,
            model: req.model(),
            choices: Vec::new(),
            usage: Some(usage(c)),
        })?);
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(events)
}

/// Legacy `POST …/completions` answered as one JSON document.
pub(crate) fn legacy_json(req: &LlmRequest, c: &Controls) -> serde_json::Result<Bytes> {
    let choice = LegacyChoice {
        text: c.text(),
        index: 0,
        logprobs: None,
        finish_reason: Some("stop"),
    };
    let body = Completion {
        id: LEGACY_ID,
        object: "text_completion",
        created: unix_now(),
        model: req.model(),
        choices: vec![choice],
        usage: usage(c),
    };
    serde_json::to_vec(&body).map(Bytes::from)
}

/// Legacy `POST …/completions` streamed: one chunk per piece, the finish chunk, the usage chunk
/// when asked for, then `[DONE]`.
pub(crate) fn legacy_events(req: &LlmRequest, c: &Controls) -> serde_json::Result<Vec<Bytes>> {
    let created = unix_now();
    let with_usage = req.include_usage() && !c.no_usage;
    let chunk = |choices: Vec<LegacyChoice<'_>>, usage| {
        sse_data(&Chunk {
            id: LEGACY_ID,
            object: "text_completion",
            created,
            model: req.model(),
            choices,
            usage,
        })
    };
    let choice = |text, finish_reason| LegacyChoice {
        text,
        index: 0,
        logprobs: None,
        finish_reason,
    };
    let pieces = c.text_pieces();
    let mut events = Vec::with_capacity(pieces.len() + 3);
    for piece in &pieces {
        events.push(chunk(
            vec![choice(piece, None)],
            with_usage.then_some(None),
        )?);
    }
    events.push(chunk(
        vec![choice("", Some("stop"))],
        with_usage.then_some(None),
    )?);
    if with_usage {
        events.push(chunk(Vec::new(), Some(usage(c)))?);
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(events)
}
