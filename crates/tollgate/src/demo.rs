//! `tollgate demo`: realistic usage for trying the console and for benchmarks — several teams,
//! keys, routes and models, a daily rhythm, errors, streams — written through the same usage
//! writer as the gateway's, with a progress bar.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tollgate_core::crypto::SealedRow;
use tollgate_core::pricing::{PricedTable, Prices};
use tollgate_core::time::now_ms;
use tollgate_core::{ApiKey, RouteKind, TokenUsage, UsageEvent, UsageSource};
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::writer::{Durability, UsageWriter, WriterConfig};
use tollgate_store::{KeyRecord, NewKey, NewRoute, RouteRecord, Store};

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::{output, store};

use tollgate_core::time::DAY_MS;
const TEAMS: [&str; 3] = ["acme", "globex", "initech"];
const ROUTES: [(&str, &str, RouteKind, &[&str]); 4] = [
    (
        "openai",
        "https://api.openai.com",
        RouteKind::Openai,
        &["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini"],
    ),
    (
        "anthropic",
        "https://api.anthropic.com",
        RouteKind::Anthropic,
        &["claude-sonnet-4", "claude-haiku-4-5"],
    ),
    (
        "search",
        "http://search.internal:8080",
        RouteKind::Http,
        &[],
    ),
    (
        "billing",
        "http://billing.internal:8080",
        RouteKind::Http,
        &[],
    ),
];

async fn ensure_fixtures(
    config: &Config,
    store: &dyn Store,
) -> anyhow::Result<(Vec<KeyRecord>, Vec<RouteRecord>)> {
    let mut routes = Vec::new();
    for (name, upstream, kind, _) in ROUTES {
        let route = match store.route_by_name(&format!("demo-{name}")).await? {
            Some(r) => r,
            None => {
                store
                    .create_route(NewRoute {
                        team_id: None,
                        name: format!("demo-{name}"),
                        prefix: format!("/demo-{name}"),
                        upstream_url: upstream.to_owned(),
                        kind,
                        strip_prefix: true,
                        connect_timeout_ms: 5_000,
                        timeout_ms: 300_000,
                        sealed_credential: None,
                        credential_header: None,
                    })
                    .await?
            }
        };
        routes.push(route);
    }
    let mut keys = Vec::new();
    for team_name in TEAMS {
        let team = store.ensure_team(team_name).await?;
        let existing: Vec<_> = store
            .list_keys(Some(team.id))
            .await?
            .into_iter()
            .filter(|k| k.name.starts_with("demo-"))
            .collect();
        if existing.is_empty() {
            for purpose in ["n8n", "agents", "ci", "notebooks"] {
                let secret = ApiKey::generate();
                let key = store
                    .create_key(NewKey {
                        team_id: team.id,
                        name: format!("demo-{team_name}-{purpose}"),
                        description: "demo data".into(),
                        key_hash: secret.hash(),
                        prefix: secret.display_prefix(),
                        sealed_key: config.master_key().map(|m| {
                            m.seal(
                                secret.expose().as_bytes(),
                                SealedRow::ApiKey(&secret.hash()),
                            )
                        }),
                        created_by: Some(crate::admin::os_user()),
                        expires_at_ms: None,
                        route_ids: None,
                    })
                    .await?;
                keys.push(key);
            }
        } else {
            keys.extend(existing);
        }
    }
    Ok((keys, routes))
}

/// Relative traffic at an hour of the UTC day: quiet at night, busy in working hours.
fn diurnal_weight(hour: i64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "hours of a day")]
    let h = hour as f64;
    0.25 + (std::f64::consts::PI * (h - 3.0) / 24.0).sin().powi(2) * 1.5
}

