//! Client addresses on the console, through the real binary: the sign-in throttle keys on the
//! address the connection came from, `X-Forwarded-For` / `X-Forwarded-Proto` are believed only
//! from a configured trusted proxy, audit and session rows carry the address, and a stranger
//! hammering an account cannot lock its owner out.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, console_env};
use crate::harness::{Backend, Server, TestDb, cli_json, client};

/// One sign-in attempt, with optional forwarding headers; returns (status, Retry-After, Set-Cookie, body).
async fn sign_in(
    server: &Server,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
    forwarded_proto: Option<&str>,
) -> (StatusCode, Option<String>, Option<String>, Value) {
    let mut req = client()
        .post(server.console_url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    if let Some(proto) = forwarded_proto {
        req = req.header("x-forwarded-proto", proto);
    }
    let resp = req.send().await.expect("sign-in request");
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry = header("retry-after");
    let cookie = header("set-cookie");
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, cookie, body)
}

/// The audit log's sign-in rows as (action, actor, ip), read with an admin token.
async fn sign_in_audit(db: &TestDb, server: &Server) -> Vec<(String, String, Option<String>)> {
    let token = cli_json(
        db,
        &[
            "token",
            "create",
            "--email",
            ADMIN_EMAIL,
            "--name",
            "audit-reader",
            "--json",
        ],
    );
    let page: Value = client()
        .get(server.console_url("/api/v1/audit?per_page=500"))
        .bearer_auth(token["token"].as_str().expect("token"))
        .send()
        .await
        .expect("audit request")
        .json()
        .await
        .expect("audit json");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("auth.login"))
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["actor"].as_str().unwrap_or("").to_owned(),
                e["ip"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The `ip` of the session behind a `Set-Cookie` value, read from the store.
async fn session_ip(db: &TestDb, set_cookie: &str) -> Option<String> {
    let value = set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("tollgate_session="))
        .expect("session cookie");
    let hash = hex::encode(Sha256::digest(value.as_bytes()));
    let store = db.open().await;
    store
        .session_by_hash(&hash)
        .await
        .expect("session lookup")
        .expect("session row")
        .ip
}

/// Without trusted proxies: the peer address is the client, whatever the headers say. 60 failed
/// sign-ins from one address (each to a different account, each claiming a different
/// `X-Forwarded-For`) are refused with 429 after the per-address quota, and every row carries
/// the real peer address.
async fn one_address_is_throttled_and_spoofing_is_ignored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;

    let (status, _, cookie, body) = sign_in(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        Some("198.51.100.200"),
        Some("https"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = cookie.expect("session cookie");
    assert!(
        !cookie.contains("Secure"),
        "X-Forwarded-Proto from an untrusted peer must not count: {cookie}"
    );
    assert_eq!(
        session_ip(&db, &cookie).await.as_deref(),
        Some("127.0.0.1"),
        "the session row carries the peer address, not the claimed one"
    );

    let mut refused = Vec::new();
    let mut first_refusal = None;
    for i in 0..60 {
        let (status, retry, _, body) = sign_in(
            &server,
            &format!("nobody{i}@example.com"),
            "wrong password here",
            Some(&format!("203.0.113.{}", i + 1)),
            None,
        )
        .await;
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                first_refusal.get_or_insert(i);
                assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
                let secs: u64 = retry
                    .as_deref()
                    .and_then(|r| r.parse().ok())
                    .expect("Retry-After in seconds");
                assert!((1..=60).contains(&secs), "Retry-After {secs}");
                refused.push(i);
            }
            other => panic!("attempt {i}: unexpected {other}: {body}"),
        }
    }
    // 20 per minute per address, one more having refilled at most while the first ones hashed.
    // (The sign-in above used one.)
    let first = first_refusal.expect("60 failures from one address must meet a 429");
    assert!(
        (18..=22).contains(&first),
        "the per-address quota (20/min) should bite near the 20th attempt, bit at {first}"
    );
    assert!(
        refused.len() >= 35,
        "most of 60 attempts refused: {}",
        refused.len()
    );
    let hashed = 60 - refused.len();

    let rows = sign_in_audit(&db, &server).await;
    let failed: Vec<_> = rows
        .iter()
        .filter(|(action, _, _)| action == "auth.login_failed")
        .collect();
    assert_eq!(
        failed.len(),
        hashed,
        "every checked failure is audited, refusals before hashing are not"
    );
    for (action, actor, ip) in &rows {
        assert_eq!(
            ip.as_deref(),
            Some("127.0.0.1"),
            "{action} by {actor}: a client's X-Forwarded-For must not be believed"
        );
    }
}
both_backends!(one_address_is_throttled_and_spoofing_is_ignored);

/// With 127.0.0.1 as a trusted proxy: `X-Forwarded-For` names the client. A stranger hammering
/// the admin account from one address is throttled; the owner, from another address, still signs
/// in; rows carry the forwarded addresses; `X-Forwarded-Proto: https` makes the cookie `Secure`.
async fn trusted_proxy_names_the_client_and_owners_are_not_locked_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = console_env();
    env.push(("TOLLGATE_TRUSTED_PROXIES", "[\"127.0.0.1\"]"));
    let server = Server::start(&db, &env).await;

    let stranger = "203.0.113.66";
    let owner = "198.51.100.7";
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (status, _, _, body) = sign_in(
            &server,
            ADMIN_EMAIL,
            "guessing the password",
            Some(&format!("10.9.9.9, {stranger}")),
            None,
        )
        .await;
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}: {body}"
        );
        statuses.push(status);
    }
    let hashed = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        (5..=6).contains(&hashed),
        "5 failures per minute per (account, address), then 429: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));

    // The right password from the stranger's address waits too…
    let (status, _, _, _) = sign_in(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        Some(stranger),
        Some("https"),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // …but the owner, elsewhere, is not locked out.
    let (status, _, cookie, body) = sign_in(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        Some(owner),
        Some("https"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the owner must still sign in: {body}"
    );
    let cookie = cookie.expect("session cookie");
    assert!(
        cookie.contains("Secure"),
        "a trusted proxy's X-Forwarded-Proto: https makes the cookie Secure: {cookie}"
    );
    assert_eq!(session_ip(&db, &cookie).await.as_deref(), Some(owner));

    let rows = sign_in_audit(&db, &server).await;
    let failed_ips: Vec<_> = rows
        .iter()
        .filter(|(action, _, _)| action == "auth.login_failed")
        .map(|(_, _, ip)| ip.as_deref())
        .collect();
    assert_eq!(failed_ips.len(), hashed, "{rows:?}");
    assert!(
        failed_ips.iter().all(|ip| *ip == Some(stranger)),
        "{failed_ips:?}"
    );
    assert!(
        rows.iter()
            .any(|(action, _, ip)| action == "auth.login" && ip.as_deref() == Some(owner)),
        "{rows:?}"
    );
}
both_backends!(trusted_proxy_names_the_client_and_owners_are_not_locked_out);
