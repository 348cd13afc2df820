//! `tollgate usage stats | top | export`: the analytics from a terminal, reading the store directly
//! (the server need not run) or, with `--server`, through a console's API. Tables for people, `--json` for scripts; exports stream.

use std::io::Write;

use anyhow::{Context, bail};
use tollgate_console::api::usage::{ExportFormat, grouping_of, order_of};
use tollgate_console::error::ApiError;
use tollgate_core::time::{format_ms, now_ms, parse_duration};

use crate::backend::{Backend, Target, UsageAsk};
use crate::cli::{UsageCommand, UsageFilterArgs};
use crate::output;

use tollgate_core::time::HOUR_MS;

/// A resolved time range.
struct Range {
    from_ms: i64,
    to_ms: i64,
}

fn range(args: &UsageFilterArgs) -> anyhow::Result<Range> {
    let now = now_ms();
    let ago = |flag: &str, text: &str| -> anyhow::Result<i64> {
        let d = parse_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        let ms = i64::try_from(d.as_millis())
            .ok()
            .filter(|ms| *ms <= 400 * 24 * HOUR_MS);
        ms.map(|ms| now - ms)
            .with_context(|| format!("{flag} reaches back at most 400d"))
    };
    let from_ms = ago("--since", &args.since)?;
    let to_ms = match &args.until {
        Some(text) => ago("--until", text)?,
        None => now,
    };
    if from_ms >= to_ms {
        bail!("--since must reach further back than --until");
    }
    Ok(Range { from_ms, to_ms })
}

/// The flags behind the usage endpoints' fields.
const USAGE_FLAGS: &[(&str, &str)] = &[
    ("from", "--since"),
    ("to", "--until"),
    ("range", "--since"),
    ("by", "--by"),
    ("order", "--order"),
    ("limit", "--limit"),
    ("model", "--model"),
    ("key_id", "--key"),
    ("route_id", "--route"),
];

fn ask(args: &UsageFilterArgs, r: &Range) -> UsageAsk {
    UsageAsk {
        from_ms: r.from_ms,
        to_ms: r.to_ms,
        key: args.key,
        route: args.route,
        model: args.model.clone(),
    }
}

/// `tollgate usage …`, on the local store (the server need not run) or a server.
pub async fn run(target: Target<'_>, command: UsageCommand) -> anyhow::Result<()> {
    // Check the arguments before opening the store.
    let (filter_args, extra) = match &command {
        UsageCommand::Stats(a) => (&a.filter, None),
        UsageCommand::Top(a) => (&a.filter, Some((a.by.as_str(), a.order.as_str(), a.limit))),
        UsageCommand::Export(a) => (&a.filter, None),
    };
    let r = range(filter_args)?;
    if let Some((by, order, limit)) = extra {
        grouping_of(Some(by)).map_err(flag_error("--by"))?;
        order_of(Some(order)).map_err(flag_error("--order"))?;
        if !(1..=1000).contains(&limit) {
            bail!("--limit must be 1 to 1000");
        }
    }
    let backend = target.open().await?;
    let result = match command {
        UsageCommand::Stats(a) => stats(&backend, &a.filter, &r, a.json).await,
        UsageCommand::Top(a) => top(&backend, &a, &r).await,
        UsageCommand::Export(a) => export(&backend, &a, &r).await,
    };
    backend.close().await;
    result
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms"))
}

/// A percentile, marked `≤` when it is a coarse bucket's upper bound rather than a sketch's
/// estimate.
fn coarse_ms(v: Option<f64>, coarse: bool) -> String {
    match v {
        Some(v) if coarse => format!("≤ {v:.1} ms"),
        _ => ms(v),
    }
}

