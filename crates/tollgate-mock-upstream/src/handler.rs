//! One request in, one answer out: routing by path, control headers, and the plain endpoints.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::body::MockBody;
use crate::controls::{Controls, DEFAULT_SSE_EVENTS};
use crate::llm::LlmRequest;
use crate::{Fault, Shared, anthropic, openai};

/// Request bodies beyond this are counted but not kept (LLM bodies must parse whole).
const READ_LIMIT: usize = 64 * 1024 * 1024;

/// The body of `GET /static`.
const STATIC_BODY: &[u8] = br#"{"status":"ok","source":"tollgate-mock-upstream"}"#;

/// Source of `x-mock-body-bytes` bodies up to its size, so they need no allocation.
static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];

const JSON: &str = "application/json";
const OCTET_STREAM: &str = "application/octet-stream";

/// Makes hyper drop the connection without an answer (`x-mock-close`, or a broken request body).
#[derive(Debug)]
pub(crate) struct DropConnection(&'static str);

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DropConnection {}

/// Which answer a request gets, from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Llm(Api),
    Static,
    Sse,
    Echo,
}

/// The LLM APIs the mock imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    ChatCompletions,
    LegacyCompletions,
    Messages,
}

impl Endpoint {
    fn of(method: &Method, path: &str) -> Self {
        match (method, path) {
            (_, "/static") => Self::Static,
            (&Method::GET, "/sse") => Self::Sse,
            (&Method::POST, p) if p.ends_with("/chat/completions") => {
                Self::Llm(Api::ChatCompletions)
            }
            (&Method::POST, p) if p.ends_with("/completions") => Self::Llm(Api::LegacyCompletions),
            (&Method::POST, p) if p.ends_with("/messages") => Self::Llm(Api::Messages),
            _ => Self::Echo,
        }
    }
}

/// Serves one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: http::Request<Incoming>,
) -> Result<Response<MockBody>, DropConnection> {
    let (parts, body) = request.into_parts();
    let (body, body_len) = read_body(body).await?;
    shared.record(&parts, &body, body_len);

    let endpoint = Endpoint::of(&parts.method, parts.uri.path());
    match shared.fault() {
        None => {}
        Some(Fault::Close) => return Err(DropConnection("the mock's fault is to close")),
        Some(Fault::Slow(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = format!("mock upstream answered {status} as its fault");
            let mut response = error(endpoint, status, &message, None);
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return Ok(response);
        }
    }
    let controls = match Controls::from_headers(&parts.headers) {
        Ok(controls) => controls,
        Err(message) => return Ok(error(endpoint, StatusCode::BAD_REQUEST, &message, None)),
    };
    if controls.close {
        return Err(DropConnection("x-mock-close asked to drop the connection"));
    }
    if !controls.latency.is_zero() {
        tokio::time::sleep(controls.latency).await;
    }
    let mut response = match controls.status {
        Some(status) => {
            let message = format!("mock upstream answered {status} as asked by x-mock-status");
            error(endpoint, status, &message, Some(&controls))
        }
        None => answer(endpoint, &parts, &body, &controls).unwrap_or_else(|e| {
            let message = format!("mock upstream could not serialize its answer: {e}");
            error(endpoint, StatusCode::INTERNAL_SERVER_ERROR, &message, None)
        }),
    };
    if controls.hang {
        *response.body_mut() = MockBody::Hang;
    }
    if controls.echo_headers {
        echo_headers(&parts.headers, response.headers_mut());
    }
    Ok(response)
}

/// Copies the request's headers into the answer's, as careless upstreams do (`x-mock-echo-headers`);
/// the ones that frame the message are left out so that the answer stays readable.
fn echo_headers(request: &HeaderMap, response: &mut HeaderMap) {
    for (name, value) in request {
        let framing = matches!(
            name.as_str(),
            "content-length"
                | "content-type"
                | "transfer-encoding"
                | "connection"
                | "keep-alive"
                | "te"
                | "trailer"
                | "upgrade"
                | "proxy-connection"
        );
        if !framing {
            response.append(name.clone(), value.clone());
        }
    }
}

/// Reads the whole request body, keeping at most [`READ_LIMIT`] bytes; returns them and the
/// full length.
async fn read_body(mut body: Incoming) -> Result<(Bytes, u64), DropConnection> {
    // The common single-frame body is kept without a copy.
    let mut single: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| DropConnection("request body broke off"))?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        let kept = single.as_ref().map_or(joined.len(), Bytes::len);
        data.truncate(READ_LIMIT - kept);
        if data.is_empty() {
            continue;
        }
        if let Some(first) = single.take() {
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&data);
        } else if joined.is_empty() {
            single = Some(data);
        } else {
            joined.extend_from_slice(&data);
        }
    }
    Ok((single.unwrap_or_else(|| joined.freeze()), total))
}

