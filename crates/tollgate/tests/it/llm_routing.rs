//! The `llm` route kind through the real binary, with the mock upstream playing several providers
//! at once: aliases and wildcards, Azure's, Gemini's and Anthropic's header and URL shapes,
//! `/v1/models`, unknown models in each API's error shape, usage recorded per call.

use serde_json::{Value, json};
use tollgate_mock_upstream::MockUpstream;

use crate::harness::Backend;
use crate::harness::{Server, TestDb, add_key, base_env, cli_env, client, wait_events};

/// Runs a CLI command with extra environment (credentials in variables) and returns its JSON.
pub fn cli_json_env(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = cli_env(&base_env(db, env), db.dir.path(), args);
    assert!(
        out.status.success(),
        "tollgate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

/// Adds a target through the CLI with its credential in `KEY`.
pub fn add_target(db: &TestDb, name: &str, secret: &str, flags: &[&str]) -> Value {
    let mut args = vec!["target", "add", name, "--key-env", "KEY", "--json"];
    args.extend_from_slice(flags);
    cli_json_env(db, &[("KEY", secret)], &args)
}

/// Adds a model through the CLI.
pub fn add_model(db: &TestDb, name: &str, flags: &[&str]) -> Value {
    let mut args = vec!["model", "add", name, "--json"];
    args.extend_from_slice(flags);
    cli_json_env(db, &[], &args)
}

/// A chat completion body.
pub fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_endpoint_reaches_every_provider_in_its_own_shape() {
    let openai = MockUpstream::start().await.expect("mock");
    let azure = MockUpstream::start().await.expect("mock");
    let gemini = MockUpstream::start().await.expect("mock");
    let anthropic = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    let base = |m: &MockUpstream, path: &str| format!("{}{path}", m.url());
    add_target(
        &db,
        "oa",
        "sk-openai-secret",
        &[
            "--provider",
            "openai_compatible",
            "--base-url",
            &base(&openai, "/v1"),
        ],
    );
    let az = add_target(
        &db,
        "az",
        "azure-secret",
        &[
            "--provider",
            "azure",
            "--base-url",
            &azure.url(),
            "--deployment",
            "gpt4o-prod",
        ],
    );
    assert_eq!(az["credential_header"]["name"], "api-key", "{az}");
    assert_eq!(az["has_credential"], true);
    assert!(az.get("credential").is_none(), "write-only: {az}");
    add_target(
        &db,
        "gm",
        "gemini-secret",
        &[
            "--provider",
            "gemini",
            "--base-url",
            &base(&gemini, "/v1beta/openai"),
        ],
    );
    add_target(
        &db,
        "an",
        "anthropic-secret",
        &[
            "--provider",
            "anthropic",
            "--base-url",
            &base(&anthropic, "/v1"),
        ],
    );
    add_model(&db, "gpt-4o-mini", &["--target", "oa", "--alias", "fast"]);
    add_model(&db, "gpt-4o", &["--target", "az"]);
    add_model(&db, "gemini-*", &["--target", "gm"]);
    add_model(&db, "claude-*", &["--target", "an"]);
    add_model(
        &db,
        "claude-3-opus",
        &["--target", "an=claude-3-opus-20240229"],
    );
    // No --upstream: an llm route's calls go to its models' targets.
    let route = cli_json_env(
        &db,
        &[],
        &[
            "route", "add", "--name", "llm", "--prefix", "/llm", "--kind", "llm", "--json",
        ],
    );
    assert_eq!(route["kind"], "llm", "{route}");
    let (_, key) = add_key(&db, "app", &[]);
    let server = Server::start(&db, &[]).await;
    let http = client();
    let post = |path: &str, body: Value| {
        http.post(server.url(path))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };

    // An alias reaches its model's target with the model's own name.
    let resp = post("/llm/v1/chat/completions", chat("fast"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let seen = openai.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-openai-secret")
    );
    assert_eq!(seen[0].body_json().expect("json")["model"], "gpt-4o-mini");
    assert!(
        !seen[0].headers.iter().any(|(_, v)| v.contains(&key)),
        "the tollgate key never goes upstream"
    );

    // Azure: deployment path, api-version, api-key header and no bearer.
    let resp = post("/llm/v1/chat/completions", chat("gpt-4o"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let seen = azure.requests();
    assert_eq!(
        seen[0].path,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen[0].header("api-key"), Some("azure-secret"));
    assert_eq!(seen[0].header("authorization"), None);

    // Gemini's OpenAI-compatible endpoint through a wildcard; the asked name goes upstream.
    let resp = post("/llm/v1/chat/completions", chat("gemini-2.0-flash"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let seen = gemini.requests();
    assert_eq!(seen[0].path, "/v1beta/openai/chat/completions");
    assert_eq!(seen[0].header("x-goog-api-key"), Some("gemini-secret"));
    assert_eq!(
        seen[0].body_json().expect("json")["model"],
        "gemini-2.0-flash"
    );

    // Anthropic's Messages API; an exact name beats the wildcard and is renamed upstream.
    let messages = |model: &str| json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let resp = post("/llm/v1/messages", messages("claude-3-5-sonnet"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let resp = post("/llm/v1/messages", messages("claude-3-opus"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let seen = anthropic.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(seen[0].header("x-api-key"), Some("anthropic-secret"));
    assert_eq!(
        seen[0].body_json().expect("json")["model"],
        "claude-3-5-sonnet"
    );
    assert_eq!(
        seen[1].body_json().expect("json")["model"],
        "claude-3-opus-20240229"
    );

    // Unknown models: 404 model_not_found, in OpenAI's shape and in Anthropic's.
    let resp = post("/llm/v1/chat/completions", chat("llama-9"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("llama-9")
    );
    let resp = post("/llm/v1/messages", messages("llama-9"))
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    // No model at all, and a path the route does not serve.
    let resp = post("/llm/v1/chat/completions", json!({"messages": []}))
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let resp = post("/llm/v1/files", json!({})).await.expect("send");
    assert_eq!(resp.status(), 404);

    // /v1/models: exact names and aliases, not the wildcards.
    let list: Value = http
        .get(server.url("/llm/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(list["object"], "list");
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["claude-3-opus", "fast", "gpt-4o", "gpt-4o-mini"]);

    // Usage: one event per answered call, with the mock's tokens and the model sent.
    let store = db.open().await;
    let events = wait_events(&*store, 10).await;
    assert_eq!(events.len(), 10, "one event per call: {events:#?}");
    let answered: Vec<_> = events
        .iter()
        .filter(|e| e.status == 200 && e.path != "/llm/v1/models")
        .collect();
    assert_eq!(answered.len(), 5, "{events:#?}");
    assert!(
        answered
            .iter()
            .all(|e| e.tokens.prompt == 11 && e.tokens.completion == 7)
    );
    assert!(
        answered
            .iter()
            .any(|e| e.model.as_deref() == Some("gpt-4o-mini"))
    );
    assert!(
        answered
            .iter()
            .any(|e| e.model.as_deref() == Some("claude-3-opus-20240229")),
        "{answered:#?}"
    );
}
