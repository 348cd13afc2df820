//! Deliveries to a real HTTP receiver on 127.0.0.1: signatures, formats, retries, once-only
//! crossings, give-ups and the address policy.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::mpsc;
use tollgate_alerts::{
    Alert, AlertLedger, AttemptStatus, BackendError, BudgetUnit, Channel, ChannelFormat,
    DispatchOutcome, Dispatcher, DispatcherConfig, Evaluator, EvaluatorConfig, Jitter, KeyExpiry,
    MemoryDeliveryLog, MemoryLeases, MemoryLedger, ObservationSource, Observations, OutboundPolicy,
    RetryPolicy, SIGNATURE_HEADER, StaticChannels, TIMESTAMP_HEADER, new_secret, verify,
};
use tollgate_core::upstream::UpstreamAllowlist;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<u16>>,
    received: Mutex<Vec<Received>>,
}

/// A webhook receiver answering the scripted statuses in order, then 200.
struct Receiver {
    url: String,
    script: Arc<Script>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Self {
        let script = Arc::new(Script {
            answers: Mutex::new(answers.iter().copied().collect()),
            received: Mutex::default(),
        });
        async fn hook(
            State(script): State<Arc<Script>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> (StatusCode, [(&'static str, &'static str); 1]) {
            script
                .received
                .lock()
                .unwrap()
                .push(Received { headers, body });
            let code = script.answers.lock().unwrap().pop_front().unwrap_or(200);
            // A 429 asks for one second; the dispatcher waits at least that long.
            let retry_after = if code == 429 { "1" } else { "0" };
            (
                StatusCode::from_u16(code).unwrap(),
                [("retry-after", retry_after)],
            )
        }
        let app = axum::Router::new()
            .fallback(hook)
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hooks/T0/sekrit-path?token=sekrit-query"),
            script,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }
}

fn loopback_allowed() -> OutboundPolicy {
    OutboundPolicy::new(UpstreamAllowlist::parse(&["127.0.0.1"]).unwrap(), vec![])
}

fn config(max_attempts: u32) -> DispatcherConfig {
    let mut config = DispatcherConfig::new("gw-test");
    config.retry = RetryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(40),
        max_attempts,
        jitter: Jitter::None,
    };
    config.timeout = Duration::from_secs(5);
    config.outbound = loopback_allowed();
    config
}

fn channel(id: i64, format: ChannelFormat, url: &str, secret: &SecretString) -> Channel {
    Channel::new(id, "ops", format, url, secret.clone()).unwrap()
}

struct Setup {
    dispatcher: Dispatcher,
    log: Arc<MemoryDeliveryLog>,
    ledger: Arc<MemoryLedger>,
}

fn setup(config: DispatcherConfig, channels: Vec<Channel>) -> Setup {
    let log = Arc::new(MemoryDeliveryLog::default());
    let ledger = Arc::new(MemoryLedger::new());
    let dispatcher = Dispatcher::new(
        config,
        Arc::new(StaticChannels::new(channels)),
        Arc::clone(&ledger) as Arc<dyn AlertLedger>,
        Arc::clone(&log) as _,
    )
    .unwrap();
    Setup {
        dispatcher,
        log,
        ledger,
    }
}

fn crossing() -> Alert {
    Alert::BudgetCrossing {
        limit_id: 3,
        scope: "team ml".into(),
        threshold_pct: 80,
        used: 8_100.0,
        max: 10_000.0,
        unit: BudgetUnit::Tokens,
        period_start_ms: 1_764_547_200_000,
    }
}

fn now_secs() -> i64 {
    tollgate_core::time::now_ms() / 1000
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_generic_delivery_is_signed_and_verifies() {
    let receiver = Receiver::start(&[]).await;
    let secret = new_secret();
    let s = setup(
        config(3),
        vec![channel(1, ChannelFormat::Generic, &receiver.url, &secret)],
    );
    let outcome = s.dispatcher.dispatch(crossing()).await;
    let DispatchOutcome::Sent(last) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].status, AttemptStatus::Delivered);
    assert_eq!(last[0].http_status, Some(200));

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(header(r, "content-type"), "application/json");
    let verified = verify(
        secret.expose_secret(),
        header(r, TIMESTAMP_HEADER),
        header(r, SIGNATURE_HEADER),
        &r.body,
        now_secs(),
        300,
    );
    assert_eq!(verified, Ok(()));
    // Another channel's secret does not verify it.
    assert!(
        verify(
            new_secret().expose_secret(),
            header(r, TIMESTAMP_HEADER),
            header(r, SIGNATURE_HEADER),
            &r.body,
            now_secs(),
            300,
        )
        .is_err()
    );
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["kind"], "budget_crossing");
    assert_eq!(body["instance"], "gw-test");
    assert_eq!(body["dedup_key"], "budget:3:1764547200000:80");
    assert_eq!(body["details"]["threshold_pct"], 80);
    assert!(
        body["summary"]
            .as_str()
            .unwrap()
            .contains("team ml reached 80 %")
    );
    assert!(body["at"].as_str().unwrap().ends_with('Z'));

    let attempts = s.log.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].dedup_key, "budget:3:1764547200000:80");
    assert_eq!(attempts[0].attempt_no, 1);
}

