//! Platform conventions and seed workflows: `DATABASE_URL` and `PORT` as hosting platforms inject
//! them, the seeds' page addresses, and token estimation and session import over REST.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, base_env, cli_env, client, command};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `base_env` without the `TOLLGATE_` forms of the store and the console listener, plus `extra`.
fn platform_env(db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = base_env(db, &[]);
    env.retain(|(k, _)| k != "TOLLGATE_DATABASE_URL" && k != "TOLLGATE_CONSOLE_LISTEN");
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn config_of(env: &[(String, String)], db: &TestDb) -> Value {
    let out = cli_env(env, db.dir.path(), &["config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("config JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_variables_fill_in_for_the_tollgate_ones() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pg = "postgres://app:platform-secret@127.0.0.1:5999/app";
    let env = platform_env(&db, &[("DATABASE_URL", pg), ("PORT", "4321")]);
    let config = config_of(&env, &db);
    assert_eq!(
        config["database_url"],
        "postgres://app:[redacted]@127.0.0.1:5999/app"
    );
    assert_eq!(config["console_listen"], "0.0.0.0:4321");
    assert!(!config.to_string().contains("platform-secret"));

    // The TOLLGATE_ forms win when both are set.
    let mut both = env.clone();
    both.push(("TOLLGATE_DATABASE_URL".into(), db.url.clone()));
    both.push(("TOLLGATE_CONSOLE_LISTEN".into(), "127.0.0.1:4999".into()));
    let config = config_of(&both, &db);
    assert_eq!(config["database_url"], db.url.as_str());
    assert_eq!(config["console_listen"], "127.0.0.1:4999");

    // A PORT that is not a port is named.
    for bad in ["http", "0", "70000"] {
        let env = platform_env(&db, &[("PORT", bad)]);
        let out = cli_env(&env, db.dir.path(), &["config"]);
        assert!(!out.status.success(), "PORT={bad}");
        let err = text(&out.stderr);
        assert!(err.contains("PORT") && err.contains(bad), "{err}");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits for `ready` to appear and returns the console address it names.
async fn wait_ready(child: &mut Child, ready: &std::path::Path) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(body) = std::fs::read_to_string(ready)
            && let Ok(v) = serde_json::from_str::<Value>(&body)
        {
            return v["console"]
                .as_str()
                .expect("console")
                .parse()
                .expect("addr");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tollgate serve exited with {status}");
        }
        assert!(Instant::now() < deadline, "serve not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn database_url_and_port_run_a_server(backend: Backend) {
    let db = TestDb::new(backend).await;
    let port = free_port();
    let port_text = port.to_string();
    let env = platform_env(&db, &[("DATABASE_URL", &db.url), ("PORT", &port_text)]);
    // The CLI writes to the store DATABASE_URL names…
    let out = cli_env(
        &env,
        db.dir.path(),
        &["key", "create", "--name", "from-platform", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = db.open().await;
    let keys = store.list_keys(None).await.expect("keys");
    assert!(keys.iter().any(|k| k.name == "from-platform"));
    // …and `serve` uses it, with the console on every interface at PORT.
    let ready = db.dir.path().join("ready.json");
    let mut child = command(&env, db.dir.path())
        .args(["serve", "--ready-file"])
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let console = wait_ready(&mut child, &ready).await;
    assert_eq!(console, SocketAddr::from(([0, 0, 0, 0], port)));
    let health = client()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !db.dir.path().join("data").join("tollgate.db").exists(),
        "no SQLite store beside the one DATABASE_URL names"
    );
}
both_backends!(database_url_and_port_run_a_server);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_page_addresses_lead_to_their_pages() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &[]).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (old, new) in [
        ("/dashboard", "/"),
        ("/system-health", "/system"),
        ("/audit-logs?action=key.create", "/audit?action=key.create"),
        ("/usage-analytics", "/analytics"),
        ("/console/usage-analytics", "/console/analytics"),
        ("/console/dashboard/", "/console/"),
    ] {
        let resp = http.get(server.console_url(old)).send().await.expect("get");
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT, "{old}");
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(location, new, "{old}");
        // The target is the console's page.
        let page = http
            .get(server.console_url(&location))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), StatusCode::OK, "{location}");
        let kind = page
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(kind.starts_with("text/html"), "{location}: {kind}");
    }
    // The API's paths of the same names are untouched.
    let resp = http
        .get(server.console_url("/api/dashboard/audit-logs"))
        .send()
        .await
        .expect("api");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// What `tollgate estimate --json` says of `text`.
fn cli_estimate(db: &TestDb, text_in: &str, model: &str) -> Value {
    use std::io::Write;
    let mut child = command(&base_env(db, &[]), db.dir.path())
        .args(["estimate", "--json", "--model", model, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text_in.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

async fn estimates_and_imports_over_rest(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let sample = "The quick brown fox jumps over the lazy dog. 你好，世界！";
    for model in ["gpt-4o", "gpt-4-turbo"] {
        let rest = admin
            .ok(
                Method::POST,
                "/api/v1/estimate",
                Some(json!({"text": sample, "model": model})),
                200,
            )
            .await;
        let cli = cli_estimate(&db, sample, model);
        assert_eq!(rest, cli, "REST and CLI count alike for {model}");
    }
    for (body, field) in [
        (
            json!({"text": "x", "vocabulary": "p50k_base"}),
            "vocabulary",
        ),
        (json!({"text": "x".repeat(1024 * 1024 + 1)}), "text"),
        (json!({"text": "x", "colour": "red"}), "colour"),
    ] {
        let (status, err) = admin
            .call(Method::POST, "/api/v1/estimate", Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }

    // A counter estimate adds the two counts as an `estimate` reading.
    let (user, assistant) = (
        "How many tokens is this question?",
        "Quite a few, as it happens.",
    );
    let count = |t: &str| {
        let admin = admin.clone();
        let body = json!({"text": t});
        async move {
            admin
                .ok(Method::POST, "/api/v1/estimate", Some(body), 200)
                .await["tokens"]
                .as_i64()
                .expect("tokens")
        }
    };
    let expected = count(user).await + count(assistant).await;
    let recorded = admin
        .ok(
            Method::POST,
            "/api/v1/counters/default/estimate",
            Some(json!({"user": user, "assistant": assistant})),
            201,
        )
        .await;
    assert_eq!(recorded["reading"]["increment"], expected);
    assert_eq!(recorded["reading"]["sync_type"], "estimate");
    assert_eq!(recorded["counter"]["used"], expected);

    // An import adds sessions in time order; a bad session adds none.
    let before = recorded["counter"]["used"].as_i64().expect("used");
    for (sessions, why) in [
        (json!([]), "empty"),
        (json!([{"tokens": 5}, {"tokens": "lots"}]), "tokens"),
        (
            json!([{"tokens": 5, "timestamp": "yesterday"}]),
            "timestamp",
        ),
        (json!([{"tokens": 5, "timestamp": 1000}]), "seconds"),
        (json!([{"tokens": -3}]), "negative"),
    ] {
        let (status, err) = admin
            .call(
                Method::POST,
                "/api/v1/counters/default/import",
                Some(json!({ "sessions": sessions })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {err}");
        assert_eq!(err["error"]["field"], "sessions", "{why}: {err}");
    }
    let status = admin
        .ok(Method::GET, "/api/v1/counters/default", None, 200)
        .await;
    assert_eq!(status["used"], before, "refused imports changed nothing");
    let first_ms = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    let imported = admin
        .ok(
            Method::POST,
            "/api/v1/counters/default/import",
            Some(json!({"sessions": [
                {"tokens": "5K", "event": "second", "timestamp": "2026-01-02T00:00:00Z"},
                {"tokens": 800, "event": "first", "timestamp": first_ms},
            ]})),
            201,
        )
        .await;
    assert_eq!(imported["imported"], 2);
    assert_eq!(imported["tokens"], 5_800);
    assert_eq!(imported["counter"]["used"], before + 5_800);
    let history = admin
        .ok(Method::GET, "/api/v1/counters/default/readings", None, 200)
        .await;
    let newest: Vec<(String, i64)> = history
        .as_array()
        .expect("readings")
        .iter()
        .take(2)
        .map(|r| {
            (
                r["event"].as_str().expect("event").to_owned(),
                r["ts"].as_i64().expect("ts"),
            )
        })
        .collect();
    assert_eq!(
        newest,
        [
            ("second".to_owned(), first_ms + 86_400_000),
            ("first".to_owned(), first_ms)
        ]
    );
    let audit = admin
        .ok(
            Method::GET,
            "/api/v1/audit?action=counter.import",
            None,
            200,
        )
        .await;
    assert!(audit.to_string().contains("2 sessions"), "{audit}");
}
both_backends!(estimates_and_imports_over_rest);

async fn wrong_readings_are_corrected_or_deleted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "sync"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("team");
    let member =
        crate::console::invite_user(&server, &admin, team, "dev@example.com", "member").await;
    let viewer =
        crate::console::invite_user(&server, &admin, team, "pm@example.com", "viewer").await;
    let readings = format!("/api/v1/counters/cursor/readings?team_id={team}");
    let one = |r: &str| format!("/api/v1/counters/cursor/readings/{r}?team_id={team}");
    let mut ids = Vec::new();
    for figure in ["100K", "1.5M", "160K"] {
        let recorded = admin
            .ok(
                Method::POST,
                &readings,
                Some(json!({"reading": figure})),
                201,
            )
            .await;
        ids.push(recorded["reading"]["id"].as_i64().expect("id"));
    }
    let status = admin
        .ok(
            Method::GET,
            &format!("/api/v1/counters/cursor?team_id={team}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        status["used"], 160_000,
        "the third reading looked like a reset"
    );

    // Bad input and missing readings change nothing.
    for (body, field) in [
        (json!({"reading": "lots"}), "reading"),
        (json!({"reading": -5}), "reading"),
    ] {
        let (code, err) = admin
            .call(Method::PATCH, &one(&ids[1].to_string()), Some(body))
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (code, _) = admin
        .call(
            Method::PATCH,
            &one("987654321"),
            Some(json!({"reading": 1})),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // A member may not change someone else's reading; a viewer none.
    for (who, api) in [("member", &member), ("viewer", &viewer)] {
        let (code, err) = api
            .call(
                Method::PATCH,
                &one(&ids[1].to_string()),
                Some(json!({"reading": "150K"})),
            )
            .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{who}: {err}");
    }
    let status = admin
        .ok(
            Method::GET,
            &format!("/api/v1/counters/cursor?team_id={team}"),
            None,
            200,
        )
        .await;
    assert_eq!(status["used"], 160_000, "refusals changed nothing");

    // The admin corrects the typo: the later reading is an increment again.
    let corrected = admin
        .ok(
            Method::PATCH,
            &one(&ids[1].to_string()),
            Some(json!({"reading": "150K"})),
            200,
        )
        .await;
    assert_eq!(corrected["reading"]["reading"], 150_000);
    assert_eq!(corrected["reading"]["increment"], 50_000);
    assert_eq!(corrected["counter"]["used"], 160_000);
    let history = admin.ok(Method::GET, &readings, None, 200).await;
    let increments: Vec<i64> = history
        .as_array()
        .expect("history")
        .iter()
        .rev()
        .map(|r| r["increment"].as_i64().expect("increment"))
        .collect();
    assert_eq!(increments, [100_000, 50_000, 10_000]);
    assert_eq!(increments.iter().sum::<i64>(), 160_000);

    // A member corrects their own reading.
    let own = member
        .ok(
            Method::POST,
            &readings,
            Some(json!({"reading": "170K"})),
            201,
        )
        .await["reading"]["id"]
        .as_i64()
        .expect("id");
    let fixed = member
        .ok(
            Method::PATCH,
            &one(&own.to_string()),
            Some(json!({"reading": "175K"})),
            200,
        )
        .await;
    assert_eq!(fixed["reading"]["increment"], 15_000);

    // The CLI deletes one; the audit log holds every change with its figures.
    let out = crate::harness::cli(
        &db,
        &[
            "sync",
            "delete",
            &ids[2].to_string(),
            "--counter",
            "cursor",
            "--team",
            "sync",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deleted: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(deleted["counter"]["used"], 175_000);
    assert!(deleted["reading"].is_null());
    let history = admin.ok(Method::GET, &readings, None, 200).await;
    let increments: Vec<i64> = history
        .as_array()
        .expect("history")
        .iter()
        .rev()
        .map(|r| r["increment"].as_i64().expect("increment"))
        .collect();
    assert_eq!(increments, [100_000, 50_000, 25_000]);
    let corrections = admin
        .ok(
            Method::GET,
            "/api/v1/audit?action=counter.correct",
            None,
            200,
        )
        .await
        .to_string();
    assert!(
        corrections.contains("from 1500000 to 150000"),
        "{corrections}"
    );
    let deletions = admin
        .ok(
            Method::GET,
            "/api/v1/audit?action=counter.delete_reading",
            None,
            200,
        )
        .await
        .to_string();
    assert!(deletions.contains("cli:"), "{deletions}");
}
both_backends!(wrong_readings_are_corrected_or_deleted);