/// One generated event at `ts`.
fn event(
    rng: &mut StdRng,
    ts: i64,
    keys: &[KeyRecord],
    routes: &[RouteRecord],
    prices: &PricedTable,
) -> UsageEvent {
    let key = &keys[rng.random_range(0..keys.len())];
    let ri = rng.random_range(0..ROUTES.len());
    let (route_name, _, kind, models) = ROUTES[ri];
    let route = &routes[ri];
    let roll: f64 = rng.random();
    let status = if roll < 0.93 {
        200
    } else if roll < 0.955 {
        429
    } else if roll < 0.97 {
        500
    } else if roll < 0.98 {
        502
    } else if roll < 0.99 {
        400
    } else if roll < 0.995 {
        401
    } else {
        499
    };
    let path = match kind {
        RouteKind::Openai | RouteKind::Llm => "/v1/chat/completions",
        RouteKind::Anthropic => "/v1/messages",
        RouteKind::Http => "/v1/query",
    };
    let mut e = UsageEvent::new(
        ts,
        if kind.is_llm() { "POST" } else { "GET" },
        format!("/demo-{route_name}{path}"),
        status,
    );
    e.key_id = Some(key.id);
    e.key_hash = Some(key.key_hash.clone());
    e.team_id = Some(key.team_id);
    e.route_id = Some(route.id);
    e.route = Some(route.name.clone());
    e.source = UsageSource::Gateway;
    e.client_ip = Some(format!(
        "10.0.{}.{}",
        rng.random_range(0..4),
        rng.random_range(2..250)
    ));
    e.user_agent = Some(
        [
            "n8n/1.64",
            "openai-python/1.51",
            "curl/8.5",
            "anthropic-typescript/0.30",
        ][rng.random_range(0..4)]
        .to_owned(),
    );
    // Latency: mostly fast, with a long tail; streams and LLM calls are slower.
    let base: f64 = if kind.is_llm() { 400.0 } else { 15.0 };
    let tail: f64 = rng.random::<f64>().powi(4) * if kind.is_llm() { 20_000.0 } else { 800.0 };
    #[expect(clippy::cast_possible_truncation, reason = "bounded latencies in µs")]
    let latency_us = ((base + tail + rng.random::<f64>() * base) * 1000.0) as i64;
    e.latency_us = latency_us;
    // The upstream's first byte: a stream's comes early, a whole answer's late; its last byte
    // a little before the call's end (the gateway's own share), unless the answer never ended.
    e.upstream_latency_us = Some(if kind.is_llm() {
        latency_us / 4
    } else {
        latency_us * 9 / 10
    });
    e.upstream_last_byte_us = (status != 499 && status != 502).then_some(latency_us * 97 / 100);
    if status >= 500 {
        e.error = Some(if status == 502 {
            "upstream_unreachable: connection refused".into()
        } else {
            "upstream answered 500".into()
        });
    } else if status == 429 {
        e.error = Some("upstream rate limit".into());
    } else if status == 499 {
        e.error = Some("client_closed_request: the client hung up during the response".into());
    }
    if kind.is_llm() && status == 200 {
        let model = models[rng.random_range(0..models.len())];
        let prompt = rng.random_range(20..4_000);
        let completion = rng.random_range(5..1_500);
        let cached = if rng.random_bool(0.3) { prompt / 2 } else { 0 };
        let reasoning = if model.starts_with('o') {
            completion / 3
        } else {
            0
        };
        e.model = Some(model.to_owned());
        e.tokens = TokenUsage {
            prompt,
            completion,
            total: prompt + completion,
            cached,
            reasoning,
        };
        e.estimated = rng.random_bool(0.05);
        e.cost_usd = prices.cost(Some(model), &e.tokens);
    } else if kind.is_llm() {
        e.model = Some(models[rng.random_range(0..models.len())].to_owned());
    }
    e
}

/// `tollgate demo`.
pub async fn run(config: &Config, args: &DemoArgs) -> anyhow::Result<()> {
    if args.events == 0 || args.events > 100_000_000 {
        bail!("--events must be 1 to 100000000");
    }
    if !(1..=400).contains(&args.days) {
        bail!("--days must be 1 to 400");
    }
    let store = store::open(config).await?;
    tollgate_store::private::create_dir(&config.data_dir)
        .with_context(|| format!("data_dir {} cannot be created", config.data_dir.display()))?;
    let (keys, routes) = ensure_fixtures(config, store.as_ref()).await?;
    let metrics = Metrics::new();
    let (writer, sink) = UsageWriter::start(
        store.clone(),
        WriterConfig {
            queue_capacity: config.writer.queue_capacity,
            batch_size: config.writer.batch_size.max(1000),
            batch_interval: config.batch_interval(),
            spool_dir: config.spool_dir(),
            // A bulk import: nothing answers a client, so nothing waits for a sync.
            durability: Durability::Memory,
        },
        metrics.clone(),
    )
    .with_context(|| format!("spool {} cannot be opened", config.spool_dir().display()))?;
    // The prices a server with this configuration would use: built in, then `[prices]`.
    let prices = Prices::new(config.prices.clone()).current();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let now = now_ms();
    let start = now - i64::from(args.days) * DAY_MS;
    // Hour weights over the whole span, so the daily rhythm shows in every chart.
    let hours = i64::from(args.days) * 24;
    let weights: Vec<f64> = (0..hours)
        .map(|h| diurnal_weight((start / 3_600_000 + h).rem_euclid(24)))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let bar = ProgressBar::new(args.events);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} events  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let high_water = i64::try_from(config.writer.queue_capacity / 2).unwrap_or(i64::MAX);
    let mut written = 0u64;
    for (h, w) in weights.iter().enumerate() {
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "event counts"
        )]
        let target = (((w / total_weight) * args.events as f64) as u64).min(args.events - written);
        let hour_start =
            start - start.rem_euclid(3_600_000) + i64::try_from(h).unwrap_or(0) * 3_600_000;
        for _ in 0..target {
            let ts = (hour_start + rng.random_range(0..3_600_000)).min(now - 1);
            sink.record(event(&mut rng, ts, &keys, &routes, &prices));
            written += 1;
            if written.is_multiple_of(4096) {
                bar.set_position(written);
                // Backpressure: the demo waits for the writer instead of filling the spool.
                while sink.status().queue_depth > high_water {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    // Rounding leaves a few events: put them in the last hour.
    while written < args.events {
        let ts = now - rng.random_range(1..3_600_000);
        sink.record(event(&mut rng, ts, &keys, &routes, &prices));
        written += 1;
    }
    bar.set_position(written);
    drop(sink);
    writer.shutdown().await;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    store.close().await;
    let dropped = metrics.dropped_now();
    if dropped > 0 {
        bail!("{dropped} demo events could not be written");
    }
    #[expect(clippy::cast_precision_loss, reason = "event counts")]
    let rate = written as f64 / secs.max(1e-9);
    output::line(&format!(
        "{written} demo events over {} days written in {secs:.1} s ({rate:.0} events/s): {} keys in {} teams, {} routes",
        args.days,
        keys.len(),
        TEAMS.len(),
        routes.len()
    ));
    Ok(())
}
