//! The gateway's path and header rules through the real binary:
//! encoded separators cannot leave a route or reach a more specific one, client forwarding
//! headers are only believed from trusted proxies, and an echoing upstream never hands the
//! injected credential back.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::harness::{
    Backend, Server, TestDb, add_key, add_route, base_env, cli, cli_env, client, wait_events,
};

/// Sends a `GET` byte for byte (an HTTP client would normalise the path) and returns the answer.
async fn raw_get(addr: SocketAddr, target: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: gw\r\n{headers}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read answer");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn encoded_separators_cannot_escape_a_route(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    let base = format!("{}/base", mock.url());
    let admin_base = format!("{}/admin-base", mock.url());
    add_route(&db, "ng", "/ng", &base, &["--strip-prefix"]);
    add_route(
        &db,
        "ng-admin",
        "/ng/admin",
        &admin_base,
        &["--strip-prefix"],
    );
    // A prefix must already be in the normalised form.
    for odd in ["/a%2fb", "/a//b", "/a;b", "/%61"] {
        let out = cli(
            &db,
            &[
                "route",
                "add",
                "--name",
                "odd",
                "--prefix",
                odd,
                "--upstream",
                &mock.url(),
            ],
        );
        assert!(!out.status.success(), "prefix {odd} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(odd), "{odd}: {stderr}");
    }
    let (_, key) = add_key(&db, "ng-only", &["--routes", "ng"]);
    let server = Server::start(&db, &[]).await;
    let auth = format!("Authorization: Bearer {key}\r\n");

    let attacks = [
        ("/ng/..%2finternal/x", 400, "invalid_path"),
        ("/ng/%2e%2e%2finternal/x", 400, "invalid_path"),
        ("/ng/%2e%2e/internal/x", 400, "invalid_path"),
        ("/ng/..%5cinternal/x", 400, "invalid_path"),
        ("/ng/admin%2fx", 400, "invalid_path"),
        ("/ng/%252f..%252finternal", 400, "invalid_path"),
        ("/ng/..;/internal", 400, "invalid_path"),
        ("/ng//admin/x", 403, "route_not_allowed"),
        ("/ng/%61dmin/x", 403, "route_not_allowed"),
    ];
    for (target, status, code) in attacks {
        let answer = raw_get(server.gateway, target, &auth).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{target}: {answer}"
        );
        assert!(
            answer.contains(&format!(r#""code":"{code}""#)),
            "{target}: {answer}"
        );
    }
    assert_eq!(mock.request_count(), 0, "an attack reached the upstream");

    // A path that only needs normalising is forwarded in that form, the query as sent.
    let answer = raw_get(server.gateway, "/ng//%7Eme/%61?q=%2f..", &auth).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/base/~me/a?q=%2f..");
}
both_backends!(encoded_separators_cannot_escape_a_route);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_and_the_credential_through_the_binary() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    let mut env = base_env(&db, &[("UPSTREAM_SECRET", "sk-upstream-echoed-77")]);
    env.retain(|(k, _)| k != "TOLLGATE_GATEWAY_LISTEN" && k != "TOLLGATE_CONSOLE_LISTEN");
    let out = cli_env(
        &env,
        db.dir.path(),
        &[
            "route",
            "add",
            "--name",
            "svc",
            "--prefix",
            "/svc",
            "--upstream",
            &mock.url(),
            "--strip-prefix",
            "--upstream-key-env",
            "UPSTREAM_SECRET",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, key) = add_key(&db, "k", &[]);
    let spoofing = "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\
                    Forwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil.test\r\n\
                    X-Forwarded-Proto: https\r\n";

    // No trusted proxy: the client's forwarding headers are replaced or dropped.
    let mut server = Server::start(&db, &[]).await;
    let answer = raw_get(
        server.gateway,
        "/svc/plain",
        &format!("X-API-Key: {key}\r\nAuthorization: Bearer sk-callers-own\r\n{spoofing}"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = mock.requests().pop().expect("forwarded");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    for gone in ["x-real-ip", "forwarded", "x-forwarded-host"] {
        assert_eq!(seen.header(gone), None, "{gone} was forwarded");
    }
    // The key came in X-API-Key; the route's credential replaced the caller's Authorization.
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-upstream-echoed-77")
    );
    assert!(seen.headers.iter().all(|(_, v)| !v.contains(&key)));

    // An upstream that echoes request headers: the credential never comes back.
    let response = client()
        .get(server.url("/svc/echo"))
        .bearer_auth(&key)
        .header("x-mock-echo-headers", "1")
        .header("x-probe", "back")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-probe"], "back", "the echo works");
    assert!(response.headers().get("authorization").is_none());
    assert!(
        response
            .headers()
            .iter()
            .all(|(_, v)| !String::from_utf8_lossy(v.as_bytes()).contains("sk-upstream-echoed-77")),
        "the credential was handed back: {:?}",
        response.headers()
    );
    assert!(
        !server.logs().contains("sk-upstream-echoed-77"),
        "secrets never logged"
    );
    assert!(server.stop().await);

    // Loopback as a trusted proxy: its list is extended and its client recorded.
    let mut server = Server::start(&db, &[("TOLLGATE_TRUSTED_PROXIES", r#"["127.0.0.1"]"#)]).await;
    let store = db.open().await;
    let before = store.recent_usage(1_000).await.expect("usage").len();
    let answer = raw_get(
        server.gateway,
        "/svc/behind-proxy",
        &format!("Authorization: Bearer {key}\r\n{spoofing}"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = mock.requests().pop().expect("forwarded");
    assert_eq!(seen.header("x-forwarded-for"), Some("6.6.6.6, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), None);
    let events = wait_events(store.as_ref(), before + 1).await;
    let event = events
        .iter()
        .find(|e| e.path == "/svc/behind-proxy")
        .expect("event");
    assert_eq!(event.client_ip.as_deref(), Some("6.6.6.6"));
    assert!(server.stop().await);
}
