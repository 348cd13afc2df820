//! The official SDKs (`openai` for Python and Node, `anthropic` for Python) against an `llm` route
//! whose pools' first target always fails: every call, streaming and not, succeeds on the second
//! target, the SDK sees the tokens the upstream reported, and each call is one usage event.
//!
//! The SDK programs live in `tests/sdk/` (installed by `scripts/test.sh`); a missing SDK fails
//! the test with the command's own error, it is never skipped.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tollgate_mock_upstream::{Fault, MockUpstream};

use crate::harness::{Backend, Server, TestDb, add_key, add_route, wait_events};
use crate::llm_routing::{add_model, add_target};

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk")
}

/// Runs one SDK program with the route's address, the key and the model; returns its JSON.
fn run_sdk(program: &str, script: &str, base_url: &str, key: &str, model: &str) -> Value {
    let out = Command::new(program)
        .arg(script)
        .current_dir(sdk_dir())
        .env("TOLLGATE_BASE_URL", base_url)
        .env("TOLLGATE_KEY", key)
        .env("TOLLGATE_MODEL", model)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {script}: {e}"));
    assert!(
        out.status.success(),
        "{program} {script} failed (run scripts/test.sh once to install the SDKs):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What the mock upstream answers without control headers: 11 prompt and 7 completion tokens.
fn assert_mock_answer(result: &Value, part: &str) {
    let got = &result[part];
    assert!(
        got["content"].as_str().is_some_and(|s| !s.is_empty()),
        "{} {part}: no content in {result}",
        result["sdk"]
    );
    assert_eq!(
        got["prompt_tokens"], 11,
        "{} {part}: {result}",
        result["sdk"]
    );
    assert_eq!(
        got["completion_tokens"], 7,
        "{} {part}: {result}",
        result["sdk"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_succeed_through_a_pool_whose_first_target_always_fails() {
    let broken = MockUpstream::start().await.expect("mock");
    let healthy = MockUpstream::start().await.expect("mock");
    broken.set_fault(Some(Fault::Status {
        status: 503,
        retry_after: None,
    }));
    let db = TestDb::new(Backend::Sqlite).await;
    for (name, mock, provider) in [
        ("oa-broken", &broken, "openai_compatible"),
        ("oa-healthy", &healthy, "openai_compatible"),
        ("an-broken", &broken, "anthropic"),
        ("an-healthy", &healthy, "anthropic"),
    ] {
        add_target(
            &db,
            name,
            &format!("secret-{name}"),
            &[
                "--provider",
                provider,
                "--base-url",
                &format!("{}/v1", mock.url()),
            ],
        );
    }
    // least_busy with nothing in flight tries the pool in its order: the broken target first.
    add_model(
        &db,
        "gpt-4o-mini",
        &[
            "--target",
            "oa-broken",
            "--target",
            "oa-healthy",
            "--strategy",
            "least_busy",
        ],
    );
    add_model(
        &db,
        "claude-*",
        &[
            "--target",
            "an-broken",
            "--target",
            "an-healthy",
            "--strategy",
            "least_busy",
        ],
    );
    add_route(&db, "llm", "/llm", "http://127.0.0.1:9", &["--kind", "llm"]);
    let (_, key) = add_key(&db, "sdk", &[]);
    // The circuit stays closed throughout, so every call really meets the broken target first.
    let server = Server::start(&db, &[("TOLLGATE_GATEWAY__LLM_CIRCUIT_FAILURES", "100")]).await;
    let v1 = server.url("/llm/v1");
    let root = server.url("/llm");

    let py = run_sdk("python3", "openai_check.py", &v1, &key, "gpt-4o-mini");
    let node = run_sdk("node", "openai_check.mjs", &v1, &key, "gpt-4o-mini");
    for result in [&py, &node] {
        assert_mock_answer(result, "plain");
        assert_mock_answer(result, "stream");
        let models: Vec<&str> = result["models"]
            .as_array()
            .expect("models")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            models.contains(&"gpt-4o-mini"),
            "{}: /v1/models lists {models:?}",
            result["sdk"]
        );
    }
    let claude = run_sdk(
        "python3",
        "anthropic_check.py",
        &root,
        &key,
        "claude-3-5-haiku",
    );
    assert_mock_answer(&claude, "plain");
    assert_mock_answer(&claude, "stream");

    // Six calls (plain and streamed per SDK): each one met the broken target first.
    let calls = 6;
    assert_eq!(
        broken.request_count(),
        calls,
        "every call tried the broken target"
    );
    assert_eq!(
        healthy.request_count(),
        calls,
        "every call was answered by the healthy one"
    );

    // One usage event per call (the /v1/models lists are calls too, without tokens), with the
    // exact tokens of the answering attempt and both attempts in its detail.
    server.wait_flushed().await;
    let store = db.open().await;
    let events = wait_events(&*store, calls + 2).await;
    let llm_calls: Vec<_> = events
        .iter()
        .filter(|e| e.path.ends_with("/completions") || e.path.ends_with("/messages"))
        .collect();
    assert_eq!(llm_calls.len(), calls, "{events:#?}");
    for e in llm_calls {
        assert_eq!(e.status, 200, "{e:?}");
        assert_eq!((e.tokens.prompt, e.tokens.completion), (11, 7), "{e:?}");
        let attempts: Value =
            serde_json::from_str(e.attempts.as_deref().expect("attempts")).expect("json");
        let attempts = attempts.as_array().expect("array");
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert_eq!(attempts[0]["status"], 503, "{attempts:?}");
        assert_eq!(attempts[1]["status"], 200, "{attempts:?}");
    }
}