#[tokio::test]
async fn a_slack_delivery_has_text_and_blocks_and_no_signature() {
    let receiver = Receiver::start(&[]).await;
    let s = setup(
        config(3),
        vec![channel(
            2,
            ChannelFormat::Slack,
            &receiver.url,
            &new_secret(),
        )],
    );
    s.dispatcher.dispatch(crossing()).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].headers.get(SIGNATURE_HEADER).is_none());
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("Budget threshold reached: Budget of team ml")
    );
    let blocks = body["blocks"].as_array().unwrap();
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["header", "section", "context"]);
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
}

#[tokio::test]
async fn a_500_is_retried_until_delivered_and_every_attempt_is_kept() {
    let receiver = Receiver::start(&[500, 500, 200]).await;
    let secret = new_secret();
    let s = setup(
        config(6),
        vec![channel(1, ChannelFormat::Generic, &receiver.url, &secret)],
    );
    s.dispatcher.dispatch(crossing()).await;

    let attempts = s.log.attempts();
    let summary: Vec<(u32, AttemptStatus, Option<u16>)> = attempts
        .iter()
        .map(|a| (a.attempt_no, a.status, a.http_status))
        .collect();
    assert_eq!(
        summary,
        [
            (1, AttemptStatus::Failed, Some(500)),
            (2, AttemptStatus::Failed, Some(500)),
            (3, AttemptStatus::Delivered, Some(200)),
        ]
    );
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("the receiver answered 500 Internal Server Error")
    );
    assert!(attempts.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    // Each retry carries the same body, signed afresh.
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.body, got[0].body);
        let ok = verify(
            secret.expose_secret(),
            header(r, TIMESTAMP_HEADER),
            header(r, SIGNATURE_HEADER),
            &r.body,
            now_secs(),
            300,
        );
        assert_eq!(ok, Ok(()));
    }
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let receiver = Receiver::start(&[429]).await;
    // The cap bounds how long a receiver may make us wait; 2 s leaves room for its 1 s.
    let mut config = config(3);
    config.retry.cap = Duration::from_secs(2);
    let s = setup(
        config,
        vec![channel(
            1,
            ChannelFormat::Generic,
            &receiver.url,
            &new_secret(),
        )],
    );
    s.dispatcher.dispatch(crossing()).await;
    let attempts = s.log.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].http_status, Some(429));
    assert_eq!(attempts[1].status, AttemptStatus::Delivered);
    let waited = attempts[1].at_ms - attempts[0].at_ms;
    assert!(waited >= 1_000, "retried after {waited} ms");
}

#[tokio::test]
async fn a_client_error_other_than_408_or_429_is_not_retried() {
    let receiver = Receiver::start(&[404]).await;
    let s = setup(
        config(6),
        vec![channel(
            1,
            ChannelFormat::Generic,
            &receiver.url,
            &new_secret(),
        )],
    );
    s.dispatcher.dispatch(crossing()).await;
    let attempts = s.log.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, AttemptStatus::GaveUp);
    assert_eq!(attempts[0].http_status, Some(404));
}

