//! Usage capture through the real binary: the recorded tokens equal what the upstream reported,
//! for JSON and SSE, OpenAI and Anthropic; estimation when no usage arrives; 499 for hang-ups.

use std::time::Duration;

use futures_util::StreamExt;
use tollgate_core::UsageEvent;
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::harness::{Backend, Server, TestDb, add_key, add_route, client, wait_events};

const USAGE_HEADERS: [(&str, &str); 4] = [
    ("x-mock-prompt-tokens", "123"),
    ("x-mock-completion-tokens", "45"),
    ("x-mock-cached-tokens", "6"),
    ("x-mock-reasoning-tokens", "7"),
];

async fn call(
    server: &Server,
    key: &str,
    path: &str,
    body: serde_json::Value,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut req = client().post(server.url(path)).bearer_auth(key).json(&body);
    for (k, v) in USAGE_HEADERS.iter().chain(extra) {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("request id")
        .to_owned();
    (id, resp.text().await.expect("body"))
}

fn event<'a>(events: &'a [UsageEvent], request_id: &str) -> &'a UsageEvent {
    events
        .iter()
        .find(|e| e.request_id.as_deref() == Some(request_id))
        .expect("event for the request")
}

async fn llm_usage_is_recorded_exactly(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "oai",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    add_route(
        &db,
        "ant",
        "/anthropic",
        &mock.url(),
        &["--kind", "anthropic", "--strip-prefix"],
    );
    let (key_id, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let chat = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let mut streamed = chat.clone();
    streamed["stream"] = true.into();
    let mut with_usage = streamed.clone();
    with_usage["stream_options"] = serde_json::json!({"include_usage": true});
    let claude = serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let mut claude_stream = claude.clone();
    claude_stream["stream"] = true.into();

    let (json_id, _) = call(&server, &key, "/openai/v1/chat/completions", chat, &[]).await;
    let (sse_id, sse_body) = call(
        &server,
        &key,
        "/openai/v1/chat/completions",
        with_usage,
        &[],
    )
    .await;
    assert!(
        sse_body.contains("\"usage\":{"),
        "the client asked for usage and gets it"
    );
    let (injected_id, injected_body) =
        call(&server, &key, "/openai/v1/chat/completions", streamed, &[]).await;
    assert!(
        !injected_body.contains("usage"),
        "a client that did not ask for usage sees none: {injected_body}"
    );
    assert!(
        injected_body.trim_end().ends_with("data: [DONE]"),
        "{injected_body}"
    );
    let (ant_id, _) = call(&server, &key, "/anthropic/v1/messages", claude, &[]).await;
    let (ant_sse_id, _) = call(&server, &key, "/anthropic/v1/messages", claude_stream, &[]).await;

    let store = db.open().await;
    let events = wait_events(store.as_ref(), 5).await;
    for id in [&json_id, &sse_id, &injected_id] {
        let e = event(&events, id);
        assert_eq!(e.model.as_deref(), Some("gpt-4o-mini"), "{id}");
        assert_eq!(
            (e.tokens.prompt, e.tokens.completion, e.tokens.total),
            (123, 45, 168),
            "{id}"
        );
        assert_eq!((e.tokens.cached, e.tokens.reasoning), (6, 7), "{id}");
        assert!(!e.estimated, "{id}");
        assert_eq!(e.key_id, Some(key_id));
        assert_eq!(e.route.as_deref(), Some("oai"));
        assert_eq!(e.status, 200);
        assert!(e.latency_us > 0 && e.upstream_latency_us.is_some());
        // Through the real binary, JSON and streams alike: first byte ≤ last byte ≤ total.
        assert!(
            e.upstream_latency_us <= e.upstream_last_byte_us
                && e.upstream_last_byte_us <= Some(e.latency_us),
            "{e:?}"
        );
    }
    for id in [&ant_id, &ant_sse_id] {
        let e = event(&events, id);
        assert_eq!(e.model.as_deref(), Some("claude-sonnet-4"), "{id}");
        // Anthropic's input_tokens excludes cache reads; tollgate's prompt includes them.
        assert_eq!(
            (e.tokens.prompt, e.tokens.completion, e.tokens.cached),
            (129, 45, 6),
            "{id}"
        );
        assert_eq!(e.tokens.total, 174, "{id}");
        assert!(!e.estimated);
    }
    // The roll-ups agree with the raw rows.
    let rollups = store.rollups(0, i64::MAX).await.expect("rollups");
    let calls: i64 = rollups.iter().map(|r| r.calls).sum();
    let total: i64 = rollups.iter().map(|r| r.total_tokens).sum();
    assert_eq!(calls, 5);
    assert_eq!(total, 168 * 3 + 174 * 2);
    let listed = crate::harness::cli_json(&db, &["key", "list", "--json"]);
    assert!(
        listed[0]["last_used_at"].is_string(),
        "last_used_at moves: {listed}"
    );
}
both_backends!(llm_usage_is_recorded_exactly);

async fn missing_usage_is_estimated_with_the_tokenizer(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "oai",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    let (_, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let text = "The quick brown fox jumps over the lazy dog";
    let prompt = "Tell me about foxes and dogs";
    let body = serde_json::json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": prompt}]});
    let (id, _) = call(
        &server,
        &key,
        "/openai/v1/chat/completions",
        body,
        &[("x-mock-no-usage", "1"), ("x-mock-text", text)],
    )
    .await;
    let store = db.open().await;
    let events = wait_events(store.as_ref(), 1).await;
    let e = event(&events, &id);
    assert!(e.estimated);
    let vocab = tollgate_core::tokenize::Vocabulary::for_model("gpt-4o");
    assert_eq!(
        e.tokens.completion,
        i64::try_from(vocab.count(text)).expect("fits")
    );
    assert_eq!(
        e.tokens.prompt,
        i64::try_from(vocab.count(prompt)).expect("fits")
    );
    assert_eq!(e.tokens.total, e.tokens.prompt + e.tokens.completion);
}
both_backends!(missing_usage_is_estimated_with_the_tokenizer);

async fn a_client_that_hangs_up_is_recorded_as_499(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "s", "/s", &mock.url(), &["--strip-prefix"]);
    let (_, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let resp = client()
        .get(server.url("/s/sse"))
        .bearer_auth(&key)
        .header("x-mock-chunks", "50")
        .header("x-mock-chunk-delay-ms", "100")
        .send()
        .await
        .expect("send");
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    drop(body);
    let store = db.open().await;
    let events = wait_events(store.as_ref(), 1).await;
    assert_eq!(events[0].status, 499, "{:?}", events[0]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.count_usage().await.expect("count"),
        1,
        "recorded once"
    );
}
both_backends!(a_client_that_hangs_up_is_recorded_as_499);
