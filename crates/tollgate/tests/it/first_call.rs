//! The first call whose usage must be estimated costs no more than the later ones: the tokenizer
//! vocabulary the routes need loads in the background at start, not inside that call, and the
//! count itself runs after the response.

use std::time::{Duration, Instant};

use tollgate_core::tokenize::Vocabulary;
use tollgate_mock_upstream::MockUpstream;

use crate::harness::{Backend, Server, TestDb, add_key, add_route, client, wait_events};

/// The vocabulary OpenAI routes need, as `/metrics` names it.
const LOADED_METRIC: &str = "tollgate_tokenizer_vocabulary_loaded{vocabulary=\"o200k_base\"}";

/// Estimated calls measured after the first one.
const LATER_CALLS: usize = 10;

/// Rounds, each on a freshly started server; medians across rounds are compared.
const ROUNDS: usize = 3;

/// How much slower than a later call the first estimated call may be. The stall this guards
/// against is the vocabulary load: over half a second in a release build, seconds in a debug one.
/// The bound is far below that and far above the noise of a loaded two-core machine.
const FIRST_CALL_SLACK: Duration = Duration::from_millis(25);

const PROMPT: &str = "Count me: how many tokens does this prompt have?";
const ANSWER: &str = "An answer whose usage the upstream leaves out, so the gateway counts it.";

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

async fn metric_or_zero(server: &Server, name: &str) -> f64 {
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// One chat completion without `usage` in the answer; returns its latency to the last byte.
async fn estimated_call(http: &reqwest::Client, server: &Server, key: &str) -> Duration {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
    });
    let started = Instant::now();
    let resp = http
        .post(server.url("/openai/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-mock-no-usage", "1")
        .header("x-mock-text", ANSWER)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let answer: serde_json::Value = resp.json().await.expect("json answer");
    let elapsed = started.elapsed();
    assert!(answer.get("usage").is_none(), "the mock left usage out");
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_estimated_call_is_as_fast_as_the_tenth() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "llm",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    // A plain route to the same upstream: a call through it warms what every first call pays
    // for (the key look-up, the upstream connection) without estimating anything.
    add_route(&db, "plain", "/plain", &mock.url(), &["--strip-prefix"]);
    let (_, key) = add_key(&db, "first-call", &[]);
    let http = client();

    let mut firsts = Vec::new();
    let mut laters = Vec::new();
    for _ in 0..ROUNDS {
        let mut server = Server::start(&db, &[]).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while metric_or_zero(&server, LOADED_METRIC).await < 1.0 {
            assert!(
                Instant::now() < deadline,
                "vocabulary not loaded 60 s after start: {}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let warm = http
            .get(server.url("/plain/static"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send");
        assert_eq!(warm.status().as_u16(), 200);
        warm.bytes().await.expect("body");

        firsts.push(estimated_call(&http, &server, &key).await);
        let mut round = Vec::new();
        for _ in 0..LATER_CALLS {
            round.push(estimated_call(&http, &server, &key).await);
        }
        laters.push(median(round));
        assert!(server.stop().await, "clean stop: {}", server.logs());
    }
    let first = median(firsts.clone());
    let later = median(laters.clone());
    assert!(
        first <= later + FIRST_CALL_SLACK,
        "first estimated call {first:?} (rounds {firsts:?}) against {later:?} for later ones \
         (per-round medians {laters:?})"
    );

    // Every estimated call was counted, with the vocabulary, after its response.
    let store = db.open().await;
    let calls = ROUNDS * (LATER_CALLS + 1);
    let events = wait_events(&*store, calls + ROUNDS).await;
    let estimated: Vec<_> = events
        .iter()
        .filter(|e| e.route.as_deref() == Some("llm"))
        .collect();
    assert_eq!(estimated.len(), calls);
    let vocabulary = Vocabulary::for_model("gpt-4o-mini");
    let prompt = i64::try_from(vocabulary.count(PROMPT)).expect("small");
    let completion = i64::try_from(vocabulary.count(ANSWER)).expect("small");
    for event in estimated {
        assert_eq!(event.status, 200);
        assert!(event.estimated, "{event:?}");
        assert_eq!(event.tokens.prompt, prompt, "{event:?}");
        assert_eq!(event.tokens.completion, completion, "{event:?}");
        assert_eq!(event.tokens.total, prompt + completion, "{event:?}");
    }
}

/// A call made at once, whether or not the vocabulary has loaded yet, is not held up by it, and
/// its usage is still counted with the vocabulary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_right_after_start_does_not_wait_for_the_vocabulary() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "llm",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    let (_, key) = add_key(&db, "at-once", &[]);
    let server = Server::start(&db, &[]).await;
    let http = client();
    let loaded_before = metric_or_zero(&server, LOADED_METRIC).await;
    let first = estimated_call(&http, &server, &key).await;
    let second = estimated_call(&http, &server, &key).await;
    // Generous: the load takes seconds in a debug build; an unloaded-vocabulary call must not.
    assert!(
        first <= second + Duration::from_millis(250),
        "first call {first:?} against {second:?} (vocabulary loaded before it: {loaded_before})"
    );
    let store = db.open().await;
    let events = wait_events(&*store, 2).await;
    let vocabulary = Vocabulary::for_model("gpt-4o-mini");
    let completion = i64::try_from(vocabulary.count(ANSWER)).expect("small");
    for event in &events {
        assert!(event.estimated, "{event:?}");
        assert_eq!(event.tokens.completion, completion, "{event:?}");
    }
}