#[tokio::test]
async fn a_crossing_is_delivered_once_even_from_two_dispatchers() {
    let receiver = Receiver::start(&[]).await;
    let secret = new_secret();
    let channels = vec![channel(1, ChannelFormat::Generic, &receiver.url, &secret)];
    let first = setup(config(3), channels.clone());
    // The second "instance" has its own client and log but the same ledger.
    let second_log = Arc::new(MemoryDeliveryLog::default());
    let second = Dispatcher::new(
        config(3),
        Arc::new(StaticChannels::new(channels)),
        Arc::clone(&first.ledger) as Arc<dyn AlertLedger>,
        Arc::clone(&second_log) as _,
    )
    .unwrap();

    // Dispatched twice by one, then by both at once.
    let a = first.dispatcher.dispatch(crossing()).await;
    let b = first.dispatcher.dispatch(crossing()).await;
    let (c, d) = tokio::join!(
        first.dispatcher.dispatch(crossing()),
        second.dispatch(crossing())
    );
    assert!(matches!(a, DispatchOutcome::Sent(_)), "{a:?}");
    for later in [b, c, d] {
        assert_eq!(later, DispatchOutcome::AlreadyClaimed);
    }
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(first.log.attempts().len() + second_log.attempts().len(), 1);

    // The next threshold of the same budget is a new crossing.
    let Alert::BudgetCrossing {
        limit_id,
        scope,
        used,
        max,
        unit,
        period_start_ms,
        ..
    } = crossing()
    else {
        unreachable!()
    };
    let at_100 = Alert::BudgetCrossing {
        limit_id,
        scope,
        threshold_pct: 100,
        used,
        max,
        unit,
        period_start_ms,
    };
    assert!(matches!(
        second.dispatch(at_100).await,
        DispatchOutcome::Sent(_)
    ));
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn two_dispatchers_racing_on_many_crossings_send_each_once() {
    let receiver = Receiver::start(&[]).await;
    let channels = vec![channel(
        1,
        ChannelFormat::Generic,
        &receiver.url,
        &new_secret(),
    )];
    let shared = Arc::new(MemoryLedger::new());
    let make = || {
        Dispatcher::new(
            config(2),
            Arc::new(StaticChannels::new(channels.clone())),
            Arc::clone(&shared) as Arc<dyn AlertLedger>,
            Arc::new(MemoryDeliveryLog::default()),
        )
        .unwrap()
    };
    let (one, two) = (make(), make());
    let (tx_one, rx_one) = mpsc::channel(64);
    let (tx_two, rx_two) = mpsc::channel(64);
    let runs = [one.spawn(rx_one), two.spawn(rx_two)];
    for key_id in 0..10 {
        let alert = Alert::KeyExpiring {
            key_id,
            name: format!("k{key_id}"),
            expires_at_ms: 2_000_000_000_000,
            days: 7,
        };
        tx_one.try_send(alert.clone()).unwrap();
        tx_two.try_send(alert).unwrap();
    }
    drop((tx_one, tx_two));
    for run in runs {
        run.await.unwrap();
    }
    let mut keys: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["dedup_key"].as_str().unwrap().to_owned()
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(receiver.received().len(), 10);
    assert_eq!(keys.len(), 10);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_then_given_up() {
    // A port that was just free: connections are refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}/hooks/sekrit-path");
    let s = setup(
        config(3),
        vec![channel(1, ChannelFormat::Generic, &url, &new_secret())],
    );
    let outcome = s.dispatcher.dispatch(crossing()).await;
    let attempts = s.log.attempts();
    let statuses: Vec<AttemptStatus> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            AttemptStatus::Failed,
            AttemptStatus::Failed,
            AttemptStatus::GaveUp
        ]
    );
    assert!(attempts.iter().all(|a| a.http_status.is_none()));
    let error = attempts[2].error.clone().unwrap();
    assert!(!error.contains("sekrit"), "{error}");
    assert!(error.contains("connect"), "{error}");
    assert_eq!(outcome, DispatchOutcome::Sent(vec![attempts[2].clone()]));
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it() {
    let receiver = Receiver::start(&[]).await;
    let mut strict = config(6);
    strict.outbound = OutboundPolicy::default();
    let s = setup(
        strict,
        vec![channel(
            1,
            ChannelFormat::Generic,
            &receiver.url,
            &new_secret(),
        )],
    );
    s.dispatcher.dispatch(crossing()).await;
    let attempts = s.log.attempts();
    assert_eq!(attempts.len(), 1, "a refusal is not retried");
    assert_eq!(attempts[0].status, AttemptStatus::GaveUp);
    let error = attempts[0].error.as_deref().unwrap();
    assert!(error.contains("a loopback address"), "{error}");
    assert!(receiver.received().is_empty());

    // A name that resolves to loopback is refused the same way.
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let by_name = format!("http://localhost:{port}/hook");
    let mut strict = config(1);
    strict.outbound = OutboundPolicy::default();
    let s = setup(
        strict,
        vec![channel(1, ChannelFormat::Generic, &by_name, &new_secret())],
    );
    s.dispatcher.dispatch(crossing()).await;
    assert_eq!(s.log.attempts()[0].status, AttemptStatus::GaveUp);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_test_delivery_is_one_recorded_attempt() {
    let receiver = Receiver::start(&[503]).await;
    let secret = new_secret();
    let ch = channel(5, ChannelFormat::Generic, &receiver.url, &secret);
    let s = setup(config(6), vec![ch.clone()]);
    let failed = s.dispatcher.send_test(&ch).await;
    assert_eq!(failed.status, AttemptStatus::GaveUp);
    assert_eq!(failed.http_status, Some(503));
    let ok = s.dispatcher.send_test(&ch).await;
    assert_eq!(ok.status, AttemptStatus::Delivered);
    assert!(ok.dedup_key.starts_with("test:"));
    assert_eq!(s.log.attempts().len(), 2);
    let body: Value = serde_json::from_slice(&receiver.received()[1].body).unwrap();
    assert_eq!(body["kind"], "test");
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let receiver = Receiver::start(&[500]).await;
    let secret = new_secret();
    let ch = channel(1, ChannelFormat::Slack, &receiver.url, &secret);
    let s = setup(config(2), vec![ch.clone()]);
    s.dispatcher.dispatch(crossing()).await;
    let printed = format!(
        "{ch:?} {:?} {:?} {:?}",
        s.dispatcher,
        s.log.attempts(),
        ch.url
    );
    let secret_hex = &secret.expose_secret()[6..];
    for needle in [secret_hex, "sekrit-path", "sekrit-query"] {
        assert!(!printed.contains(needle), "{needle} in {printed}");
    }
    assert!(printed.contains("127.0.0.1"), "{printed}");
}

/// Counts evaluations, so the test sees which instance evaluated.
struct CountingSource {
    calls: AtomicUsize,
    expires_at_ms: i64,
}

#[async_trait]
impl ObservationSource for CountingSource {
    async fn observe(&self) -> Result<Observations, BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Observations {
            keys: vec![KeyExpiry {
                key_id: 42,
                name: "ci".into(),
                expires_at_ms: Some(self.expires_at_ms),
            }],
            ..Observations::default()
        })
    }
}

