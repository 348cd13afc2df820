//! The mock upstream seen through real HTTP clients.
// Makes clippy treat the helpers below as test code, where unwrap and panic are allowed.
#![cfg(test)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_mock_upstream::{MockUpstream, RECORDED_BODY_LIMIT};

/// One SSE event: its `event:` name, if any, and its `data:` payload.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

fn parse_sse(text: &str) -> Vec<Event> {
    assert!(
        text.ends_with("\n\n"),
        "stream must end with a blank line: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|block| {
            let mut event = Event {
                name: None,
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event.name = Some(name.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data = data.to_owned();
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            event
        })
        .collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(
    mock: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut request = client().post(format!("{}{path}", mock.url())).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

const USAGE_HEADERS: [(&str, &str); 4] = [
    ("x-mock-prompt-tokens", "100"),
    ("x-mock-completion-tokens", "50"),
    ("x-mock-cached-tokens", "20"),
    ("x-mock-reasoning-tokens", "5"),
];

fn openai_usage() -> Value {
    json!({
        "prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 20},
        "completion_tokens_details": {"reasoning_tokens": 5},
    })
}

#[tokio::test]
async fn openai_json_answer_carries_the_requested_usage() {
    let mock = MockUpstream::start().await.unwrap();
    let mut headers = USAGE_HEADERS.to_vec();
    headers.push(("x-mock-text", "Bonjour à tous"));
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let response = post(&mock, "/v1/chat/completions", &headers, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut doc: Value = response.json().await.unwrap();
    assert!(doc["created"].as_u64().unwrap() > 1_600_000_000);
    doc.as_object_mut().unwrap().remove("created");
    assert_eq!(
        doc,
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bonjour à tous"},
                         "finish_reason": "stop"}],
            "usage": openai_usage(),
        })
    );
}

#[tokio::test]
async fn openai_defaults_without_control_headers() {
    let mock = MockUpstream::start().await.unwrap();
    let response = post(&mock, "/chat/completions", &[], json!({})).await;
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["model"], "mock-model");
    assert_eq!(
        doc["choices"][0]["message"]["content"],
        "Hello from the tollgate mock upstream."
    );
    assert_eq!(doc["usage"]["prompt_tokens"], 11);
    assert_eq!(doc["usage"]["completion_tokens"], 7);
    assert_eq!(doc["usage"]["total_tokens"], 18);
}

#[tokio::test]
async fn openai_stream_without_include_usage_has_no_usage_anywhere() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": []});
    let response = post(&mock, "/v1/chat/completions", &USAGE_HEADERS, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(response.headers().get("content-length").is_none());
    let events = parse_sse(&response.text().await.unwrap());

    let (done, chunks) = events.split_last().unwrap();
    assert_eq!(done.data, "[DONE]");
    let chunks: Vec<Value> = chunks
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    // role, one chunk per word of the default text, finish.
    assert_eq!(chunks.len(), 1 + 6 + 1);
    for chunk in &chunks {
        assert!(chunk.get("usage").is_none(), "{chunk}");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks[1..chunks.len() - 1]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from the tollgate mock upstream.");

    // Compact and in OpenAI's field order.
    let created = chunks[0]["created"].as_u64().unwrap();
    assert_eq!(
        events[events.len() - 2].data,
        format!(
            r#"{{"id":"chatcmpl-mock","object":"chat.completion.chunk","created":{created},"model":"gpt-4o-mini","choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]}}"#
        )
    );
}

#[tokio::test]
async fn openai_stream_with_include_usage_ends_with_a_usage_chunk() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({
        "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": []
    });
    let mut headers = USAGE_HEADERS.to_vec();
    headers.push(("x-mock-chunks", "3"));
    let response = post(&mock, "/v1/chat/completions", &headers, body).await;
    let events = parse_sse(&response.text().await.unwrap());

    let (done, chunks) = events.split_last().unwrap();
    assert_eq!(done.data, "[DONE]");
    let (usage_chunk, chunks) = chunks.split_last().unwrap();
    // role, three content chunks, finish.
    assert_eq!(chunks.len(), 5);
    for chunk in chunks {
        assert!(chunk.data.ends_with(r#","usage":null}"#), "{}", chunk.data);
        let chunk: Value = serde_json::from_str(&chunk.data).unwrap();
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
    }
    let usage_chunk: Value = serde_json::from_str(&usage_chunk.data).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], openai_usage());
    assert_eq!(usage_chunk["id"], "chatcmpl-mock");
}

