//! What LLM answers share: the request fields they read and SSE framing.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Model named in answers when the request names none.
const DEFAULT_MODEL: &str = "mock-model";

/// The fields of an LLM request body that shape the answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LlmRequest {
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl LlmRequest {
    /// Parses a request body; an empty body counts as `{}`.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))
    }

    /// The requested model, echoed in the answer.
    pub(crate) fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    /// `"stream": true`.
    pub(crate) fn stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// `"stream_options": {"include_usage": true}`.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// One `data: …\n\n` event with a compact JSON payload.
pub(crate) fn sse_data<T: Serialize>(payload: &T) -> serde_json::Result<Bytes> {
    sse_event(None, payload)
}

/// One SSE event, with an `event:` line when named.
pub(crate) fn sse_event<T: Serialize>(
    event: Option<&str>,
    payload: &T,
) -> serde_json::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    if let Some(event) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(event.as_bytes());
        buf.put_slice(b"\n");
    }
    buf.put_slice(b"data: ");
    let mut writer = buf.writer();
    serde_json::to_writer(&mut writer, payload)?;
    let mut buf = writer.into_inner();
    buf.put_slice(b"\n\n");
    Ok(buf.freeze())
}

/// Seconds since the Unix epoch, for `created`.
#[expect(
    clippy::disallowed_methods,
    reason = "the mock stands in for a provider and shares no code with tollgate"
)]
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