/// The regular answer of an endpoint.
fn answer(
    endpoint: Endpoint,
    parts: &Parts,
    body: &Bytes,
    c: &Controls,
) -> serde_json::Result<Response<MockBody>> {
    match endpoint {
        Endpoint::Static => {
            let bytes = c.body_bytes.map_or(Bytes::from_static(STATIC_BODY), filler);
            let kind = if c.body_bytes.is_some() {
                OCTET_STREAM
            } else {
                JSON
            };
            Ok(plain(StatusCode::OK, kind, bytes, c))
        }
        Endpoint::Echo => match c.body_bytes {
            Some(n) => Ok(plain(StatusCode::OK, OCTET_STREAM, filler(n), c)),
            None => Ok(plain(StatusCode::OK, JSON, echo(parts, body)?, c)),
        },
        Endpoint::Sse => {
            let events = (0..c.chunks.unwrap_or(DEFAULT_SSE_EVENTS))
                .map(|i| Bytes::from(format!("id: {i}\ndata: {{\"seq\":{i}}}\n\n")))
                .collect();
            Ok(events_response(events, c))
        }
        Endpoint::Llm(api) => match LlmRequest::parse(body) {
            Ok(llm) => answer_llm(api, &llm, c),
            Err(message) => Ok(error(endpoint, StatusCode::BAD_REQUEST, &message, None)),
        },
    }
}

/// The answer of an LLM API, whole or streamed as the request asked.
fn answer_llm(api: Api, llm: &LlmRequest, c: &Controls) -> serde_json::Result<Response<MockBody>> {
    if llm.stream() {
        let events = match api {
            Api::ChatCompletions => openai::chat_events(llm, c)?,
            Api::LegacyCompletions => openai::legacy_events(llm, c)?,
            Api::Messages => anthropic::message_events(llm, c)?,
        };
        return Ok(events_response(events, c));
    }
    let bytes = match api {
        Api::ChatCompletions => openai::chat_json(llm, c)?,
        Api::LegacyCompletions => openai::legacy_json(llm, c)?,
        Api::Messages => anthropic::message_json(llm, c)?,
    };
    Ok(plain(StatusCode::OK, JSON, bytes, c))
}

/// The echo document: what the mock received.
fn echo(parts: &Parts, body: &Bytes) -> serde_json::Result<Bytes> {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match headers.get_mut(name.as_str()) {
            // Repeated headers fold into one value, as HTTP allows.
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value.into_owned()));
            }
        }
    }
    let doc = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    });
    serde_json::to_vec(&doc).map(Bytes::from)
}

/// `n` bytes of `x`.
fn filler(n: usize) -> Bytes {
    match FILLER.get(..n) {
        Some(slice) => Bytes::from_static(slice),
        None => Bytes::from(vec![b'x'; n]),
    }
}

/// An error answer in the shape the endpoint's clients parse. `controls` pace the body when
/// the error was asked for; refusals of bad control headers ignore them.
fn error(
    endpoint: Endpoint,
    status: StatusCode,
    message: &str,
    controls: Option<&Controls>,
) -> Response<MockBody> {
    let doc = if endpoint == Endpoint::Llm(Api::Messages) {
        let kind = match status.as_u16() {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        json!({"type": "error", "error": {"type": kind, "message": message}})
    } else {
        json!({"error": {"message": message, "type": "mock_error", "param": null, "code": null}})
    };
    let bytes = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Bytes::new()
    } else {
        Bytes::from(doc.to_string())
    };
    let default = Controls::default();
    plain(status, JSON, bytes, controls.unwrap_or(&default))
}

/// A non-SSE answer, cut and paced as the controls ask.
fn plain(status: StatusCode, kind: &'static str, bytes: Bytes, c: &Controls) -> Response<MockBody> {
    let mut response = Response::new(MockBody::split(bytes, c.body_pieces(), c.chunk_delay));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}

/// An SSE answer, one body chunk per event.
fn events_response(events: Vec<Bytes>, c: &Controls) -> Response<MockBody> {
    let mut response = Response::new(MockBody::events(events, c.chunk_delay));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
