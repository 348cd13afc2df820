//! Prices: the built-in table is there from the start, a price set from the console or the CLI
//! prices the next call without a restart, unpriced calls show as "no price" (never $0) in the
//! API and the CLI, and bad prices are refused naming the field with nothing written.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, add_route, cli, cli_json, client};

/// One chat completion of `model` reporting 1000 prompt and 500 completion tokens.
async fn call(server: &Server, key: &str, model: &str) {
    let resp = client()
        .post(server.url("/openai/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-mock-prompt-tokens", "1000")
        .header("x-mock-completion-tokens", "500")
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status().as_u16(), 200);
    let _ = resp.bytes().await;
}

/// The stored cost of the one call of `model`, once it is stored: `Some(None)` for no price.
async fn cost_of(db: &TestDb, model: &str) -> Option<f64> {
    let store = db.open().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = store.recent_usage(1000).await.expect("events");
        if let Some(e) = events.iter().find(|e| e.model.as_deref() == Some(model)) {
            store.close().await;
            return e.cost_usd;
        }
        assert!(Instant::now() < deadline, "no event of {model}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn console_prices(list: &Value) -> Vec<&Value> {
    list["prices"]
        .as_array()
        .expect("prices")
        .iter()
        .filter(|p| p["source"] == "console")
        .collect()
}

async fn prices_end_to_end(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "llm",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    let (_, key) = add_key(&db, "prices", &[]);
    let server = Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // The built-in table is in force from the start, with its date.
    let list = root.ok(Method::GET, "/api/v1/prices", None, 200).await;
    let as_of = list["as_of"].as_str().expect("as_of");
    assert_eq!(as_of.len(), 10, "{as_of}");
    let built_in = list["prices"].as_array().expect("prices");
    assert!(built_in.len() >= 40, "{} prices", built_in.len());
    assert!(built_in.iter().any(|p| p["model"] == "gpt-4o-mini"
        && p["source"] == "built_in"
        && p["provider"] == "openai"));
    // A built-in model is priced on its first call.
    call(&server, &key, "gpt-4o-mini").await;
    let cost = cost_of(&db, "gpt-4o-mini").await.expect("priced");
    assert!(cost > 0.0, "{cost}");

    // A model without a price: "no price", not $0, in the event, the summary and the CLI.
    call(&server, &key, "house-model-a").await;
    assert_eq!(cost_of(&db, "house-model-a").await, None);
    server.wait_flushed().await;
    let summary = root
        .ok(Method::GET, "/api/v1/usage/summary?range=1d", None, 200)
        .await;
    assert_eq!(summary["unpriced_calls"], 1, "{summary}");
    assert!((summary["cost_usd"].as_f64().expect("cost") - cost).abs() < 1e-12);
    let top = root
        .ok(
            Method::GET,
            "/api/v1/usage/top?by=model&range=1d",
            None,
            200,
        )
        .await;
    let house = top
        .as_array()
        .expect("top")
        .iter()
        .find(|i| i["name"] == "house-model-a")
        .expect("house model in the top list");
    assert_eq!(
        (house["unpriced_calls"].as_i64(), house["cost_usd"].as_f64()),
        (Some(1), Some(0.0))
    );
    let logs = root
        .ok(Method::GET, "/api/v1/logs?model=house-model-a", None, 200)
        .await;
    let entry = &logs["items"][0];
    assert!(entry["cost_usd"].is_null(), "{logs}");
    let out = cli(&db, &["usage", "top", "--by", "model"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.contains("house-model-a") && l.contains("no price")),
        "{text}"
    );

    // Bad prices: 422 naming the field, nothing written.
    for (body, field) in [
        (json!({"input": -1, "output": 1}), "input"),
        (json!({"input": 1, "output": 1e9}), "output"),
        (
            json!({"input": 1, "output": 1, "cached_input": -0.5}),
            "cached_input",
        ),
        (json!({"input": 1, "output": "NaN"}), "output"),
        (
            json!({"input": 1, "output": 1, "cache_write": 1}),
            "cache_write",
        ),
        (json!({"output": 1}), "input"),
    ] {
        let (status, v) = root
            .call(
                Method::PUT,
                "/api/v1/prices/house-model",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status.as_u16(), 422, "{body}: {v}");
        assert!(v.to_string().contains(field), "{body}: {v}");
    }
    let (status, v) = root
        .call(
            Method::PUT,
            "/api/v1/prices/house%20model",
            Some(json!({"input": 1, "output": 1})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{v}");
    assert_eq!(v["error"]["field"], "model", "{v}");
    let list = root.ok(Method::GET, "/api/v1/prices", None, 200).await;
    assert!(console_prices(&list).is_empty(), "{list}");

    // A price set from the console prices the next call, without a restart, and is audited.
    let set = root
        .ok(
            Method::PUT,
            "/api/v1/prices/house-model",
            Some(json!({"input": 2.0, "output": 4.0, "cached_input": 1.0})),
            200,
        )
        .await;
    assert_eq!(set["source"], "console");
    call(&server, &key, "house-model-b").await;
    let cost = cost_of(&db, "house-model-b").await.expect("priced now");
    assert!(
        (cost - (1000.0 * 2.0 + 500.0 * 4.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let list = root.ok(Method::GET, "/api/v1/prices", None, 200).await;
    let ours = console_prices(&list);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["updated_by"], format!("user:{ADMIN_EMAIL}"));
    let audit = root
        .ok(Method::GET, "/api/v1/audit?action=price.set", None, 200)
        .await;
    assert!(audit.to_string().contains("house-model"), "{audit}");

    // A console price over a built-in one wins; removing it brings the built-in one back.
    root.ok(
        Method::PUT,
        "/api/v1/prices/gpt-4o-mini",
        Some(json!({"input": 0.0, "output": 0.0})),
        200,
    )
    .await;
    let list = root.ok(Method::GET, "/api/v1/prices", None, 200).await;
    let mini = list["prices"]
        .as_array()
        .expect("prices")
        .iter()
        .find(|p| p["model"] == "gpt-4o-mini")
        .expect("mini");
    assert_eq!(
        (mini["source"].as_str(), mini["input"].as_f64()),
        (Some("console"), Some(0.0))
    );
    root.ok(Method::DELETE, "/api/v1/prices/gpt-4o-mini", None, 204)
        .await;
    root.ok(Method::DELETE, "/api/v1/prices/gpt-4o-mini", None, 404)
        .await;
    let list = root.ok(Method::GET, "/api/v1/prices", None, 200).await;
    assert!(
        list["prices"]
            .as_array()
            .expect("prices")
            .iter()
            .any(|p| p["model"] == "gpt-4o-mini" && p["source"] == "built_in")
    );

    // The CLI on the store: a price set there reaches the running server through the store
    // revision; a bad one names its flag and writes nothing.
    let out = cli(
        &db,
        &[
            "prices",
            "set",
            "house-model",
            "--input",
            "-1",
            "--output",
            "1",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--input"), "{err}");
    let out = cli(
        &db,
        &[
            "prices",
            "set",
            "house-model",
            "--input",
            "8",
            "--output",
            "8",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    call(&server, &key, "house-model-c").await;
    let cost = cost_of(&db, "house-model-c").await.expect("priced");
    assert!((cost - 1500.0 * 8.0 / 1e6).abs() < 1e-12, "{cost}");
    let listed = cli_json(&db, &["prices", "list", "--json", "--model", "HOUSE"]);
    let models: Vec<&str> = listed["prices"]
        .as_array()
        .expect("prices")
        .iter()
        .filter_map(|p| p["model"].as_str())
        .collect();
    assert_eq!(models, ["house-model"]);
    assert_eq!(listed["prices"][0]["source"], "console");
    let out = cli(&db, &["prices", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("claude-sonnet-4") && text.contains("built_in"),
        "{text}"
    );
    let out = cli(&db, &["prices", "remove", "house-model"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&db, &["prices", "remove", "house-model"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no price was set"));
}

both_backends!(prices_end_to_end);