#[tokio::test]
async fn one_instance_evaluates_and_the_crossing_is_sent_once() {
    let receiver = Receiver::start(&[]).await;
    let channels = vec![channel(
        1,
        ChannelFormat::Generic,
        &receiver.url,
        &new_secret(),
    )];
    let s = setup(config(2), channels);
    let (tx, rx) = mpsc::channel(16);
    let dispatching = s.dispatcher.spawn(rx);

    let leases = MemoryLeases::new();
    let expires_at_ms = tollgate_core::time::now_ms() + 3_600_000;
    let evaluator = Arc::new(Evaluator::new(EvaluatorConfig::default()).unwrap());
    let sources = [
        Arc::new(CountingSource {
            calls: AtomicUsize::new(0),
            expires_at_ms,
        }),
        Arc::new(CountingSource {
            calls: AtomicUsize::new(0),
            expires_at_ms,
        }),
    ];
    let mut loops = Vec::new();
    for (n, source) in sources.iter().enumerate() {
        let evaluator = Arc::clone(&evaluator);
        let source = Arc::clone(source) as Arc<dyn ObservationSource>;
        let lease = Arc::new(leases.holder(format!("instance-{n}")));
        let tx = tx.clone();
        loops.push(tokio::spawn(async move {
            evaluator
                .run(source, lease, tx, Duration::from_millis(100))
                .await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let counts: Vec<usize> = sources
        .iter()
        .map(|s| s.calls.load(Ordering::SeqCst))
        .collect();
    assert!(
        counts.iter().filter(|&&c| c > 0).count() == 1 && counts.iter().sum::<usize>() >= 3,
        "exactly one instance evaluates, repeatedly: {counts:?}"
    );
    for l in &loops {
        l.abort();
    }
    drop(tx);
    for l in loops {
        let _ = l.await;
    }
    dispatching.await.unwrap();
    // Evaluated many times, delivered once.
    assert_eq!(receiver.received().len(), 1);
    let body: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
    assert_eq!(body["kind"], "key_expiring");
    assert_eq!(body["details"]["days"], 1);
}
