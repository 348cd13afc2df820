//! The authorisation matrix: every console endpoint × every kind of caller, with the expected
//! status, from one table. The table must list exactly the operations of `/api/openapi.json`, so
//! an endpoint cannot be added without a row.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, client};

mod rows;

use rows::{CALLERS, ROWS};

/// Paths served outside the OpenAPI document (the document itself and its docs page).
const UNDOCUMENTED: &[&str] = &["/api/openapi.json", "/api/docs", "/api/docs.js"];

struct World {
    server: Server,
    root: Api,
    callers: Vec<Api>,
    team: i64,
    viewer: i64,
    log: i64,
    counter: AtomicUsize,
}

impl World {
    fn fresh(&self) -> usize {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    async fn invitation(&self) -> Value {
        let n = self.fresh();
        self.root
            .ok(
                Method::POST,
                &format!("/api/v1/teams/{}/invitations", self.team),
                Some(json!({"email": format!("fresh{n}@example.com")})),
                201,
            )
            .await
    }

    /// Resolves the placeholders of `template` for caller `c`.
    async fn fill(&self, template: &str, c: usize, n: usize) -> String {
        let mut out = template
            .replace("{team}", &self.team.to_string())
            .replace("{viewer}", &self.viewer.to_string())
            .replace("{log}", &self.log.to_string());
        out = out.replace("{n}", &n.to_string());
        if out.contains("{inv_token}") {
            out = out.replace(
                "{inv_token}",
                self.invitation().await["token"].as_str().expect("token"),
            );
        }
        if out.contains("{fresh_inv}") {
            out = out.replace("{fresh_inv}", &self.invitation().await["id"].to_string());
        }
        if out.contains("{fresh_member}") {
            let user = invite_user(
                &self.server,
                &self.root,
                self.team,
                &format!("member{n}@example.com"),
                "member",
            )
            .await;
            let id = user.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"].clone();
            out = out.replace("{fresh_member}", &id.to_string());
        }
        if out.contains("{key}") {
            let key = self
                .root
                .ok(
                    Method::POST,
                    "/api/v1/keys",
                    Some(json!({"team_id": self.team, "name": format!("fixture{n}")})),
                    201,
                )
                .await;
            out = out.replace("{key}", &key["id"].to_string());
        }
        if out.contains("{reading}") {
            let path = format!("/api/v1/counters/default/readings?team_id={}", self.team);
            let body = json!({"reading": 1000 + n, "event": format!("fixture{n}")});
            let recorded = self.root.ok(Method::POST, &path, Some(body), 201).await;
            out = out.replace("{reading}", &recorded["reading"]["id"].to_string());
        }
        if out.contains("{route}") {
            let body = json!({"team_id": self.team, "name": format!("fixture{n}"), "prefix": format!("/fixture{n}"), "upstream_url": "http://127.0.0.1:9"});
            let route = self
                .root
                .ok(Method::POST, "/api/v1/routes", Some(body), 201)
                .await;
            out = out.replace("{route}", &route["id"].to_string());
        }
        if out.contains("{target}") || out.contains("{target_name}") || out.contains("{model}") {
            let name = format!("fixture{n}");
            let body = json!({"name": name, "provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"});
            let target = self
                .root
                .ok(Method::POST, "/api/v1/targets", Some(body), 201)
                .await;
            out = out.replace("{target}", &target["id"].to_string());
            out = out.replace("{target_name}", &name);
            if out.contains("{model}") {
                let body = json!({"name": format!("fixture-model{n}"), "pool": [{"target": name}]});
                let model = self
                    .root
                    .ok(Method::POST, "/api/v1/models", Some(body), 201)
                    .await;
                out = out.replace("{model}", &model["id"].to_string());
            }
        }
        if out.contains("{limit}") {
            let body = json!({"scope": {"type": "team", "id": self.team}, "kind": {"type": "requests", "per": "hour", "max": 1000 + n}});
            let limit = self
                .root
                .ok(Method::POST, "/api/v1/limits", Some(body), 201)
                .await;
            out = out.replace("{limit}", &limit["id"].to_string());
        }
        if out.contains("{channel}") {
            // On loopback's discard port, which the matrix server allows: a test sends nowhere.
            let body = json!({"name": format!("fixture{n}"), "url": "http://127.0.0.1:9/hook"});
            let channel = self
                .root
                .ok(Method::POST, "/api/v1/alerts/channels", Some(body), 201)
                .await;
            out = out.replace("{channel}", &channel["channel"]["id"].to_string());
        }
        if out.contains("{edge_token}") {
            let token = self
                .root
                .ok(
                    Method::POST,
                    "/api/v1/edge/tokens",
                    Some(json!({"name": format!("fixture{n}")})),
                    201,
                )
                .await;
            out = out.replace("{edge_token}", &token["id"].to_string());
        }
        if out.contains("{fresh_team}") {
            let team = self
                .root
                .ok(
                    Method::POST,
                    "/api/v1/teams",
                    Some(json!({"name": format!("fresh{n}")})),
                    201,
                )
                .await;
            let id = team["id"].as_i64().expect("id");
            // The callers hold the same roles there as in {team}.
            for m in self
                .root
                .ok(
                    Method::GET,
                    &format!("/api/v1/teams/{}/members", self.team),
                    None,
                    200,
                )
                .await
                .as_array()
                .expect("members")
            {
                let path = format!("/api/v1/teams/{id}/members/{}", m["user_id"]);
                self.root
                    .ok(Method::PUT, &path, Some(json!({"role": m["role"]})), 200)
                    .await;
            }
            out = out.replace("{fresh_team}", &id.to_string());
        }
        if out.contains("{own_token}") {
            let caller = &self.callers[c];
            let (status, token) = caller
                .call(
                    Method::POST,
                    "/api/v1/tokens",
                    Some(json!({"name": format!("own{n}")})),
                )
                .await;
            let id = if status.is_success() {
                token["id"].to_string()
            } else {
                "999999".into()
            };
            out = out.replace("{own_token}", &id);
        }
        out
    }
}

async fn setup(backend: Backend) -> (TestDb, World) {
    let db = TestDb::new(backend).await;
    let mut env = console_env();
    // Alert channels of the fixtures point at loopback.
    env.push(("TOLLGATE_UPSTREAM_ALLOWLIST", r#"["127.0.0.1"]"#));
    let server = Server::start(&db, &env).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "alpha"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let beta = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "beta"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let viewer = invite_user(&server, &root, team, "viewer@example.com", "viewer").await;
    let member = invite_user(&server, &root, team, "member@example.com", "member").await;
    let admin = invite_user(&server, &root, team, "admin@example.com", "admin").await;
    let owner = invite_user(&server, &root, team, "owner@example.com", "owner").await;
    let other_owner = invite_user(&server, &root, beta, "other@example.com", "owner").await;
    let pat = admin
        .ok(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "matrix"})),
            201,
        )
        .await;
    let pat = Api::with_token(&server, pat["token"].as_str().expect("token"));
    let disabled = invite_user(&server, &root, team, "gone@example.com", "member").await;
    let gone_id = disabled.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    root.ok(
        Method::PATCH,
        &format!("/api/v1/users/{gone_id}"),
        Some(json!({"disabled": true})),
        200,
    )
    .await;
    let viewer_id = viewer.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    // The instance admin caller is a second session of root, so that its logout leaves `root` working.
    let instance_admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let callers = vec![
        Api::anonymous(&server),
        viewer,
        member,
        admin,
        owner,
        other_owner,
        instance_admin,
        pat,
        disabled,
    ];
    let log = one_call_in(&server, &root, team).await;
    let world = World {
        server,
        root,
        callers,
        team,
        viewer: viewer_id,
        log,
        counter: AtomicUsize::new(0),
    };
    (db, world)
}