async fn stats(
    backend: &Backend,
    args: &UsageFilterArgs,
    r: &Range,
    json: bool,
) -> anyhow::Result<()> {
    let s = backend
        .usage_totals(&ask(args, r))
        .await
        .map_err(|e| e.cli(USAGE_FLAGS))?;
    if json {
        return output::json(&serde_json::json!({"from": r.from_ms, "to": r.to_ms, "summary": s}));
    }
    output::table(
        &["", "value"],
        vec![
            vec![
                "period".into(),
                format!("{} → {}", format_ms(r.from_ms), format_ms(r.to_ms)),
            ],
            vec!["calls".into(), s.calls.to_string()],
            vec!["errors".into(), s.errors.to_string()],
            vec![
                "success rate".into(),
                format!("{:.2} %", s.success_rate * 100.0),
            ],
            vec![
                "latency avg / p50 / p90 / p95 / p99 / p99.9".into(),
                format!(
                    "{:.1} ms / {} / {} / {} / {} / {}{}",
                    s.avg_latency_ms,
                    ms(s.p50_latency_ms),
                    ms(s.p90_latency_ms),
                    ms(s.p95_latency_ms),
                    ms(s.p99_latency_ms),
                    ms(s.p999_latency_ms),
                    if s.coarse {
                        " (coarse: bucket upper bounds)"
                    } else {
                        ""
                    }
                ),
            ],
            vec![
                "upstream p50 / p90 / p95 / p99 / p99.9".into(),
                format!(
                    "{} / {} / {} / {} / {}",
                    ms(s.upstream_p50_latency_ms),
                    ms(s.upstream_p90_latency_ms),
                    ms(s.upstream_p95_latency_ms),
                    ms(s.upstream_p99_latency_ms),
                    ms(s.upstream_p999_latency_ms)
                ),
            ],
            vec![
                "upstream last byte p50 / p90 / p95 / p99 / p99.9".into(),
                format!(
                    "{} / {} / {} / {} / {}",
                    ms(s.upstream_last_byte_p50_ms),
                    ms(s.upstream_last_byte_p90_ms),
                    ms(s.upstream_last_byte_p95_ms),
                    ms(s.upstream_last_byte_p99_ms),
                    ms(s.upstream_last_byte_p999_ms)
                ),
            ],
            vec![
                "tokens prompt / completion / total".into(),
                format!(
                    "{} / {} / {}",
                    s.prompt_tokens, s.completion_tokens, s.total_tokens
                ),
            ],
            vec![
                "tokens cached / reasoning".into(),
                format!("{} / {}", s.cached_tokens, s.reasoning_tokens),
            ],
            vec!["estimated calls".into(), s.estimated_calls.to_string()],
            vec!["cost".into(), cost_text(&s)],
        ],
    );
    Ok(())
}

/// A console error as one CLI line, naming the flag.
fn flag_error(flag: &str) -> impl Fn(ApiError) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{flag}: {e}")
}

async fn top(backend: &Backend, a: &crate::cli::UsageTopArgs, r: &Range) -> anyhow::Result<()> {
    let items = backend
        .usage_top(&ask(&a.filter, r), a.by.as_str(), a.order.as_str(), a.limit)
        .await
        .map_err(|e| e.cli(USAGE_FLAGS))?;
    if a.json {
        return output::json(&items);
    }
    output::table(
        &[
            a.by.as_str(),
            "calls",
            "errors",
            "p50",
            "p95",
            "p99",
            "upstream p95",
            "last byte p95",
            "tokens",
            "cached",
            "reasoning",
            "cost",
        ],
        items
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    i.summary.calls.to_string(),
                    i.summary.errors.to_string(),
                    ms(i.summary.p50_latency_ms),
                    coarse_ms(i.summary.p95_latency_ms, i.summary.coarse),
                    coarse_ms(i.summary.p99_latency_ms, i.summary.coarse),
                    ms(i.summary.upstream_p95_latency_ms),
                    ms(i.summary.upstream_last_byte_p95_ms),
                    i.summary.total_tokens.to_string(),
                    i.summary.cached_tokens.to_string(),
                    i.summary.reasoning_tokens.to_string(),
                    cost_text(&i.summary),
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn export(
    backend: &Backend,
    a: &crate::cli::UsageExportArgs,
    r: &Range,
) -> anyhow::Result<()> {
    let format = ExportFormat::parse(Some(a.format.as_str()))
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let rows = backend
        .usage_export(&ask(&a.filter, r), format, &mut out)
        .await
        .map_err(|e| e.cli(USAGE_FLAGS))?;
    out.flush().context("cannot write the export")?;
    drop(out);
    if let Some(path) = &a.output {
        match rows {
            Some(rows) => output::note(&format!("{rows} events exported")),
            None => output::note(&format!("events exported to {}", path.display())),
        }
    }
    Ok(())
}

/// A cost as people read it: "no price" when every call that used tokens had none (never $0),
/// and how many had none beside a figure.
fn cost_text(s: &tollgate_console::api::usage::UsageSummary) -> String {
    match s.unpriced_calls {
        0 => format!("${:.4}", s.cost_usd),
        n if s.cost_usd <= 0.0 => format!("no price ({n} calls)"),
        n => format!("${:.4} + {n} calls with no price", s.cost_usd),
    }
}
