//! An alert channel's webhook URL is a credential: stored sealed (the row read directly holds no
//! plaintext), shown only in its display form, opened at send time so deliveries still reach the
//! real receiver (path and query included); a row from before migration 0013 is sealed at the
//! first start with a master key and left (with a warning) without one; `master-key rotate`
//! re-seals it and `store copy` carries it.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::alerts::ALLOW_LOOPBACK;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, base_env, cli_env};

/// The token in the webhook's path and query: it must never show outside the sealed column.
const TOKEN: &str = "xoxsekrit42";

/// Every request's path and query the receiver got.
type Seen = Arc<Mutex<Vec<String>>>;

async fn record(State(seen): State<Seen>, req: Request) -> StatusCode {
    let target = req
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    seen.lock().expect("seen").push(target);
    StatusCode::OK
}

/// A receiver on loopback that answers 200 on every path and keeps what it was sent to.
async fn slack_like_receiver() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// The channel row as stored: plain `url`, `sealed_url`, `url_display`.
type Row = (String, Option<Vec<u8>>, String);

async fn stored(db: &TestDb, id: i64) -> Row {
    let sql = format!("SELECT url, sealed_url, url_display FROM alert_channels WHERE id = {id}");
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::query_as(&sql).fetch_one(&pool).await.expect("row")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
            sqlx::query_as(&sql).fetch_one(&pool).await.expect("row")
        }
    }
}

/// Puts the row back in the state a channel made before migration 0013 has after it: the plain
/// URL in `url`, nothing sealed, no display form.
async fn make_pre_0013(db: &TestDb, id: i64, plain: &str) {
    let sql =
        "UPDATE alert_channels SET url = $1, sealed_url = NULL, url_display = '' WHERE id = $2";
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::query(sql)
                .bind(plain)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
            sqlx::query(sql)
                .bind(plain)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
        }
    }
}

fn holds_token(bytes: &[u8]) -> bool {
    bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes())
}

fn assert_sealed(row: &Row, expected_display: &str) {
    let (plain, sealed, display) = row;
    assert_eq!(plain, "", "the plain URL column is empty");
    let sealed = sealed.as_ref().expect("the URL is sealed");
    assert!(!holds_token(sealed), "the sealed bytes hold no plaintext");
    assert_eq!(display, expected_display);
}

/// Sends a test alert through the console; requires it delivered.
async fn send_test(admin: &Api, id: i64) {
    let done = admin
        .ok(
            Method::POST,
            &format!("/api/v1/alerts/channels/{id}/test"),
            None,
            200,
        )
        .await;
    assert_eq!(done["delivery"]["status"], "delivered", "{done}");
}

fn with_loopback() -> Vec<(&'static str, &'static str)> {
    let mut env = console_env();
    env.push(ALLOW_LOOPBACK);
    env
}