/// Records one call of a key of `team` through ingest and returns its call-log id.
async fn one_call_in(server: &Server, root: &Api, team: i64) -> i64 {
    let key = root
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": "logged"})),
            201,
        )
        .await;
    let hash = hex::encode(sha2::Sha256::digest(
        key["key"].as_str().expect("key").as_bytes(),
    ));
    let event = json!([{"ts": tollgate_core::time::now_ms(), "key_hash": hash, "method": "GET", "path": "/x", "status": 200, "latency_ms": 1.0}]);
    crate::console::ingest(server, &event).await;
    let page = root
        .ok(
            Method::GET,
            &format!("/api/v1/logs?team_id={team}"),
            None,
            200,
        )
        .await;
    page["items"][0]["id"]
        .as_i64()
        .expect("the ingested call is in the log")
}

async fn every_endpoint_checks_every_role(backend: Backend) {
    let (_db, world) = setup(backend).await;
    // The table covers exactly the documented operations.
    let spec: Value = client()
        .get(world.server.console_url("/api/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("ops")
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let tabled: BTreeSet<(String, String)> = ROWS
        .iter()
        .map(|(m, p, ..)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(tabled.len(), ROWS.len(), "a row is listed twice");
    assert_eq!(
        documented, tabled,
        "the matrix must have one row per documented operation"
    );

    let mut failures = Vec::new();
    for (method, spec_path, url, body, expected) in ROWS {
        for (c, caller) in world.callers.iter().enumerate() {
            let n = world.fresh();
            let path = world.fill(url, c, n).await;
            let json_body = if body.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_str::<Value>(&world.fill(body, c, n).await)
                        .expect("row body is JSON"),
                )
            };
            let (status, answer) = caller
                .call(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    &path,
                    json_body,
                )
                .await;
            if url.contains("{fresh_team}") {
                // A refused delete leaves the team behind: remove it so that callers keep one team.
                let _ = world.root.call(Method::DELETE, &path, None).await;
            }
            if status.as_u16() != expected[c] {
                failures.push(format!(
                    "{method} {spec_path} as {}: expected {}, got {status} {answer}",
                    CALLERS[c], expected[c]
                ));
            }
        }
    }
    for path in UNDOCUMENTED {
        for caller in &world.callers {
            let (status, _) = caller.call(Method::GET, path, None).await;
            assert!(status.is_success(), "{path} is public");
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
crate::both_backends!(every_endpoint_checks_every_role);
