use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_mock_upstream::MockUpstream;

use super::*;
use crate::state::Upstreams;

fn client() -> UpstreamClient {
    Upstreams::new(&[], false)
        .expect("TLS set-up")
        .client(Duration::from_secs(2))
}

fn get(addr: std::net::SocketAddr, path: &str, chunks: Option<usize>) -> Request<UpstreamBody> {
    let mut req = Request::get(format!("http://{addr}{path}"))
        .header(http::header::HOST, addr.to_string())
        .body(UpstreamBody::Empty)
        .expect("request");
    if let Some(chunks) = chunks {
        req.headers_mut()
            .insert("x-mock-chunks", http::HeaderValue::from(chunks));
    }
    req
}

async fn body_text(response: Response<ResponseBody>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("whole body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8 body")
}

#[tokio::test]
async fn calls_one_after_another_share_one_connection() {
    let mock = MockUpstream::start().await.expect("mock");
    let client = client();
    for n in 0..5 {
        let response = client
            .request(get(mock.addr(), "/static", None))
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "call {n}");
        assert!(!body_text(response).await.is_empty());
        // A streamed (chunked) answer too.
        let response = client
            .request(get(mock.addr(), "/sse", Some(3)))
            .await
            .expect("answer");
        let text = body_text(response).await;
        assert_eq!(text.matches("data:").count(), 3, "{text}");
    }
    assert_eq!(mock.connection_count(), 1);
    assert_eq!(mock.request_count(), 10);
}

#[tokio::test]
async fn concurrent_calls_open_connections_that_are_then_reused() {
    let mock = MockUpstream::start().await.expect("mock");
    let client = client();
    for _ in 0..3 {
        let calls = (0..4).map(|_| {
            let client = client.clone();
            let req = get(mock.addr(), "/sse", Some(2));
            async move { body_text(client.request(req).await.expect("answer")).await }
        });
        for text in futures_util::future::join_all(calls).await {
            assert_eq!(text.matches("data:").count(), 2, "{text}");
        }
    }
    assert_eq!(mock.request_count(), 12);
    assert!(
        mock.connection_count() <= 4,
        "{} connections for 4 at a time",
        mock.connection_count()
    );
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let mock = MockUpstream::start().await.expect("mock");
    let client = client();
    let response = client
        .request(get(mock.addr(), "/sse", Some(50)))
        .await
        .expect("answer");
    let mut body = response.into_body();
    body.frame().await.expect("a frame").expect("data");
    drop(body);
    let response = client
        .request(get(mock.addr(), "/sse", Some(2)))
        .await
        .expect("answer");
    assert_eq!(body_text(response).await.matches("data:").count(), 2);
    assert_eq!(
        mock.connection_count(),
        2,
        "the unread connection was reused"
    );
}

/// A loopback upstream that counts the connections it accepts and hands each to `serve`, one
/// at a time, until the returned set is dropped.
async fn counting_upstream<F, Fut>(
    serve: F,
) -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    tokio::task::JoinSet<()>,
)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            serve(socket).await;
        }
    });
    (addr, accepted, tasks)
}

/// An upstream that answers one request per connection with a keep-alive response, then
/// closes the connection (an upstream's idle timeout, shorter than the gateway's).
async fn closing_upstream() -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    tokio::task::JoinSet<()>,
) {
    counting_upstream(|mut socket| async move {
        let mut head = Vec::new();
        let mut buf = [0_u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
    })
    .await
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_used() {
    let (addr, accepted, _upstream) = closing_upstream().await;
    let client = client();
    for _ in 0..3 {
        let response = client.request(get(addr, "/", None)).await.expect("answer");
        assert_eq!(body_text(response).await, "ok");
        // Time for the upstream's close to arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let Err(err) = client().request(get(addr, "/", None)).await else {
        panic!("a call to a closed port was answered");
    };
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn the_request_line_is_in_origin_form_with_the_query() {
    let mock = MockUpstream::start().await.expect("mock");
    let response = client()
        .request(get(mock.addr(), "/static?a=1&b=2", None))
        .await
        .expect("answer");
    body_text(response).await;
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/static?a=1&b=2");
    assert_eq!(
        seen[0].header("host"),
        Some(mock.addr().to_string().as_str())
    );
}

/// Calls that arrive together at an HTTPS upstream wait for one connection attempt; when it
/// fails, they fail with it (a connect error each) instead of each trying again in turn.
#[tokio::test]
async fn calls_waiting_on_a_failed_tls_connection_fail_with_it() {
    // Accepts and closes at once: every TLS handshake fails.
    let (addr, accepted, _upstream) = counting_upstream(|socket| async move { drop(socket) }).await;
    let client = client();
    let calls = (0..20).map(|_| {
        let req = Request::get(format!("https://{addr}/"))
            .body(UpstreamBody::Empty)
            .expect("request");
        client.request(req)
    });
    for result in futures_util::future::join_all(calls).await {
        let Err(err) = result else {
            panic!("a call to an upstream that closes every connection was answered");
        };
        assert!(err.is_connect(), "{err:?}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one attempt for the 20 calls"
    );
    // A later call tries again.
    let req = Request::get(format!("https://{addr}/"))
        .body(UpstreamBody::Empty)
        .expect("request");
    assert!(client.request(req).await.is_err());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A call's future holds the upstream request's future, and moves it a few times while it is
/// made: the TLS and h2 handshakes (about 8 KiB of state) are boxed so that plain calls do not
/// carry and copy them.
#[test]
fn the_request_future_stays_small() {
    let client = client();
    let fut = client.request(get(
        std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        "/",
        None,
    ));
    let size = std::mem::size_of_val(&fut);
    assert!(size <= 3 * 1024, "the request future is {size} bytes");
}