async fn urls_are_sealed_and_shown_masked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (base, seen) = slack_like_receiver().await;
    let webhook = format!("{base}/services/T0AB12CD/B0EF34GH/{TOKEN}?token={TOKEN}");
    let display = format!("{base}/services/T0…/****");
    let server = Server::start(&db, &with_loopback()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let created = admin
        .raw(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(json!({"name": "slack", "url": webhook, "format": "slack"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let text = created.text().await.expect("body");
    assert!(!text.contains(TOKEN), "the create response: {text}");
    let created: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(created["channel"]["url"], display.as_str());
    let id = created["channel"]["id"].as_i64().expect("id");

    let listed = admin
        .raw(Method::GET, "/api/v1/alerts/channels", None)
        .await
        .text()
        .await
        .expect("body");
    assert!(!listed.contains(TOKEN), "the list: {listed}");
    let listed: Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed["channels"][0]["url"], display.as_str());
    assert_sealed(&stored(&db, id).await, &display);

    // The dispatcher opens the sealed URL: the receiver gets the path and query as given.
    send_test(&admin, id).await;
    assert_eq!(
        seen.lock().expect("seen").clone(),
        vec![format!("/services/T0AB12CD/B0EF34GH/{TOKEN}?token={TOKEN}")]
    );
    let deliveries = admin
        .raw(Method::GET, "/api/v1/alerts/deliveries", None)
        .await
        .text()
        .await
        .expect("body");
    assert!(!deliveries.contains(TOKEN), "deliveries: {deliveries}");

    // The CLI shows the display form only, too.
    let out = cli_env(
        &base_env(&db, &[]),
        db.dir.path(),
        &["alert", "channel", "list"],
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains(&display) && !table.contains(TOKEN),
        "{table}"
    );
    let mut server = server;
    assert!(server.stop().await);
    assert!(!server.logs().contains(TOKEN), "the log holds no URL");
}
crate::both_backends!(urls_are_sealed_and_shown_masked);

async fn a_plain_url_from_before_0013_is_sealed_at_start(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (base, seen) = slack_like_receiver().await;
    let webhook = format!("{base}/hooks/{TOKEN}");
    let display = format!("{base}/hooks/xo…");
    let server = Server::start(&db, &with_loopback()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(json!({"name": "ops", "url": webhook})),
            201,
        )
        .await;
    let id = created["channel"]["id"].as_i64().expect("id");
    let mut server = server;
    assert!(server.stop().await);
    make_pre_0013(&db, id, &webhook).await;

    // No master key: the instance starts, says what is left in plaintext, lists the channel by
    // its display form and sends nothing to it; the row is left as it was.
    let mut no_key = base_env(&db, &with_loopback());
    no_key.retain(|(k, _)| k != "TOLLGATE_MASTER_KEY");
    let mut server = Server::start_env(&db, &no_key).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let listed = admin
        .raw(Method::GET, "/api/v1/alerts/channels", None)
        .await
        .text()
        .await
        .expect("body");
    assert!(!listed.contains(TOKEN), "the list: {listed}");
    let listed: Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed["channels"][0]["url"], display.as_str());
    let (status, body) = admin
        .call(
            Method::POST,
            &format!("/api/v1/alerts/channels/{id}/test"),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 409, "{body}");
    assert_eq!(body["error"]["code"], "no_master_key", "{body}");
    assert!(server.stop().await);
    let logs = server.logs();
    assert!(
        logs.contains("webhook URLs are stored in plaintext")
            && logs.contains("TOLLGATE_MASTER_KEY"),
        "{logs}"
    );
    assert!(!logs.contains(TOKEN), "the warning holds no URL");
    assert_eq!(
        stored(&db, id).await,
        (webhook.clone(), None, String::new())
    );

    // With the master key: sealed at start, the plain column cleared, deliveries still arrive.
    let server = Server::start(&db, &with_loopback()).await;
    assert_sealed(&stored(&db, id).await, &display);
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    send_test(&admin, id).await;
    assert_eq!(
        seen.lock().expect("seen").clone(),
        vec![format!("/hooks/{TOKEN}")]
    );
}
crate::both_backends!(a_plain_url_from_before_0013_is_sealed_at_start);

const NEW_MASTER_KEY: &str = "rotated-master-key-for-alert-urls-0123456789";

async fn rotation_reseals_the_url(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (base, seen) = slack_like_receiver().await;
    let webhook = format!("{base}/services/T0/B0/{TOKEN}");
    let server = Server::start(&db, &with_loopback()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(json!({"name": "ops", "url": webhook, "format": "slack"})),
            201,
        )
        .await;
    let id = created["channel"]["id"].as_i64().expect("id");
    let mut server = server;
    assert!(server.stop().await);
    let before = stored(&db, id).await;

    let env = base_env(&db, &[("NEW_KEY", NEW_MASTER_KEY)]);
    let out = cli_env(
        &env,
        db.dir.path(),
        &["master-key", "rotate", "--new-key-env", "NEW_KEY", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rotated["alert_channel_urls"], 1, "{rotated}");
    assert_eq!(rotated["alert_channels"], 1, "{rotated}");
    let after = stored(&db, id).await;
    assert_ne!(after.1, before.1, "sealed again");
    assert_sealed(&after, &before.2);

    let mut with_new = with_loopback();
    with_new.push(("TOLLGATE_MASTER_KEY", NEW_MASTER_KEY));
    let server = Server::start(&db, &with_new).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    send_test(&admin, id).await;
    assert_eq!(
        seen.lock().expect("seen").clone(),
        vec![format!("/services/T0/B0/{TOKEN}")]
    );
}
crate::both_backends!(rotation_reseals_the_url);

/// SQLite → PostgreSQL carries the sealed URL and its display form; it opens on the new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_carries_sealed_urls() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (base, seen) = slack_like_receiver().await;
    let webhook = format!("{base}/hook?token={TOKEN}");
    let server = Server::start(&db, &with_loopback()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(json!({"name": "ops", "url": webhook})),
            201,
        )
        .await;
    let id = created["channel"]["id"].as_i64().expect("id");
    let mut server = server;
    assert!(server.stop().await);
    let source = stored(&db, id).await;

    let pg = TestDb::new(Backend::Postgres).await;
    let out = cli_env(
        &base_env(&db, &[]),
        db.dir.path(),
        &["store", "copy", "--to", &pg.url],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored(&pg, id).await, source);
    assert_sealed(&source, &format!("{base}/hook"));

    let server = Server::start(&pg, &with_loopback()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    send_test(&admin, id).await;
    assert_eq!(
        seen.lock().expect("seen").clone(),
        vec![format!("/hook?token={TOKEN}")]
    );
}
