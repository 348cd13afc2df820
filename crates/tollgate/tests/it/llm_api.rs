//! Targets and models over the API and the CLI: instance admins manage them, every bad input is
//! a 422 naming its field with nothing written, credentials are write-only, and the CLI in
//! remote mode prints what the local one does.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, cli, cli_env};

async fn refused(api: &Api, method: Method, path: &str, body: Value, field: &str) {
    let (status, v) = api.call(method.clone(), path, Some(body.clone())).await;
    assert_eq!(status.as_u16(), 422, "{method} {path} {body}: {v}");
    assert_eq!(v["error"]["field"], field, "{body}: {v}");
}

async fn targets_and_models_are_checked_and_write_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let post = |path: &'static str, body: Value| {
        let admin = admin.clone();
        async move { admin.call(Method::POST, path, Some(body)).await }
    };

    let (status, azure) = post(
        "/api/v1/targets",
        json!({"name": "azure-eu", "provider": "azure", "base_url": "https://myres.openai.azure.com/",
               "deployment": "gpt4o-prod", "credential": "azure-secret-value", "weight": 3}),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{azure}");
    assert_eq!(azure["base_url"], "https://myres.openai.azure.com");
    assert_eq!(azure["credential_header"]["name"], "api-key");
    assert_eq!(azure["query"]["api-version"], "2024-10-21");
    assert_eq!(azure["has_credential"], true);
    assert!(!azure.to_string().contains("azure-secret-value"), "{azure}");
    let (status, openai) = post(
        "/api/v1/targets",
        json!({"name": "openai-1", "provider": "openai", "credential_header": "X-Token",
               "credential_format": "Token {key}"}),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{openai}");
    assert_eq!(openai["base_url"], "https://api.openai.com/v1");
    assert_eq!(openai["credential_header"]["name"], "x-token");
    assert_eq!(openai["credential_header"]["format"], "Token {key}");

    for (body, field) in [
        (json!({"name": "x1", "provider": "bedrock"}), "provider"),
        (
            json!({"name": "x2", "provider": "openai", "base_url": "ftp://x"}),
            "base_url",
        ),
        (
            json!({"name": "x3", "provider": "openai_compatible"}),
            "base_url",
        ),
        (
            json!({"name": "x4", "provider": "openai", "weight": 0}),
            "weight",
        ),
        (
            json!({"name": "x5", "provider": "openai", "weight": -1}),
            "weight",
        ),
        (
            json!({"name": "x6", "provider": "azure", "base_url": "https://a.example"}),
            "deployment",
        ),
        (json!({"name": "bad name", "provider": "openai"}), "name"),
        (
            json!({"name": "x7", "provider": "openai", "credential_header": "Host"}),
            "credential_header",
        ),
        (
            json!({"name": "x8", "provider": "openai", "credential_format": "{key}"}),
            "credential_format",
        ),
        (
            json!({"name": "x9", "provider": "openai", "query": {"a b": "1"}}),
            "query",
        ),
        (
            json!({"name": "x10", "provider": "openai", "rpm": 0}),
            "rpm",
        ),
    ] {
        refused(&admin, Method::POST, "/api/v1/targets", body, field).await;
    }
    let (status, v) = post(
        "/api/v1/targets",
        json!({"name": "azure-eu", "provider": "openai"}),
    )
    .await;
    assert_eq!(status.as_u16(), 409, "{v}");

    let (status, mini) = post(
        "/api/v1/models",
        json!({"name": "gpt-4o-mini", "pool": [{"target": "openai-1"}], "aliases": ["fast"]}),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{mini}");
    let (status, big) = post(
        "/api/v1/models",
        json!({"name": "gpt-4o", "pool": [{"target": "azure-eu", "upstream_model": "gpt-4o"}, {"target": "openai-1"}],
               "fallbacks": ["gpt-4o-mini"], "strategy": "least_busy"}),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{big}");
    for (body, field) in [
        (
            json!({"name": "gpt-4o", "pool": [{"target": "openai-1"}]}),
            "name",
        ),
        (
            json!({"name": "fast", "pool": [{"target": "openai-1"}]}),
            "name",
        ),
        (json!({"name": "m1", "pool": []}), "pool"),
        (
            json!({"name": "m2", "pool": [{"target": "nowhere"}]}),
            "pool",
        ),
        (
            json!({"name": "m3", "pool": [{"target": "openai-1"}], "aliases": ["fast"]}),
            "aliases",
        ),
        (
            json!({"name": "m4", "pool": [{"target": "openai-1"}], "aliases": ["gpt-4o"]}),
            "aliases",
        ),
        (
            json!({"name": "m5", "pool": [{"target": "openai-1"}], "fallbacks": ["m5"]}),
            "fallbacks",
        ),
        (
            json!({"name": "m6", "pool": [{"target": "openai-1"}], "fallbacks": ["nope"]}),
            "fallbacks",
        ),
        (
            json!({"name": "m7", "pool": [{"target": "openai-1"}], "strategy": "random"}),
            "strategy",
        ),
    ] {
        refused(&admin, Method::POST, "/api/v1/models", body, field).await;
    }
    // A loop through another model's fallbacks.
    let mini_id = mini["id"].as_i64().expect("id");
    refused(
        &admin,
        Method::PATCH,
        &format!("/api/v1/models/{mini_id}"),
        json!({"fallbacks": ["gpt-4o"]}),
        "fallbacks",
    )
    .await;
    // Nothing refused was written.
    let models = admin.ok(Method::GET, "/api/v1/models", None, 200).await;
    assert_eq!(models.as_array().expect("list").len(), 2, "{models}");
    let targets = admin.ok(Method::GET, "/api/v1/targets", None, 200).await;
    assert_eq!(targets.as_array().expect("list").len(), 2, "{targets}");
    assert!(!targets.to_string().contains("azure-secret-value"));

    // In use: a target a pool lists and a model another falls back to stay.
    let azure_id = azure["id"].as_i64().expect("id");
    let (status, v) = admin
        .call(Method::DELETE, &format!("/api/v1/targets/{azure_id}"), None)
        .await;
    assert_eq!(status.as_u16(), 409, "{v}");
    assert_eq!(v["error"]["code"], "target_in_use");
    let (status, v) = admin
        .call(Method::DELETE, &format!("/api/v1/models/{mini_id}"), None)
        .await;
    assert_eq!(status.as_u16(), 409, "{v}");
    assert_eq!(v["error"]["code"], "model_in_use");

    // A new base URL on another host drops the credential unless the change sets one.
    let moved = admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/targets/{azure_id}"),
            Some(json!({"base_url": "https://other.openai.azure.com"})),
            200,
        )
        .await;
    assert_eq!(moved["has_credential"], false, "{moved}");

    // The CLI reads the same store and prints the same shape, locally and through --server.
    let local = cli(&db, &["model", "list", "--json"]);
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let local: Value = serde_json::from_slice(&local.stdout).expect("json");
    assert_eq!(local, models);
    let token = admin
        .ok(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "cli"})),
            201,
        )
        .await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let env = vec![
        ("TOLLGATE_SERVER".to_owned(), server.console_url("")),
        ("TOLLGATE_TOKEN".to_owned(), token),
        (
            "TOLLGATE_DATA_DIR".to_owned(),
            db.dir.path().join("laptop").display().to_string(),
        ),
    ];
    let remote = cli_env(&env, db.dir.path(), &["target", "list", "--json"]);
    assert!(
        remote.status.success(),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let remote: Value = serde_json::from_slice(&remote.stdout).expect("json");
    assert_eq!(remote.as_array().expect("list").len(), 2);
    let refused = cli_env(
        &env,
        db.dir.path(),
        &[
            "target",
            "add",
            "x",
            "--provider",
            "openai",
            "--weight",
            "0",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--weight"), "{stderr}");
}
both_backends!(targets_and_models_are_checked_and_write_only);
