//! Limits and budgets through the console API and the CLI: who may set what, a key never above
//! its team, bad input refused by field with nothing written, quotas as enforced budgets (old
//! quota settings migrated, readings counted only with `include_reported`), and key model
//! allow-lists.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, cli, cli_json};

async fn limit_count(api: &Api) -> usize {
    api.ok(Method::GET, "/api/v1/limits", None, 200).await["limits"]
        .as_array()
        .map_or(0, Vec::len)
}

fn rpm(scope: Value, max: i64) -> Value {
    json!({"scope": scope, "kind": {"type": "requests", "per": "minute", "max": max}})
}

async fn limits_over_the_api(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
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
        .expect("team");
    let beta = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "beta"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("team");
    let key = root
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": "k1"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("key");
    let admin = invite_user(&server, &root, team, "admin@example.com", "admin").await;
    let viewer = invite_user(&server, &root, team, "viewer@example.com", "viewer").await;

    // The instance admin sets a team limit; the view is the published shape.
    let team_limit = root
        .ok(
            Method::POST,
            "/api/v1/limits",
            Some(rpm(json!({"type": "team", "id": team}), 100)),
            201,
        )
        .await;
    assert_eq!(team_limit["scope"], json!({"type": "team", "id": team}));
    assert_eq!(team_limit["scope_name"], "alpha");
    assert_eq!(
        team_limit["kind"],
        json!({"type": "requests", "per": "minute", "max": 100})
    );
    assert_eq!(team_limit["enforcement"], "hard");
    assert_eq!(team_limit["alert_at"], json!([80, 100]));
    assert_eq!(team_limit["include_reported"], false);
    assert!(team_limit["created_at"].as_i64().is_some_and(|t| t > 0));
    assert!(
        team_limit["created_by"]
            .as_str()
            .is_some_and(|c| c.contains(ADMIN_EMAIL))
    );
    let team_limit_id = team_limit["id"].as_i64().expect("id");
    root.ok(
        Method::POST,
        "/api/v1/limits",
        Some(rpm(json!({"type": "team", "id": beta}), 10)),
        201,
    )
    .await;
    let instance = root
        .ok(
            Method::POST,
            "/api/v1/limits",
            Some(json!({"scope": {"type": "instance"}, "kind": {"type": "token_budget", "max": 1_000_000, "period": "month"}, "enforcement": "soft", "alert_at": [100, 50, 50]})),
            201,
        )
        .await;
    assert_eq!(instance["scope"], json!({"type": "instance"}));
    assert_eq!(instance["scope_name"], "instance");
    assert_eq!(instance["enforcement"], "soft");
    assert_eq!(instance["alert_at"], json!([50, 100]));

    // A team admin may not raise a key above the team's own limit of the same window.
    let before = limit_count(&root).await;
    let (status, err) = admin
        .call(
            Method::POST,
            "/api/v1/limits",
            Some(rpm(json!({"type": "key", "id": key}), 500)),
        )
        .await;
    assert_eq!(status.as_u16(), 403, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("kind.max")),
        "{err}"
    );
    assert_eq!(limit_count(&root).await, before, "nothing written");
    // Another window is not capped by the per-minute limit; the same window below it is fine.
    let key_limit = admin
        .ok(
            Method::POST,
            "/api/v1/limits",
            Some(rpm(json!({"type": "key", "id": key}), 50)),
            201,
        )
        .await;
    assert_eq!(key_limit["scope_name"], "k1");
    let key_limit_id = key_limit["id"].as_i64().expect("id");
    // Raising it above the team's through an update is refused as well.
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/limits/{key_limit_id}"),
            Some(json!({"kind": {"type": "requests", "per": "minute", "max": 101}})),
        )
        .await;
    assert_eq!(status.as_u16(), 403);
    // Team admins do not manage instance, route or other teams' limits.
    for (body, expected) in [
        (rpm(json!({"type": "instance"}), 5), 403),
        (rpm(json!({"type": "team", "id": beta}), 5), 404),
    ] {
        let (status, err) = admin.call(Method::POST, "/api/v1/limits", Some(body)).await;
        assert_eq!(status.as_u16(), expected, "{err}");
    }
    // Viewers read their team's limits (and the instance's), never another team's, and change nothing.
    let seen = viewer.ok(Method::GET, "/api/v1/limits", None, 200).await;
    let mut ids: Vec<i64> = seen["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .filter_map(|l| l["id"].as_i64())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![
        team_limit_id,
        key_limit_id,
        instance["id"].as_i64().expect("id"),
    ];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let only_keys = viewer
        .ok(
            Method::GET,
            &format!("/api/v1/limits?scope=key&id={key}"),
            None,
            200,
        )
        .await;
    assert_eq!(only_keys["limits"].as_array().map(Vec::len), Some(1));
    let (status, _) = viewer
        .call(
            Method::DELETE,
            &format!("/api/v1/limits/{team_limit_id}"),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 403);

    // Bad input: 422 naming the field, nothing written.
    let before = limit_count(&root).await;
    let t = json!({"type": "team", "id": team});
    for (body, field) in [
        (rpm(t.clone(), 0), "kind.max"),
        (
            // Values the JSON shape itself refuses name the kind they are in.
            json!({"scope": t, "kind": {"type": "requests", "per": "minute", "max": -3}}),
            "kind",
        ),
        (
            json!({"scope": t, "kind": {"type": "requests", "per": "fortnight", "max": 3}}),
            "kind",
        ),
        (
            json!({"scope": t, "kind": {"type": "token_budget", "max": 3, "period": "year"}}),
            "kind",
        ),
        (
            json!({"scope": t, "kind": {"type": "cost_budget", "max_micro_usd": 0, "period": "day"}}),
            "kind.max_micro_usd",
        ),
        (
            json!({"scope": t, "kind": {"type": "requests", "per": "minute", "max": 3}, "alert_at": [0]}),
            "alert_at",
        ),
        (
            json!({"scope": t, "kind": {"type": "requests", "per": "minute", "max": 3}, "include_reported": true}),
            "include_reported",
        ),
        (
            json!({"scope": {"type": "team", "id": 0}, "kind": {"type": "requests", "per": "minute", "max": 3}}),
            "scope.id",
        ),
    ] {
        let (status, err) = root
            .call(Method::POST, "/api/v1/limits", Some(body.clone()))
            .await;
        assert_eq!(status.as_u16(), 422, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    for body in [
        json!({"scope": {"type": "galaxy"}, "kind": {"type": "requests", "per": "minute", "max": 3}}),
        json!({"scope": t, "kind": {"type": "bananas", "max": 3}}),
    ] {
        let (status, err) = root
            .call(Method::POST, "/api/v1/limits", Some(body.clone()))
            .await;
        assert!(
            matches!(status.as_u16(), 400 | 422),
            "{body}: {status} {err}"
        );
        assert!(err["error"]["field"].as_str().is_some(), "{body}: {err}");
    }
    let (status, err) = root
        .call(Method::GET, "/api/v1/limits?scope=galaxy", None)
        .await;
    assert_eq!(status.as_u16(), 422);
    assert_eq!(err["error"]["field"], "scope");
    assert_eq!(limit_count(&root).await, before, "nothing written");

    // Change and remove; both audited.
    let changed = root
        .ok(
            Method::PUT,
            &format!("/api/v1/limits/{team_limit_id}"),
            Some(json!({"kind": {"type": "requests", "per": "minute", "max": 60}, "enforcement": "soft", "alert_at": [90]})),
            200,
        )
        .await;
    assert_eq!(changed["kind"]["max"], 60);
    assert_eq!(changed["enforcement"], "soft");
    assert_eq!(changed["alert_at"], json!([90]));
    root.ok(
        Method::DELETE,
        &format!("/api/v1/limits/{key_limit_id}"),
        None,
        204,
    )
    .await;
    root.ok(
        Method::DELETE,
        &format!("/api/v1/limits/{key_limit_id}"),
        None,
        404,
    )
    .await;
    let audit = root
        .ok(Method::GET, "/api/v1/audit", None, 200)
        .await
        .to_string();
    for action in ["limit.create", "limit.update", "limit.delete"] {
        assert!(audit.contains(action), "{action} audited");
    }

    // Keys carry a model allow-list.
    let k = root
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": "m1", "models": ["gpt-4o*", "claude-*"]})),
            201,
        )
        .await;
    assert_eq!(k["models"], json!(["gpt-4o*", "claude-*"]));
    let kid = k["id"].as_i64().expect("id");
    let listed = root
        .ok(Method::GET, &format!("/api/v1/keys/{kid}"), None, 200)
        .await;
    assert_eq!(listed["models"], json!(["gpt-4o*", "claude-*"]));
    let (status, err) = root
        .call(
            Method::PATCH,
            &format!("/api/v1/keys/{kid}"),
            Some(json!({"models": ["gpt-[4"]})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{err}");
    assert_eq!(err["error"]["field"], "models");
    let (status, err) = root
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": "m2", "models": []})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{err}");
    assert_eq!(err["error"]["field"], "models");
    let cleared = root
        .ok(
            Method::PATCH,
            &format!("/api/v1/keys/{kid}"),
            Some(json!({"models": null})),
            200,
        )
        .await;
    assert_eq!(cleared["models"], Value::Null);
    let plain = root
        .ok(Method::GET, &format!("/api/v1/keys/{key}"), None, 200)
        .await;
    assert_eq!(plain["models"], Value::Null);
}
both_backends!(limits_over_the_api);

async fn quotas_are_budgets(backend: Backend) {
    let db = TestDb::new(backend).await;
    {
        let store = db.open().await;
        store
            .set_setting("quota.instance", r#"{"tokens":1000,"period":"month"}"#)
            .await
            .expect("setting");
        let default_team = store
            .team_by_name("default")
            .await
            .expect("team")
            .expect("default team");
        store
            .set_setting(
                &format!("quota.team.{}", default_team.id),
                r#"{"tokens":500,"period":"total"}"#,
            )
            .await
            .expect("setting");
        store.close().await;
    }
    // Any start of the binary moves them into budgets, once.
    for _ in 0..2 {
        let listed = cli_json(&db, &["limit", "list", "--json"]);
        let limits = listed["limits"].as_array().expect("limits");
        assert_eq!(limits.len(), 2, "{listed}");
        assert!(
            limits
                .iter()
                .any(|l| l["scope"] == json!({"type": "instance"})
                    && l["kind"]
                        == json!({"type": "token_budget", "max": 1000, "period": "month"})
                    && l["enforcement"] == "hard")
        );
        assert!(limits.iter().any(|l| l["scope"]["type"] == "team"
            && l["kind"] == json!({"type": "token_budget", "max": 500, "period": "total"})));
    }
    {
        let store = db.open().await;
        assert_eq!(store.setting("quota.instance").await.expect("read"), None);
        store.close().await;
    }

    let server = Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let quotas = root.ok(Method::GET, "/api/v1/quotas", None, 200).await;
    assert_eq!(quotas["instance"]["quota_tokens"], 1000);
    assert_eq!(quotas["instance"]["period"], "month");
    assert_eq!(quotas["instance"]["used_tokens"], 0);

    // A token-counter reading is not gateway traffic: the quota does not move.
    root.ok(
        Method::POST,
        "/api/record_token_usage",
        Some(json!({"tokens": 5000})),
        200,
    )
    .await;
    let quotas = root.ok(Method::GET, "/api/v1/quotas", None, 200).await;
    assert_eq!(quotas["instance"]["used_tokens"], 0);
    // Unless the budget counts readings.
    let limits = root
        .ok(Method::GET, "/api/v1/limits?scope=instance", None, 200)
        .await;
    let id = limits["limits"][0]["id"].as_i64().expect("id");
    root.ok(
        Method::PUT,
        &format!("/api/v1/limits/{id}"),
        Some(json!({"kind": {"type": "token_budget", "max": 1000, "period": "month"}, "include_reported": true})),
        200,
    )
    .await;
    let quotas = root.ok(Method::GET, "/api/v1/quotas", None, 200).await;
    assert_eq!(quotas["instance"]["used_tokens"], 5000);
    assert_eq!(quotas["instance"]["remaining_tokens"], 0);

    // The quota API changes the same budget, and removes it.
    let view = root
        .ok(
            Method::PUT,
            "/api/v1/quotas/instance",
            Some(json!({"tokens": 2000, "period": "total"})),
            200,
        )
        .await;
    assert_eq!(view["quota_tokens"], 2000);
    assert_eq!(view["period"], "total");
    let limits = root
        .ok(Method::GET, "/api/v1/limits?scope=instance", None, 200)
        .await;
    assert_eq!(limits["limits"].as_array().map(Vec::len), Some(1));
    assert_eq!(limits["limits"][0]["id"], id);
    assert_eq!(
        limits["limits"][0]["kind"],
        json!({"type": "token_budget", "max": 2000, "period": "total"})
    );
    let (status, err) = root
        .call(
            Method::PUT,
            "/api/v1/quotas/instance",
            Some(json!({"tokens": 0})),
        )
        .await;
    assert_eq!(status.as_u16(), 422);
    assert_eq!(err["error"]["field"], "tokens");
    let view = root
        .ok(
            Method::PUT,
            "/api/v1/quotas/instance",
            Some(json!({"tokens": null})),
            200,
        )
        .await;
    assert_eq!(view["quota_tokens"], Value::Null);
    let limits = root
        .ok(Method::GET, "/api/v1/limits?scope=instance", None, 200)
        .await;
    assert_eq!(limits["limits"].as_array().map(Vec::len), Some(0));
}
both_backends!(quotas_are_budgets);

fn fails_naming(db: &TestDb, args: &[&str], flag: &str) {
    let out = cli(db, args);
    assert!(!out.status.success(), "{args:?} must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(flag), "{args:?}: {err}");
}

async fn limits_from_the_cli(backend: Backend) {
    let db = TestDb::new(backend).await;
    let key = cli_json(
        &db,
        &[
            "key",
            "create",
            "--name",
            "cli",
            "--models",
            "gpt-4o*,claude-*",
            "--json",
        ],
    )["id"]
        .as_i64()
        .expect("key");
    let listed = cli_json(&db, &["key", "list", "--json"]);
    assert_eq!(listed[0]["models"], json!(["gpt-4o*", "claude-*"]));
    fails_naming(
        &db,
        &["key", "update", &key.to_string(), "--models", "a,,b"],
        "--models",
    );
    let updated = cli_json(
        &db,
        &["key", "update", &key.to_string(), "--models", "", "--json"],
    );
    assert_eq!(updated["models"], Value::Null);

    let team = {
        let store = db.open().await;
        let id = store
            .team_by_name("default")
            .await
            .expect("team")
            .expect("default team")
            .id;
        store.close().await;
        id.to_string()
    };
    let set = cli_json(
        &db,
        &[
            "limit",
            "set",
            "--team",
            &team,
            "--rpm",
            "100",
            "--tokens",
            "5000",
            "--period",
            "month",
            "--alert-at",
            "50,100",
            "--json",
        ],
    );
    let ids = set["ids"].as_array().expect("ids").clone();
    assert_eq!(ids.len(), 2, "{set}");
    let one = cli_json(
        &db,
        &[
            "limit",
            "set",
            "--instance",
            "--concurrency",
            "4",
            "--soft",
            "--json",
        ],
    );
    assert!(one["id"].as_i64().is_some(), "{one}");

    // Bad input names the flag and stores nothing.
    let before = cli_json(&db, &["limit", "list", "--json"])["limits"]
        .as_array()
        .map_or(0, Vec::len);
    fails_naming(&db, &["limit", "set", "--instance", "--rps", "0"], "--rps");
    fails_naming(&db, &["limit", "set", "--instance", "--rpm", "-1"], "--rpm");
    fails_naming(
        &db,
        &["limit", "set", "--instance", "--tokens", "5"],
        "--period",
    );
    fails_naming(
        &db,
        &[
            "limit",
            "set",
            "--instance",
            "--tokens",
            "5",
            "--period",
            "year",
        ],
        "--period",
    );
    fails_naming(
        &db,
        &[
            "limit",
            "set",
            "--instance",
            "--cost-usd",
            "abc",
            "--period",
            "day",
        ],
        "--cost-usd",
    );
    fails_naming(
        &db,
        &[
            "limit",
            "set",
            "--instance",
            "--rpm",
            "5",
            "--alert-at",
            "0",
        ],
        "--alert-at",
    );
    fails_naming(
        &db,
        &[
            "limit",
            "set",
            "--instance",
            "--rpm",
            "5",
            "--include-reported",
        ],
        "--include-reported",
    );
    fails_naming(&db, &["limit", "set", "--rpm", "5"], "--instance");
    fails_naming(
        &db,
        &["limit", "set", "--route", "nowhere", "--rpm", "5"],
        "--route",
    );
    // A key above its team's per-minute limit: the first flag is fine, the second is not, and
    // neither is stored.
    fails_naming(
        &db,
        &[
            "limit",
            "set",
            "--key",
            &key.to_string(),
            "--rps",
            "1",
            "--rpm",
            "500",
        ],
        "--rpm",
    );
    let after = cli_json(&db, &["limit", "list", "--json"]);
    assert_eq!(
        after["limits"].as_array().map_or(0, Vec::len),
        before,
        "nothing written"
    );
    let budget = after["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .find(|l| l["kind"]["type"] == "token_budget")
        .expect("budget")
        .clone();
    assert_eq!(budget["usage"]["used"], 0);
    assert_eq!(budget["usage"]["max"], 5000);
    assert_eq!(budget["usage"]["remaining"], 5000);
    assert_eq!(budget["alert_at"], json!([50, 100]));
    assert!(budget["usage"]["period_start"].as_i64().is_some());
    assert!(
        budget["usage"]["reset_at"].is_null() || budget["usage"]["reset_at"].as_i64().is_some()
    );

    let table = cli(&db, &["limit", "list"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("5000 tokens/month") && text.contains("100 requests/minute"),
        "{text}"
    );

    let removed = cli_json(&db, &["limit", "remove", &ids[0].to_string(), "--json"]);
    assert_eq!(removed["removed"], true);
    fails_naming(&db, &["limit", "remove", &ids[0].to_string()], "no limit");
    let after = cli_json(&db, &["limit", "list", "--json"]);
    assert_eq!(after["limits"].as_array().map_or(0, Vec::len), before - 1);
}
both_backends!(limits_from_the_cli);
