//! Anthropic-shaped answers to `POST …/messages`, JSON and SSE.

use bytes::Bytes;
use serde::Serialize;

use crate::controls::Controls;
use crate::llm::{LlmRequest, sse_event};

const MESSAGE_ID: &str = "msg_mock";

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

#[derive(Serialize)]
struct MessageDoc<'a> {
    id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<TextBlock<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// The events of a message stream, tagged by `type` as Anthropic does.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: MessageDoc<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: TextBlock<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: TextDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<OutputUsage>,
    },
    MessageStop,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }
}

fn usage(c: &Controls, output_tokens: u64) -> Option<Usage> {
    (!c.no_usage).then_some(Usage {
        input_tokens: c.prompt_tokens,
        output_tokens,
        cache_read_input_tokens: c.cached_tokens,
        cache_creation_input_tokens: 0,
    })
}

/// `POST …/messages` answered as one JSON document.
pub(crate) fn message_json(req: &LlmRequest, c: &Controls) -> serde_json::Result<Bytes> {
    let doc = MessageDoc {
        id: MESSAGE_ID,
        kind: "message",
        role: "assistant",
        model: req.model(),
        content: vec![TextBlock {
            kind: "text",
            text: c.text(),
        }],
        stop_reason: Some("end_turn"),
        stop_sequence: None,
        usage: usage(c, c.completion_tokens),
    };
    serde_json::to_vec(&doc).map(Bytes::from)
}

/// `POST …/messages` with `stream: true`: `message_start` (input tokens, 1 output token), one
/// text block streamed piece by piece, `message_delta` (output tokens), `message_stop`.
pub(crate) fn message_events(req: &LlmRequest, c: &Controls) -> serde_json::Result<Vec<Bytes>> {
    let pieces = c.text_pieces();
    let start = MessageDoc {
        id: MESSAGE_ID,
        kind: "message",
        role: "assistant",
        model: req.model(),
        content: Vec::new(),
        stop_reason: None,
        stop_sequence: None,
        usage: usage(c, 1),
    };
    let mut events = vec![
        Event::MessageStart { message: start },
        Event::ContentBlockStart {
            index: 0,
            content_block: TextBlock {
                kind: "text",
                text: "",
            },
        },
        Event::Ping,
    ];
    events.extend(pieces.iter().map(|text| Event::ContentBlockDelta {
        index: 0,
        delta: TextDelta {
            kind: "text_delta",
            text,
        },
    }));
    events.push(Event::ContentBlockStop { index: 0 });
    events.push(Event::MessageDelta {
        delta: StopDelta {
            stop_reason: "end_turn",
            stop_sequence: None,
        },
        usage: (!c.no_usage).then_some(OutputUsage {
            output_tokens: c.completion_tokens,
        }),
    });
    events.push(Event::MessageStop);
    events
        .iter()
        .map(|e| sse_event(Some(e.name()), e))
        .collect()
}
