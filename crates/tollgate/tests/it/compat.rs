//! The seed-compatible paths refuse in the seeds' shape (`{"code":<status>,"msg":…}`, seed 002's
//! auth middleware) with tollgate's error beside it, while `/api/v1` keeps its own; and the
//! OpenAPI document publishes the API's vocabulary as enums.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, client};

/// Asserts the seeds' refusal shape and returns tollgate's error object inside it.
fn seed_refusal(path: &str, status: StatusCode, body: &Value, msg: &str) -> Value {
    assert_eq!(body["code"], status.as_u16(), "{path}: {body}");
    assert_eq!(body["msg"], msg, "{path}: {body}");
    let error = body["error"].clone();
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{path}: tollgate's code is kept: {body}"
    );
    assert!(error["message"].is_string(), "{path}: {body}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_paths_refuse_in_the_seed_shape() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &console_env()).await;
    let anonymous = Api::anonymous(&server);
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // 401 without credentials: the seed's {"code":401,"msg":"Unauthorized"}, tollgate's code kept.
    let (status, v1) = anonymous.call(Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(v1.get("code").is_none() && v1.get("msg").is_none(), "{v1}");
    for path in [
        "/api/console/stats",
        "/api/console/keys",
        "/api/dashboard/overview",
        "/api/usage/stats",
    ] {
        let (status, body) = anonymous.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        let error = seed_refusal(path, status, &body, "Unauthorized");
        assert_eq!(error, v1["error"], "{path}: the same error as /api/v1");
    }
    // Ingest without the secret.
    let (status, body) = anonymous
        .call(
            Method::POST,
            "/api/usage-log",
            Some(json!({"token_hash": "00", "route": "/x", "timestamp": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    seed_refusal("/api/usage-log", status, &body, "Unauthorized");

    // 422 naming the field, in the seed's shape.
    for (method, path, body, field) in [
        (Method::GET, "/api/console/usage-trend?days=3", None, "days"),
        (
            Method::GET,
            "/api/dashboard/audit-logs?per_page=10",
            None,
            "per_page",
        ),
        (
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": "lots"})),
            "tokens",
        ),
    ] {
        let (status, answer) = admin.call(method, path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        let error = seed_refusal(path, status, &answer, "Unprocessable Entity");
        assert_eq!(error["code"], "invalid_field", "{path}: {answer}");
        assert_eq!(error["field"], field, "{path}: {answer}");
    }
    // A 404 too; and /api/v1 keeps its own shape for the same refusal.
    let (status, body) = admin
        .call(Method::DELETE, "/api/console/keys/999999", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    seed_refusal("/api/console/keys/{id}", status, &body, "Not Found");
    let (status, body) = admin
        .call(Method::GET, "/api/v1/usage/series?bucket=week", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.get("code").is_none(), "{body}");
    assert_eq!(body["error"]["field"], "bucket", "{body}");

    // Successes keep their shapes.
    let card = admin.ok(Method::GET, "/api/console/stats", None, 200).await;
    assert_eq!(card["code"], 0);
    assert!(card.get("msg").is_none(), "{card}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_publishes_the_vocabulary() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &console_env()).await;
    let spec: Value = client()
        .get(server.console_url("/api/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let schemas = &spec["components"]["schemas"];
    for (name, values) in [
        ("Role", &["viewer", "member", "admin", "owner"][..]),
        ("RouteKind", &["http", "openai", "anthropic", "llm"][..]),
        (
            "Grouping",
            &["key", "route", "model", "team", "status_class"][..],
        ),
        ("SortOrder", &["calls", "tokens"][..]),
        ("Bucket", &["hour", "day"][..]),
        ("ExportFormat", &["csv", "json", "ndjson"][..]),
        ("ExportDataset", &["events", "series", "top"][..]),
        ("AuditFormat", &["json", "csv"][..]),
    ] {
        assert_eq!(schemas[name]["enum"], json!(values), "{name}");
    }
    // Answers and parameters name them.
    assert!(
        schemas["MembershipView"]["properties"]["role"]
            .to_string()
            .contains("#/components/schemas/Role"),
        "{}",
        schemas["MembershipView"]
    );
    assert!(
        schemas["RouteView"]["properties"]["kind"]
            .to_string()
            .contains("#/components/schemas/RouteKind")
    );
    let top = spec["paths"]["/api/v1/usage/top"]["get"]["parameters"].to_string();
    assert!(
        top.contains("#/components/schemas/Grouping")
            && top.contains("#/components/schemas/SortOrder"),
        "{top}"
    );
    // Seed paths document their refusals in the seeds' shape.
    assert_eq!(
        spec["paths"]["/api/console/usage-trend"]["get"]["responses"]["422"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/SeedRefusal"
    );
    assert_eq!(
        spec["paths"]["/api/v1/usage/summary"]["get"]["responses"]["422"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
}
