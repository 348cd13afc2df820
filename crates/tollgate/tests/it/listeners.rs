//! Both listeners against idle, slow and too many connections, through the real binary: sockets
//! that send nothing (or half a request head) are closed after the header-read timeout, the
//! connection cap refuses extras without stopping real requests, a stalled LLM body gets 408
//! within its deadline, and `/metrics` shows the connection gauge and the refusals.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_mock_upstream::MockUpstream;

use crate::harness::{Backend, Server, TestDb, add_key, add_route, base_env, cli_env, client};

/// Waits until the peer closes `stream` (EOF or reset); returns how long that took.
async fn time_to_close(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0_u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(addr).await.expect("connect"));
    }
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_sockets_are_closed_after_the_header_read_timeout_on_both_listeners() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(
        &db,
        &[
            ("TOLLGATE_GATEWAY__HEADER_READ_TIMEOUT_SECS", "1"),
            ("TOLLGATE_CONSOLE__HEADER_READ_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    for addr in [server.gateway, server.console] {
        let silent = open(addr, 20).await;
        // Slowloris: half a request head, then nothing.
        let mut slow = open(addr, 5).await;
        for stream in &mut slow {
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
        }
        let closes = futures_util::future::join_all(
            silent
                .into_iter()
                .chain(slow)
                .map(|s| time_to_close(s, Duration::from_secs(10))),
        )
        .await;
        for (i, closed) in closes.iter().enumerate() {
            let took = closed.unwrap_or_else(|| panic!("{addr}: socket {i} still open after 10 s"));
            assert!(
                // 1 s timeout; the upper bound leaves room for a loaded machine, far below 10 s.
                took >= Duration::from_millis(800) && took < Duration::from_secs(6),
                "{addr}: socket {i} closed after {took:?}"
            );
        }
    }
    // Every connection is gone again: only the one asking for /metrics is open on the console.
    // The server counts a close a moment after the client sees it, so this waits a little.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.metrics().await;
        let settled = text.contains(r#"tollgate_connections_open{listener="gateway"} 0"#)
            && text.contains(r#"tollgate_connections_open{listener="console"} 1"#);
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections still counted open: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A request that comes at once is still served.
    let ok = client()
        .get(server.console_url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(ok.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_connections_past_the_cap_are_refused_and_real_requests_still_get_answers() {
    const CAP: usize = 20;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(
        &db,
        &[
            ("TOLLGATE_GATEWAY__MAX_CONNECTIONS", "20"),
            ("TOLLGATE_GATEWAY__HEADER_READ_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let idle = open(server.gateway, CAP + 50).await;
    // The cap's extras are accepted and closed at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let refused = server
            .metric(r#"tollgate_connections_refused_total{listener="gateway"}"#)
            .await;
        if refused >= 50.0 {
            break;
        }
        assert!(Instant::now() < deadline, "only {refused} refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_now = server
        .metric(r#"tollgate_connections_open{listener="gateway"}"#)
        .await;
    assert_eq!(open_now, CAP as f64);
    // The console has its own cap and keeps answering while the gateway is full.
    let health = client()
        .get(server.console_url("/health"))
        .send()
        .await
        .expect("console");
    assert_eq!(health.status(), 200);
    // A real call is answered once the idle ones time out (or at once, if a slot is free).
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let answered = loop {
        if let Ok(response) = http.get(server.url("/nowhere")).send().await {
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "no answer within 6 s while {} idle sockets were open",
            CAP + 50
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        answered.status(),
        401,
        "refused for its missing key, as usual"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_llm_body_gets_408_within_the_deadline() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "openai",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    let (_, key) = add_key(&db, "llm", &[]);
    let server = Server::start(&db, &[("TOLLGATE_GATEWAY__BODY_READ_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(server.gateway).await.expect("connect");
    let head = format!(
        "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"model\":\"gpt-4o-mini\","
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0_u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("request_timeout") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "408 after {took:?}"
    );
    assert!(mock.requests().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn bad_listener_settings_are_refused_naming_the_key() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (var, value, named) in [
        (
            "TOLLGATE_CONSOLE__MAX_CONNECTIONS",
            "0",
            "console.max_connections",
        ),
        (
            "TOLLGATE_GATEWAY__HEADER_READ_TIMEOUT_SECS",
            "0",
            "gateway.header_read_timeout_secs",
        ),
        (
            "TOLLGATE_GATEWAY__PEEK_BUDGET_BYTES",
            "10",
            "gateway.peek_budget_bytes",
        ),
        (
            "TOLLGATE_GATEWAY__FAILED_KEY_LOOKUPS_PER_MINUTE",
            "0",
            "gateway.failed_key_lookups_per_minute",
        ),
    ] {
        let out = cli_env(
            &base_env(&db, &[(var, value)]),
            db.dir.path(),
            &["key", "list"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} accepted");
        assert!(stderr.contains(named), "{var}: {stderr}");
    }
}
