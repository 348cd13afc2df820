//! Target health over the API: what the gateway of the same process knows of each target's
//! circuit, calls, rate and recent errors, read by instance admins, never showing a credential.

use reqwest::Method;
use tollgate_mock_upstream::{Fault, MockUpstream};

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, add_route, client};
use crate::llm_routing::{add_model, add_target, chat};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_health_shows_the_open_circuit_attempts_and_recent_errors() {
    let a = MockUpstream::start().await.expect("mock");
    let b = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    for (name, mock) in [("ta", &a), ("tb", &b)] {
        add_target(
            &db,
            name,
            &format!("secret-{name}-value"),
            &[
                "--provider",
                "openai_compatible",
                "--base-url",
                &format!("{}/v1", mock.url()),
                "--rpm",
                "100",
            ],
        );
    }
    add_target(
        &db,
        "idle",
        "secret-idle-value",
        &[
            "--provider",
            "openai_compatible",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
    );
    add_model(
        &db,
        "pooled",
        &[
            "--target",
            "ta",
            "--target",
            "tb",
            "--strategy",
            "least_busy",
        ],
    );
    add_route(&db, "llm", "/llm", "http://127.0.0.1:9", &["--kind", "llm"]);
    let (_, key) = add_key(&db, "app", &[]);
    let mut env = console_env();
    env.extend([
        ("TOLLGATE_GATEWAY__LLM_CIRCUIT_FAILURES", "2"),
        ("TOLLGATE_GATEWAY__LLM_CIRCUIT_COOLDOWN_MS", "60000"),
    ]);
    let server = Server::start(&db, &env).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    a.set_fault(Some(Fault::Status {
        status: 503,
        retry_after: None,
    }));
    let http = client();
    let before = tollgate_core::time::now_ms();
    for _ in 0..3 {
        let resp = http
            .post(server.url("/llm/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat("pooled"))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{}", server.logs());
    }
    let after = tollgate_core::time::now_ms();

    let (status, health) = admin
        .call(Method::GET, "/api/v1/targets/health", None)
        .await;
    assert_eq!(status.as_u16(), 200, "{health}");
    let text = health.to_string();
    assert!(!text.contains("secret-"), "no credential: {text}");
    let of = |name: &str| {
        health
            .as_array()
            .expect("list")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    let ta = of("ta");
    assert_eq!(ta["circuit"], "open", "{ta}");
    assert_eq!(ta["consecutive_failures"], 2);
    let since = ta["open_since"].as_i64().expect("open_since");
    assert!((before..=after).contains(&since), "{ta}");
    assert!(ta["reopens_at"].as_i64().expect("reopens_at") >= since + 60_000);
    assert_eq!(ta["rpm"], 100);
    assert_eq!(ta["in_flight"], 0);
    let sum = |t: &serde_json::Value, field: &str| -> u64 {
        t["minutes"]
            .as_array()
            .expect("minutes")
            .iter()
            .map(|m| m[field].as_u64().expect("count"))
            .sum()
    };
    // Two failed attempts opened the circuit; the third call did not try ta.
    assert_eq!((sum(&ta, "attempts"), sum(&ta, "errors")), (2, 2), "{ta}");
    let errors = ta["recent_errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["status"], 503);
    assert_eq!(errors[0]["reason"], "upstream server error");
    assert!(
        errors[0]["at"].as_i64() >= errors[1]["at"].as_i64(),
        "newest first"
    );

    let tb = of("tb");
    assert_eq!(tb["circuit"], "closed");
    assert_eq!(tb["open_since"], serde_json::Value::Null);
    assert_eq!((sum(&tb, "attempts"), sum(&tb, "errors")), (3, 0), "{tb}");
    assert!(tb["current_minute_attempts"].as_u64().expect("count") <= 3);
    assert_eq!(tb["recent_errors"].as_array().expect("errors").len(), 0);

    let idle = of("idle");
    assert_eq!(idle["circuit"], "closed");
    assert_eq!(idle["rpm"], serde_json::Value::Null);
    assert_eq!(sum(&idle, "attempts"), 0);
}
