//! The embedded web console as the browser fetches it: the app's page at `/` and `/console`, the
//! fallback for the app's own paths, hashed assets cached for a year, ETags, compression, and
//! JSON 404s for the API's paths. The browser flows themselves are in `web/e2e/`.

use reqwest::{StatusCode, header};

use crate::harness::{Backend, Server, TestDb, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_app_is_served_with_fallback_caching_and_compression() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &[]).await;
    let http = client();
    let get = |path: &str| http.get(server.console_url(path)).send();

    let root = get("/").await.expect("GET /");
    assert_eq!(root.status(), StatusCode::OK);
    assert_eq!(root.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(
        root.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let etag = root.headers()[header::ETAG].clone();
    let page = root.text().await.expect("page body");

    // The app's own paths get the same page, at / and under /console; so does /console itself.
    for path in [
        "/keys",
        "/teams/3",
        "/console",
        "/console/analytics?range=7d",
        "/invite/abc",
    ] {
        let resp = get(path).await.expect("app path");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(
            resp.text().await.expect("body"),
            page,
            "{path} serves the app's page"
        );
    }
    // Revalidation by ETag.
    let again = http
        .get(server.console_url("/"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("conditional GET");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // API paths never fall back to the page: unknown ones are JSON 404s, as before.
    for path in ["/api/v1/nope", "/api/nope", "/health/nope", "/metrics/x"] {
        let resp = get(path).await.expect("api path");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    // Writes to an app path are not pages.
    let post = http
        .post(server.console_url("/keys"))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    // A missing hashed asset is a 404, not the page (a stale tab must not execute HTML as JS).
    let missing = get("/assets/index-doesnotexist.js")
        .await
        .expect("missing asset");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    if tollgate_console::ui::BUILT {
        // A built console: its hashed assets are immutable for a year and compressed on request.
        let script = page
            .split('"')
            .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
            .expect("the page loads a hashed script")
            .to_owned();
        let plain = get(&script).await.expect("asset");
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(
            plain.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(
            plain.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap_or("")
                .contains("javascript")
        );
        let size = plain.bytes().await.expect("asset body").len();
        let gz = http
            .get(server.console_url(&script))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .expect("gzip asset");
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let compressed = gz.bytes().await.expect("gzip body").len();
        assert!(compressed * 2 < size, "gzip {compressed} bytes of {size}");
    } else {
        // Built without Node: the page says how to build the console.
        assert!(page.contains("npm --prefix web run build"), "{page}");
    }
}

/// Browsers always accept compression: the streamed downloads (call export, audit CSV) must reach
/// them whole when compressed, exactly as they do uncompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_downloads_arrive_whole_when_compressed() {
    use std::io::Read as _;

    use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
    use crate::harness::{add_key, add_route};

    let db = TestDb::new(Backend::Sqlite).await;
    // Some calls to export: through the ingest API would do, the gateway is simplest here.
    let upstream = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock upstream");
    add_route(&db, "plain", "/plain", &upstream.url(), &[]);
    let (_, key) = add_key(&db, "exporter", &[]);
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookie = admin.cookie.clone().expect("session cookie");
    let http = client();
    for _ in 0..25 {
        let resp = http
            .get(server.url("/plain/static"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("gateway call");
        assert!(resp.status().is_success());
    }
    server.wait_flushed().await;

    for path in [
        "/api/v1/usage/export?dataset=events&format=csv",
        "/api/dashboard/audit-logs?format=csv",
    ] {
        let get = |encoding: &'static str| {
            http.get(server.console_url(path))
                .header(header::COOKIE, &cookie)
                .header(header::ACCEPT_ENCODING, encoding)
                .send()
        };
        let plain = get("identity").await.expect("plain download");
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        let plain = plain.bytes().await.expect("plain body");
        assert!(plain.len() > 100, "{path}: {} bytes", plain.len());
        let gz = get("gzip").await.expect("gzip download");
        assert_eq!(gz.status(), StatusCode::OK, "{path}");
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip", "{path}");
        let gz = gz.bytes().await.expect("gzip body");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut unpacked)
            .expect("a complete gzip stream");
        assert_eq!(
            unpacked,
            plain.to_vec(),
            "{path}: the same download either way"
        );
    }
}
