//! Schemathesis against `/api/openapi.json` with an authenticated caller: no 5xx, and no response
//! that violates the document. And the logs of a full flow never carry a secret, at any level.

use std::process::Command;

use reqwest::Method;
use serde_json::json;

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, INGEST_SECRET, USER_PASSWORD, console_env};
use crate::harness::{Backend, MASTER_KEY, Server, TestDb, add_route, cli_json, client};

fn schemathesis() -> String {
    for candidate in ["schemathesis", "st"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_owned();
        }
    }
    panic!("schemathesis is required: pip install schemathesis (scripts/test.sh installs it)");
}

async fn the_api_keeps_to_its_document(backend: Backend) {
    let tool = schemathesis();
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let token = cli_json(
        &db,
        &[
            "token",
            "create",
            "--email",
            ADMIN_EMAIL,
            "--name",
            "schemathesis",
            "--json",
        ],
    );
    let token = token["token"].as_str().expect("token").to_owned();
    let report = db.dir.path().join("schemathesis");
    let out = tokio::task::spawn_blocking({
        let url = server.console_url("/api/openapi.json");
        let report = report.clone();
        move || {
            Command::new(tool)
                .args([
                    "run",
                    &url,
                    "--checks",
                    "not_a_server_error,response_schema_conformance",
                ])
                .args(["--header", &format!("Authorization: Bearer {token}")])
                // These end the caller's own credentials, which would stop the rest of the run.
                .args([
                    "--exclude-path",
                    "/api/v1/auth/logout",
                    "--exclude-path",
                    "/api/v1/tokens/{id}",
                ])
                // This sends a webhook to whatever URL a generated channel holds: no traffic
                // leaves loopback in tests.
                .args(["--exclude-path", "/api/v1/alerts/channels/{id}/test"])
                .args([
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--max-examples",
                    "12",
                    "--request-timeout",
                    "10",
                ])
                .args(["--suppress-health-check", "all", "--report-dir"])
                .arg(&report)
                .env("NO_COLOR", "1")
                // Its cache goes to the working folder: keep it out of the source tree.
                .current_dir(report.parent().unwrap_or(&report))
                .output()
                .expect("run schemathesis")
        }
    })
    .await
    .expect("schemathesis task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    assert!(
        !server.logs().contains("internal error"),
        "{}",
        server.logs()
    );
}
crate::both_backends!(the_api_keeps_to_its_document);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_any_level() {
    let mock = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let mut env = console_env();
    env.push(("TOLLGATE_LOG_LEVEL", "trace"));
    let server = Server::start(&db, &env).await;
    let mut secrets = vec![
        ADMIN_PASSWORD.to_owned(),
        USER_PASSWORD.to_owned(),
        INGEST_SECRET.to_owned(),
        MASTER_KEY.to_owned(),
    ];

    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    secrets.push(
        admin
            .cookie
            .clone()
            .expect("cookie")
            .split_once('=')
            .expect("pair")
            .1
            .to_owned(),
    );
    secrets.push(admin.csrf.clone().expect("csrf"));
    let _ = Api::anonymous(&server)
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": ADMIN_EMAIL, "password": "a wrong secret guess"})),
        )
        .await;
    secrets.push("a wrong secret guess".into());
    let key = admin
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "logged"})),
            201,
        )
        .await;
    let key = key["key"].as_str().expect("key").to_owned();
    secrets.push(key.clone());
    let revealed = admin
        .ok(
            Method::POST,
            &format!("/api/v1/keys/{}/reveal", 1),
            None,
            200,
        )
        .await;
    assert_eq!(revealed["key"], key.as_str());
    let pat = admin
        .ok(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "p"})),
            201,
        )
        .await["token"]
        .as_str()
        .expect("t")
        .to_owned();
    secrets.push(pat.clone());
    Api::with_token(&server, &pat)
        .ok(Method::GET, "/api/v1/keys", None, 200)
        .await;
    let team = admin.ok(Method::GET, "/api/v1/teams", None, 200).await[0]["id"]
        .as_i64()
        .expect("team");
    let inv = admin
        .ok(
            Method::POST,
            &format!("/api/v1/teams/{team}/invitations"),
            Some(json!({"email": "new@example.com"})),
            201,
        )
        .await;
    let inv_token = inv["token"].as_str().expect("token").to_owned();
    secrets.push(inv_token.clone());
    Api::anonymous(&server)
        .ok(
            Method::POST,
            &format!("/api/v1/invitations/{inv_token}/accept"),
            Some(json!({"password": USER_PASSWORD})),
            201,
        )
        .await;
    let http = client();
    for header in ["authorization", "x-api-key", "api-key"] {
        let value = if header == "authorization" {
            format!("Bearer {key}")
        } else {
            key.clone()
        };
        let resp = http
            .get(server.url("/echo/x"))
            .header(header, value)
            .send()
            .await
            .expect("gateway");
        assert!(resp.status().is_success());
    }
    let body = json!({"token_hash": "0".repeat(64), "route": "/x", "timestamp": tollgate_core::time::now_ms()}).to_string();
    let (ts, sig) =
        crate::console::sign_ingest(INGEST_SECRET, crate::console::now_secs(), body.as_bytes());
    let resp = http
        .post(server.console_url("/api/usage-log"))
        .header("content-type", "application/json")
        .header("x-tollgate-timestamp", ts)
        .header("x-tollgate-signature", &sig)
        .body(body)
        .send()
        .await
        .expect("ingest");
    assert!(resp.status().is_success());
    let rotated = admin
        .ok(Method::POST, "/api/v1/settings/ingest-secret", None, 201)
        .await;
    secrets.push(rotated["secret"].as_str().expect("secret").to_owned());
    server.wait_flushed().await;

    let logs = server.logs();
    assert!(
        logs.lines().count() > 20,
        "trace logging was on: {} lines",
        logs.lines().count()
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the log: …{}…",
            &secret[..secret.len().min(6)]
        );
    }
}
