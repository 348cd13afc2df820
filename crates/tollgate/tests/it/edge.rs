//! Edge key sync through the real binary: an edge token (made by the CLI or an instance admin)
//! reads the snapshot — key hashes, status, expiry, team, allowed routes and models, the route
//! table, never keys or upstreams — and the change feed, and nothing else; revocations, new and
//! deleted keys and route changes reach the feed; the feed is bounded by `retention.edge_changes`
//! and a reader behind it is told to take a new snapshot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, add_key, add_route, cli, cli_json};

fn hash_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The keys of a snapshot or change answer, by hash.
fn keys_by_hash(answer: &Value) -> HashMap<String, Value> {
    answer["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k["key_hash"].as_str().expect("hash").to_owned(), k.clone()))
        .collect()
}

async fn edge_tokens_read_the_key_set_and_its_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let upstream = "http://127.0.0.1:9/secret-upstream-path";
    let svc = add_route(&db, "svc", "/svc", upstream, &[]);
    let llm = add_route(&db, "llm", "/llm", upstream, &["--kind", "openai"]);
    // A model-routed route: its upstream is chosen per call from targets, which an edge cannot do.
    add_route(&db, "routed", "/routed", upstream, &["--kind", "llm"]);
    let (open_id, open_key) = add_key(&db, "open", &[]);
    let (narrow_id, narrow_key) = add_key(
        &db,
        "narrow",
        &["--routes", "svc", "--models", "gpt-4o*,o3"],
    );
    let (revoked_id, revoked_key) = add_key(&db, "revoked", &[]);
    let out = cli(&db, &["key", "revoke", &revoked_id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = cli_json(
        &db,
        &["token", "create-edge", "--name", "cf-worker", "--json"],
    );
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("tge_"), "{created}");
    let server = Server::start(&db, &console_env()).await;
    let edge = Api::with_token(&server, &token);

    // The snapshot: every key by hash, with what decides a call, and the route table.
    let resp = edge.raw(Method::GET, "/api/v1/edge/snapshot", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("body");
    for secret in [&open_key, &narrow_key, &revoked_key, &token] {
        assert!(!text.contains(secret.as_str()), "a secret in the snapshot");
    }
    assert!(
        !text.contains("secret-upstream-path"),
        "an upstream in the snapshot"
    );
    let snapshot: Value = serde_json::from_str(&text).expect("one JSON document");
    let keys = keys_by_hash(&snapshot);
    assert_eq!(keys.len(), 3, "{snapshot}");
    let open = &keys[&hash_of(&open_key)];
    assert_eq!(
        (open["id"].as_i64(), open["status"].as_str()),
        (Some(open_id), Some("active"))
    );
    assert_eq!(open["routes"], Value::Null, "all of its team's routes");
    assert_eq!(open["models"], Value::Null);
    let narrow = &keys[&hash_of(&narrow_key)];
    assert_eq!(narrow["id"].as_i64(), Some(narrow_id));
    assert_eq!(narrow["routes"], json!([svc["id"]]));
    assert_eq!(narrow["models"], json!(["gpt-4o*", "o3"]));
    assert_eq!(narrow["team_id"], open["team_id"]);
    assert_eq!(keys[&hash_of(&revoked_key)]["status"], "revoked");
    let routes: HashMap<&str, &Value> = snapshot["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| (r["name"].as_str().expect("name"), r))
        .collect();
    assert_eq!(routes["svc"]["prefix"], "/svc");
    assert_eq!(routes["llm"]["kind"], "openai");
    assert_eq!(routes["llm"]["id"], llm["id"]);
    assert!(
        !routes.contains_key("routed"),
        "llm routes stay off the edge: {routes:?}"
    );
    let revision = snapshot["revision"].as_i64().expect("revision");

    // Nothing changed yet.
    let quiet = edge
        .ok(
            Method::GET,
            &format!("/api/v1/edge/changes?since={revision}"),
            None,
            200,
        )
        .await;
    assert_eq!(quiet["revision"].as_i64(), Some(revision), "{quiet}");
    assert_eq!(quiet["keys"], json!([]));
    assert_eq!(quiet["routes"], Value::Null);

    // A revocation, a new key, a deleted key and a new route all reach the feed.
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    admin
        .ok(
            Method::POST,
            &format!("/api/v1/keys/{open_id}/revoke"),
            None,
            200,
        )
        .await;
    let team = open["team_id"].as_i64().expect("team");
    let fresh = admin
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": "fresh"})),
            201,
        )
        .await;
    let fresh_key = fresh["key"].as_str().expect("key").to_owned();
    admin
        .ok(
            Method::DELETE,
            &format!("/api/v1/keys/{narrow_id}"),
            None,
            204,
        )
        .await;
    admin
        .ok(
            Method::POST,
            "/api/v1/routes",
            Some(
                json!({"name": "extra", "prefix": "/extra", "upstream_url": "http://127.0.0.1:9"}),
            ),
            201,
        )
        .await;
    let changes = edge
        .ok(
            Method::GET,
            &format!("/api/v1/edge/changes?since={revision}"),
            None,
            200,
        )
        .await;
    let changed = keys_by_hash(&changes);
    assert_eq!(
        changed[&hash_of(&open_key)]["status"],
        "revoked",
        "{changes}"
    );
    assert_eq!(
        changed[&hash_of(&fresh_key)]["status"],
        "active",
        "{changes}"
    );
    assert!(!changed.contains_key(&hash_of(&narrow_key)), "{changes}");
    assert_eq!(changes["removed_keys"], json!([hash_of(&narrow_key)]));
    let names: Vec<&str> = changes["routes"]
        .as_array()
        .expect("the route table, since a route changed")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"extra"), "{names:?}");
    assert!(!names.contains(&"routed"), "{names:?}");
    assert_eq!(changes["more"], false);
    let next = changes["revision"].as_i64().expect("revision");
    assert!(next > revision);
    let after = edge
        .ok(
            Method::GET,
            &format!("/api/v1/edge/changes?since={next}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        (after["keys"].clone(), after["revision"].as_i64()),
        (json!([]), Some(next))
    );

    // Bad revisions are named.
    for since in ["-1", &(next + 1_000_000).to_string(), "soon"] {
        let (status, err) = edge
            .call(
                Method::GET,
                &format!("/api/v1/edge/changes?since={since}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{since}: {err}");
        assert_eq!(err["error"]["field"], "since", "{since}: {err}");
    }

    // The edge token reads nothing else; a team owner cannot read the edge data.
    for path in [
        "/api/v1/keys",
        "/api/v1/auth/me",
        "/api/v1/edge/tokens",
        "/api/usage/stats",
    ] {
        let (status, err) = edge.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {err}");
    }
    let owner = invite_user(&server, &admin, team, "owner@example.com", "owner").await;
    let (status, _) = owner.call(Method::GET, "/api/v1/edge/snapshot", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = owner
        .call(
            Method::POST,
            "/api/v1/edge/tokens",
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only instance admins make edge tokens"
    );

    // Listed for admins without the secret; revoked from the CLI, it stops at once.
    let listed = admin
        .ok(Method::GET, "/api/v1/edge/tokens", None, 200)
        .await;
    assert!(!listed.to_string().contains(&token));
    assert_eq!(listed[0]["name"], "cf-worker");
    assert!(listed[0]["last_used_at"].is_i64(), "{listed}");
    let id = created["id"].as_i64().expect("id").to_string();
    let out = cli(&db, &["token", "revoke-edge", "--id", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, err) = edge.call(Method::GET, "/api/v1/edge/snapshot", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["error"]["code"], "revoked_token");
    let audit = admin
        .ok(Method::GET, "/api/v1/audit?per_page=500", None, 200)
        .await
        .to_string();
    assert!(audit.contains("edge_token.create") && audit.contains("edge_token.revoke"));
}
both_backends!(edge_tokens_read_the_key_set_and_its_changes);

/// `retention.edge_changes` bounds the feed: the retention task drops older changes, a reader
/// behind them is told to take a new snapshot (410 `snapshot_required`), and a reader at the new
/// snapshot's revision follows the feed as before.
async fn the_change_feed_is_pruned_and_a_reader_behind_it_takes_a_snapshot(backend: Backend) {
    let db = TestDb::new(backend).await;
    add_route(&db, "svc", "/svc", "http://127.0.0.1:9", &[]);
    let (key_id, key) = add_key(&db, "kept", &[]);
    let created = cli_json(&db, &["token", "create-edge", "--name", "cf", "--json"]);
    let token = created["token"].as_str().expect("token").to_owned();
    let mut env = console_env();
    env.extend([
        ("TOLLGATE_RETENTION__EDGE_CHANGES", "3s"),
        ("TOLLGATE_RETENTION__CLEANUP_INTERVAL", "1s"),
    ]);
    let server = Server::start(&db, &env).await;
    let edge = Api::with_token(&server, &token);

    // The route's and the key's changes age past 3 s and are dropped: a reader from revision 0
    // is told to take a snapshot, with a status and code of its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        let (status, body) = edge
            .call(Method::GET, "/api/v1/edge/changes?since=0", None)
            .await;
        if status == StatusCode::GONE {
            break body;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(Instant::now() < deadline, "the feed was never pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(err["error"]["code"], "snapshot_required", "{err}");
    let store = db.open().await;
    let pruned = store.edge_feed_pruned_through().await.expect("horizon");
    assert!(pruned > 0, "the horizon moved: {pruned}");
    let kept = store.edge_changes_since(0, 1000).await.expect("feed");
    assert!(
        kept.iter().all(|c| c.revision > pruned),
        "no change at or below the horizon is kept: {kept:?}"
    );

    // The snapshot still has the key, and its revision is past the horizon: the feed from there
    // answers, and a revocation made now reaches it.
    let snapshot = edge
        .ok(Method::GET, "/api/v1/edge/snapshot", None, 200)
        .await;
    assert!(keys_by_hash(&snapshot).contains_key(&hash_of(&key)));
    let revision = snapshot["revision"].as_i64().expect("revision");
    assert!(revision >= pruned, "{revision} < {pruned}");
    let out = cli(&db, &["key", "revoke", &key_id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changes = edge
        .ok(
            Method::GET,
            &format!("/api/v1/edge/changes?since={revision}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        keys_by_hash(&changes)[&hash_of(&key)]["status"],
        "revoked",
        "{changes}"
    );
}
both_backends!(the_change_feed_is_pruned_and_a_reader_behind_it_takes_a_snapshot);

/// Runs one statement with one bound id on the test's database, as a bulk import would.
async fn execute(db: &TestDb, sql: &str, id: i64) {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::query(sql)
                .bind(id)
                .execute(&pool)
                .await
                .expect("bulk insert");
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
            sqlx::query(sql)
                .bind(id)
                .execute(&pool)
                .await
                .expect("bulk insert");
        }
    }
}

/// Keys written in bulk, in one statement each (as an import or a bench does), each take a
/// revision and a feed entry of their own, in id order, on both databases.
async fn keys_written_in_bulk_each_reach_the_feed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (first_id, _) = add_key(&db, "first", &[]);
    let store = db.open().await;
    let before = store.revision().await.expect("revision");
    let bulk = match backend {
        Backend::Sqlite => {
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 500) \
             INSERT INTO api_keys (team_id, name, key_hash, prefix, created_by, created_at, all_routes) \
             SELECT k.team_id, 'bulk-' || i, printf('%064x', i), 'ntk_bulk' || i, 'test', 0, 1 \
             FROM seq, api_keys k WHERE k.id = $1"
        }
        Backend::Postgres => {
            "INSERT INTO api_keys (team_id, name, key_hash, prefix, created_by, created_at, all_routes) \
             SELECT k.team_id, 'bulk-' || i, lpad(to_hex(i), 64, '0'), 'ntk_bulk' || i, 'test', 0, TRUE \
             FROM generate_series(1, 500) AS i, api_keys k WHERE k.id = $1"
        }
    };
    execute(&db, bulk, first_id).await;
    let after = store.revision().await.expect("revision");
    assert_eq!(after - before, 500, "one revision per key");
    let feed = store.edge_changes_since(before, 1000).await.expect("feed");
    assert_eq!(feed.len(), 500);
    let revisions: Vec<i64> = feed.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, ((before + 1)..=after).collect::<Vec<_>>());
    let ids: Vec<i64> = feed.iter().map(|c| c.entity_id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in id order");
    assert!(feed.iter().all(|c| c.key_hash.is_some()));
}
both_backends!(keys_written_in_bulk_each_reach_the_feed);