#[tokio::test]
async fn no_usage_header_removes_usage_from_json_and_streams() {
    let mock = MockUpstream::start().await.unwrap();
    let no_usage = [("x-mock-no-usage", "1")];

    let doc: Value = post(
        &mock,
        "/v1/chat/completions",
        &no_usage,
        json!({"model": "m"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(doc.get("usage").is_none());
    assert_eq!(
        doc["choices"][0]["message"]["content"],
        "Hello from the tollgate mock upstream."
    );

    let body = json!({"stream": true, "stream_options": {"include_usage": true}});
    let text = post(&mock, "/v1/chat/completions", &no_usage, body)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("usage"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));

    let doc: Value = post(&mock, "/v1/messages", &no_usage, json!({"model": "c"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(doc.get("usage").is_none());

    let text = post(&mock, "/v1/messages", &no_usage, json!({"stream": true}))
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("usage"), "{text}");
    assert!(text.contains("event: message_stop"));
}

#[tokio::test]
async fn anthropic_json_answer_carries_the_requested_usage() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []});
    let response = post(&mock, "/v1/messages", &USAGE_HEADERS, body).await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(
        doc,
        json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello from the tollgate mock upstream."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 50,
                      "cache_read_input_tokens": 20, "cache_creation_input_tokens": 0},
        })
    );
}

#[tokio::test]
async fn anthropic_stream_reports_input_at_start_and_output_at_the_end() {
    let mock = MockUpstream::start().await.unwrap();
    let mut headers = USAGE_HEADERS.to_vec();
    headers.push(("x-mock-text", "one two"));
    let body = json!({"model": "claude-haiku", "stream": true, "messages": []});
    let response = post(&mock, "/v1/messages", &headers, body).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let events = parse_sse(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (name, payload) in names.iter().zip(&data) {
        assert_eq!(payload["type"], *name);
    }
    let message = &data[0]["message"];
    assert_eq!(message["model"], "claude-haiku");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 100, "output_tokens": 1,
               "cache_read_input_tokens": 20, "cache_creation_input_tokens": 0})
    );
    let text: String = data[3..5]
        .iter()
        .map(|d| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "one two");
    assert_eq!(data[6]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[6]["usage"], json!({"output_tokens": 50}));
}

#[tokio::test]
async fn legacy_completions_answer_json_and_stream() {
    let mock = MockUpstream::start().await.unwrap();
    let doc: Value = post(
        &mock,
        "/v1/completions",
        &USAGE_HEADERS,
        json!({"model": "davinci"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(doc["object"], "text_completion");
    assert_eq!(
        doc["choices"][0]["text"],
        "Hello from the tollgate mock upstream."
    );
    assert_eq!(doc["usage"], openai_usage());

    let body = json!({"stream": true, "stream_options": {"include_usage": true}});
    let text = post(&mock, "/v1/completions", &USAGE_HEADERS, body)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let usage: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], openai_usage());
}

#[tokio::test]
async fn status_header_answers_an_error_in_the_endpoint_shape() {
    let mock = MockUpstream::start().await.unwrap();
    let response = post(
        &mock,
        "/v1/chat/completions",
        &[("x-mock-status", "429")],
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 429);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["error"]["type"], "mock_error");
    assert!(doc["error"]["message"].as_str().unwrap().contains("429"));

    let response = post(
        &mock,
        "/v1/messages",
        &[("x-mock-status", "529")],
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 529);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["type"], "error");
    assert_eq!(doc["error"]["type"], "overloaded_error");

    let response = client()
        .get(format!("{}/anything", mock.url()))
        .header("x-mock-status", "503")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn bad_control_headers_and_bodies_are_refused_with_a_message() {
    let mock = MockUpstream::start().await.unwrap();
    let response = post(
        &mock,
        "/v1/chat/completions",
        &[("x-mock-latency-ms", "soon")],
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-mock-latency-ms")
    );

    let response = post(
        &mock,
        "/v1/chat/completions",
        &[("x-mock-colour", "red")],
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 400);

    let response = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}

#[tokio::test]
async fn latency_delays_the_head() {
    let mock = MockUpstream::start().await.unwrap();
    let started = Instant::now();
    let response = client()
        .get(format!("{}/static", mock.url()))
        .header("x-mock-latency-ms", "300")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

/// Reads a response chunk by chunk, noting when each arrived.
async fn timed_chunks(mut response: reqwest::Response) -> Vec<(Duration, bytes::Bytes)> {
    let started = Instant::now();
    let mut chunks = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks.push((started.elapsed(), chunk));
    }
    chunks
}

