//! Ingest replay through the real binary: a signature covers its timestamp
//! and expires after five minutes, and events without an id get one from their content, so a
//! replayed batch counts once.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::console::{INGEST_SECRET, console_env, now_secs, sign_ingest};
use crate::harness::{Backend, Server, TestDb, add_key, client, rollup_calls};

/// Posts `body` to `path` with an optional `(timestamp, signature)` pair.
async fn post(
    server: &Server,
    path: &str,
    body: &str,
    signed: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut req = client()
        .post(server.console_url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some((ts, sig)) = signed {
        if !ts.is_empty() {
            req = req.header("x-tollgate-timestamp", ts);
        }
        req = req.header("x-tollgate-signature", sig);
    }
    let resp = req.send().await.expect("ingest");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn replayed_batches_count_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (_, secret) = add_key(&db, "edge", &[]);
    let server = Server::start(&db, &console_env()).await;
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    let now = tollgate_core::time::now_ms();
    let batch = json!([
        {"ts": now, "key_hash": hash, "method": "POST", "path": "/v1/chat", "status": 200, "latency_ms": 3.0, "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5},
        {"ts": now, "key_hash": hash, "method": "POST", "path": "/v1/chat", "status": 200, "latency_ms": 4.0, "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5},
        {"ts": now + 1, "key_hash": hash, "method": "GET", "path": "/v1/models", "status": 200, "latency_ms": 1.0}
    ])
    .to_string();
    let (ts, sig) = sign_ingest(INGEST_SECRET, now_secs(), batch.as_bytes());
    for attempt in 0..2 {
        let (status, body) = post(&server, "/api/v1/usage/events", &batch, Some((&ts, &sig))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "attempt {attempt}: {body}");
    }
    // A legitimate retry signed afresh, and the same event with its fields in another order.
    let (ts2, sig2) = sign_ingest(INGEST_SECRET, now_secs() + 1, batch.as_bytes());
    let (status, _) = post(&server, "/api/v1/usage/events", &batch, Some((&ts2, &sig2))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reordered = json!([{"completion_tokens": 5, "prompt_tokens": 10, "model": "gpt-4o-mini", "latency_ms": 3.0, "status": 200, "path": "/v1/chat", "method": "post", "key_hash": hash.to_uppercase(), "ts": now}]).to_string();
    let (ts3, sig3) = sign_ingest(INGEST_SECRET, now_secs(), reordered.as_bytes());
    let (status, body) = post(
        &server,
        "/api/v1/usage/events",
        &reordered,
        Some((&ts3, &sig3)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The seed's shape, replayed.
    let log = json!({"token_hash": hash, "route": "/edge/x", "timestamp": now, "response_status": 200, "response_time_ms": 2.5}).to_string();
    let (ts4, sig4) = sign_ingest(INGEST_SECRET, now_secs(), log.as_bytes());
    for _ in 0..2 {
        let (status, body) = post(&server, "/api/usage-log", &log, Some((&ts4, &sig4))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.wait_flushed().await;
    let store = db.open().await;
    let rows = store.recent_usage(100).await.expect("usage");
    assert_eq!(rows.len(), 4, "three events and one edge report: {rows:?}");
    assert_eq!(rollup_calls(store.as_ref()).await, 4, "roll-ups count once");
}
both_backends!(replayed_batches_count_once);

async fn signatures_expire_and_cover_their_timestamp(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let now = tollgate_core::time::now_ms();
    let body =
        json!([{"ts": now, "method": "GET", "path": "/x", "status": 200, "latency_ms": 1.0}])
            .to_string();
    let fresh = now_secs();
    let (_, fresh_sig) = sign_ingest(INGEST_SECRET, fresh, body.as_bytes());
    let (old_ts, old_sig) = sign_ingest(INGEST_SECRET, fresh - 301, body.as_bytes());
    let (future_ts, future_sig) = sign_ingest(INGEST_SECRET, fresh + 400, body.as_bytes());
    let (_, other_body_sig) = sign_ingest(INGEST_SECRET, fresh, b"[]");
    // Signed the old way (the body alone).
    let body_only = format!(
        "sha256={}",
        crate::console::hmac_hex(INGEST_SECRET, body.as_bytes())
    );
    let fresh_text = fresh.to_string();
    let cases: [(&str, &str, &str, &str); 8] = [
        ("", &fresh_sig, "missing_timestamp", "X-Tollgate-Timestamp"),
        ("", &body_only, "missing_timestamp", "X-Tollgate-Timestamp"),
        ("yesterday", &fresh_sig, "invalid_timestamp", "yesterday"),
        ("-5", &fresh_sig, "invalid_timestamp", "unix seconds"),
        (&old_ts, &old_sig, "stale_signature", "s old"),
        (&future_ts, &future_sig, "stale_signature", "in the future"),
        // A captured old request with its timestamp moved forward: the signature no longer fits.
        (&fresh_text, &old_sig, "invalid_signature", "does not match"),
        (
            &fresh_text,
            &other_body_sig,
            "invalid_signature",
            "does not match",
        ),
    ];
    for (ts, sig, code, words) in cases {
        let (status, err) = post(&server, "/api/v1/usage/events", &body, Some((ts, sig))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{ts}: {err}");
        assert_eq!(err["error"]["code"], code, "{ts}: {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{ts}: {message}");
    }
    let (status, err) = post(
        &server,
        "/api/v1/usage/events",
        &body,
        Some((&fresh_text, &fresh_sig)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{err}");
    server.wait_flushed().await;
    let rows = db.open().await.recent_usage(10).await.expect("usage");
    assert_eq!(rows.len(), 1, "refused requests store nothing: {rows:?}");
}
both_backends!(signatures_expire_and_cover_their_timestamp);