#[tokio::test]
async fn slow_sse_stream_delivers_the_first_event_long_before_the_last() {
    let mock = MockUpstream::start().await.unwrap();
    let response = client()
        .get(format!("{}/sse", mock.url()))
        .header("x-mock-chunks", "4")
        .header("x-mock-chunk-delay-ms", "200")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let chunks = timed_chunks(response).await;
    assert_eq!(chunks.len(), 4);
    assert!(
        chunks[0].0 < Duration::from_millis(150),
        "{:?}",
        chunks[0].0
    );
    // Three 200 ms gaps; a first event held up by a busy machine shortens the span a little,
    // so the bound leaves room for that and still proves the events were spread out.
    assert!(
        chunks[3].0 - chunks[0].0 >= Duration::from_millis(500),
        "{:?}",
        chunks[3].0
    );
    for (i, (_, chunk)) in chunks.iter().enumerate() {
        assert_eq!(
            chunk,
            format!("id: {i}\ndata: {{\"seq\":{i}}}\n\n").as_bytes()
        );
    }
}

#[tokio::test]
async fn slow_llm_stream_paces_its_chunks() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({"model": "m", "stream": true});
    let headers = [("x-mock-chunk-delay-ms", "100"), ("x-mock-chunks", "3")];
    let response = post(&mock, "/v1/chat/completions", &headers, body).await;
    let chunks = timed_chunks(response).await;
    // role, 3 words, finish, [DONE]: 6 events, 5 pauses.
    assert_eq!(chunks.len(), 6);
    assert!(chunks[0].0 < Duration::from_millis(80), "{:?}", chunks[0].0);
    assert!(
        chunks[5].0 - chunks[0].0 >= Duration::from_millis(500),
        "{:?}",
        chunks[5].0
    );
}

#[tokio::test]
async fn plain_bodies_are_cut_and_paced_with_their_length_announced() {
    let mock = MockUpstream::start().await.unwrap();
    let response = client()
        .get(format!("{}/static", mock.url()))
        .header("x-mock-body-bytes", "100000")
        .header("x-mock-chunks", "3")
        .header("x-mock-chunk-delay-ms", "150")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-length"], "100000");
    let chunks = timed_chunks(response).await;
    let total: usize = chunks.iter().map(|(_, c)| c.len()).sum();
    assert_eq!(total, 100_000);
    assert!(chunks.iter().all(|(_, c)| c.iter().all(|b| *b == b'x')));
    let last = chunks.last().unwrap().0;
    assert!(last - chunks[0].0 >= Duration::from_millis(300), "{last:?}");
}

#[tokio::test]
async fn static_answers_a_small_json_body() {
    let mock = MockUpstream::start().await.unwrap();
    let response = client()
        .get(format!("{}/static", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert_eq!(text, r#"{"status":"ok","source":"tollgate-mock-upstream"}"#);
}

#[tokio::test]
async fn echo_returns_what_it_received() {
    let mock = MockUpstream::start().await.unwrap();
    let response = client()
        .put(format!("{}/svc/items/7?sort=asc&x=1", mock.url()))
        .header("x-custom", "one")
        .header("authorization", "Bearer upstream-secret")
        .body("héllo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["method"], "PUT");
    assert_eq!(doc["path"], "/svc/items/7");
    assert_eq!(doc["query"], "sort=asc&x=1");
    assert_eq!(doc["headers"]["x-custom"], "one");
    assert_eq!(doc["headers"]["authorization"], "Bearer upstream-secret");
    assert_eq!(doc["body"], "héllo");

    let doc: Value = client()
        .get(format!("{}/", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["query"], Value::Null);
    assert_eq!(doc["body"], "");

    // GET on an LLM path is not an LLM call.
    let doc: Value = client()
        .get(format!("{}/v1/chat/completions", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["method"], "GET");
}

#[tokio::test]
async fn every_request_is_recorded_with_bodies_cut_at_one_mebibyte() {
    let mock = MockUpstream::start().await.unwrap();
    assert_eq!(mock.request_count(), 0);
    post(
        &mock,
        "/v1/chat/completions?api-version=1",
        &[("x-tag", "a")],
        json!({"model": "m"}),
    )
    .await;
    let big = vec![b'z'; 2 * 1024 * 1024 + 5];
    client()
        .post(format!("{}/upload", mock.url()))
        .body(big)
        .send()
        .await
        .unwrap();

    assert_eq!(mock.request_count(), 2);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/chat/completions?api-version=1");
    assert_eq!(requests[0].header("X-Tag"), Some("a"));
    assert!(
        requests[0]
            .headers
            .contains(&("x-tag".to_owned(), "a".to_owned()))
    );
    assert_eq!(requests[0].body_json().unwrap(), json!({"model": "m"}));
    assert_eq!(requests[1].path, "/upload");
    assert_eq!(requests[1].body.len(), RECORDED_BODY_LIMIT);
    assert_eq!(requests[1].body_len, 2 * 1024 * 1024 + 5);
}

#[tokio::test]
async fn large_llm_bodies_are_still_parsed_whole() {
    let mock = MockUpstream::start().await.unwrap();
    let prompt = "word ".repeat(300_000);
    let body = json!({"model": "big", "messages": [{"role": "user", "content": prompt}]});
    let response = post(&mock, "/v1/chat/completions", &[], body).await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["model"], "big");
}

#[tokio::test]
async fn hang_sends_the_head_and_never_finishes() {
    let mock = MockUpstream::start().await.unwrap();
    let mut response = client()
        .get(format!("{}/static", mock.url()))
        .header("x-mock-hang", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let next = tokio::time::timeout(Duration::from_millis(300), response.chunk()).await;
    assert!(next.is_err(), "the body must not arrive: {next:?}");
}

#[tokio::test]
async fn close_drops_the_connection_without_an_answer() {
    let mock = MockUpstream::start().await.unwrap();
    let result = client()
        .get(format!("{}/static", mock.url()))
        .header("x-mock-close", "1")
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mock = MockUpstream::start().await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let body = r#"{"status":"ok","source":"tollgate-mock-upstream"}"#;
    for _ in 0..3 {
        stream
            .write_all(b"GET /static HTTP/1.1\r\nhost: mock\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(body.as_bytes()) {
            let mut buf = [0; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "connection closed after {answer:?}");
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains(&format!("content-length: {}\r\n", body.len())),
            "{answer}"
        );
    }
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn serves_http2_prior_knowledge() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let mock = MockUpstream::start().await.unwrap();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = format!("{}/static", mock.url()).parse().unwrap();
    let response = client.get(uri).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        br#"{"status":"ok","source":"tollgate-mock-upstream"}"#
    );
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let mock = MockUpstream::start().await.unwrap();
    let addr = mock.addr();
    assert_eq!(mock.url(), format!("http://127.0.0.1:{}", addr.port()));
    mock.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn echo_headers_copies_the_request_headers_into_the_answer() {
    let mock = MockUpstream::start().await.unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/anything", mock.url()))
        .header("authorization", "Bearer sk-echoed")
        .header("x-mock-echo-headers", "1")
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["authorization"], "Bearer sk-echoed");
    // Framing headers stay the answer's own, so it still parses.
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["body"], "12345");
    // Without the control, nothing is echoed.
    let plain = reqwest::get(format!("{}/static", mock.url()))
        .await
        .unwrap();
    assert!(plain.headers().get("authorization").is_none());
}

/// A client trusting `mock`'s self-signed certificate only.
fn tls_client(mock: &MockUpstream) -> reqwest::Client {
    let pem = mock.ca_pem().expect("a TLS mock has a certificate");
    let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM");
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .build()
        .expect("client")
}

#[tokio::test]
async fn tls_offers_h2_by_alpn_and_records_versions_and_connections() {
    use tollgate_mock_upstream::TlsOffer;
    let h2 = MockUpstream::start_tls(TlsOffer::H2AndHttp1)
        .await
        .expect("mock");
    let h1 = MockUpstream::start_tls(TlsOffer::Http1Only)
        .await
        .expect("mock");
    assert!(h2.url().starts_with("https://127.0.0.1:"));
    for (mock, version) in [
        (&h2, reqwest::Version::HTTP_2),
        (&h1, reqwest::Version::HTTP_11),
    ] {
        let client = tls_client(mock);
        for _ in 0..3 {
            let resp = client
                .get(format!("{}/static", mock.url()))
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.version(), version);
            resp.bytes().await.expect("body");
        }
        let requests = mock.requests();
        assert_eq!(requests.len(), 3);
        assert!(
            requests.iter().all(|r| r.version == version),
            "{requests:?}"
        );
        assert_eq!(
            mock.connection_count(),
            1,
            "keep-alive reuses the connection"
        );
    }
    // A client that does not trust the certificate is refused, and nothing is recorded.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert!(untrusting.get(h2.url()).send().await.is_err());
    assert_eq!(h2.request_count(), 3);
    let plain = MockUpstream::start().await.expect("mock");
    assert!(plain.ca_pem().is_none());
    assert!(plain.url().starts_with("http://"));
}
