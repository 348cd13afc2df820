//! `tollgate usage stats | top | export`: the analytics from a terminal, reading the store directly
//! (the server need not run). Tables for people, `--json` for scripts; exports stream.

use std::io::Write;

use anyhow::{Context, bail};
use tollgate_console::api::usage::{
    ExportFormat, LogEntry, RowEncoder, export_row, grouping_of, key_names, order_of, top_items,
    totals,
};
use tollgate_console::error::ApiError;
use tollgate_core::time::{format_ms, now_ms, parse_duration};
use tollgate_store::{AggregateOrder, EventCursor, EventFilter, Grouping, RollupFilter, Store};

use crate::cli::{UsageCommand, UsageFilterArgs};
use crate::config::Config;
use crate::{output, store};

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

fn rollup_filter(args: &UsageFilterArgs, r: &Range) -> RollupFilter {
    RollupFilter {
        from_ms: r.from_ms - r.from_ms.rem_euclid(HOUR_MS),
        to_ms: r.to_ms - r.to_ms.rem_euclid(HOUR_MS) + HOUR_MS,
        team_ids: None,
        key_id: args.key,
        route_id: args.route,
        model: args.model.clone(),
        status_class: None,
    }
}

/// `tollgate usage …`.
pub async fn run(config: &Config, command: UsageCommand) -> anyhow::Result<()> {
    // Check the arguments before opening the store.
    let (filter_args, extra) = match &command {
        UsageCommand::Stats(a) => (&a.filter, None),
        UsageCommand::Top(a) => (&a.filter, Some((a.by.as_str(), a.order.as_str(), a.limit))),
        UsageCommand::Export(a) => (&a.filter, None),
    };
    let r = range(filter_args)?;
    if let Some((by, order, limit)) = extra {
        grouping(by)?;
        ordering(order)?;
        if !(1..=1000).contains(&limit) {
            bail!("--limit must be 1 to 1000");
        }
    }
    let store = store::open(config).await?;
    let result = match command {
        UsageCommand::Stats(a) => stats(store.as_ref(), &a.filter, &r, a.json).await,
        UsageCommand::Top(a) => top(store.as_ref(), &a, &r).await,
        UsageCommand::Export(a) => export(store.as_ref(), &a, &r).await,
    };
    store.close().await;
    result
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms"))
}

async fn stats(
    store: &dyn Store,
    args: &UsageFilterArgs,
    r: &Range,
    json: bool,
) -> anyhow::Result<()> {
    let s = totals(store, &rollup_filter(args, r))
        .await
        .map_err(api_error)?;
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
                "latency avg / p50 / p95 / p99".into(),
                format!(
                    "{:.1} ms / {} / {} / {}",
                    s.avg_latency_ms,
                    ms(s.p50_latency_ms),
                    ms(s.p95_latency_ms),
                    ms(s.p99_latency_ms)
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
            vec!["cost".into(), format!("${:.4}", s.cost_usd)],
        ],
    );
    Ok(())
}

/// A console error as one CLI line, naming the flag.
fn flag_error(flag: &str) -> impl Fn(ApiError) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{flag}: {e}")
}

fn api_error(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn grouping(by: &str) -> anyhow::Result<Grouping> {
    grouping_of(Some(by)).map_err(flag_error("--by"))
}

fn ordering(order: &str) -> anyhow::Result<AggregateOrder> {
    order_of(Some(order)).map_err(flag_error("--order"))
}

async fn top(store: &dyn Store, a: &crate::cli::UsageTopArgs, r: &Range) -> anyhow::Result<()> {
    let filter = rollup_filter(&a.filter, r);
    let items = top_items(
        store,
        &filter,
        grouping(a.by.as_str())?,
        ordering(a.order.as_str())?,
        a.limit,
    )
    .await
    .map_err(api_error)?;
    if a.json {
        return output::json(&items);
    }
    output::table(
        &[
            a.by.as_str(),
            "calls",
            "errors",
            "p95",
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
                    ms(i.summary.p95_latency_ms),
                    i.summary.total_tokens.to_string(),
                    i.summary.cached_tokens.to_string(),
                    i.summary.reasoning_tokens.to_string(),
                    format!("${:.4}", i.summary.cost_usd),
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn export(
    store: &dyn Store,
    a: &crate::cli::UsageExportArgs,
    r: &Range,
) -> anyhow::Result<()> {
    let format = ExportFormat::parse(Some(a.format.as_str()))
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let filter = EventFilter {
        from_ms: Some(r.from_ms),
        to_ms: Some(r.to_ms),
        key_id: a.filter.key,
        route_id: a.filter.route,
        model: a.filter.model.clone(),
        ..EventFilter::default()
    };
    let mut out: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let names = key_names(store)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the key names: {e}"))?;
    let mut encoder = RowEncoder::new(format);
    let mut cursor: Option<EventCursor> = None;
    let mut rows = 0u64;
    loop {
        let page = store.search_usage(&filter, cursor, 5_000).await?;
        for e in &page {
            out.write_all(&encoder.row(&export_row(&LogEntry::from(e), &names)))
                .context("cannot write the export")?;
        }
        rows += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == 5_000 => {
                cursor = Some(EventCursor {
                    ts_ms: last.event.ts_ms,
                    id: last.id,
                })
            }
            _ => break,
        }
    }
    out.write_all(&encoder.finish())
        .context("cannot write the export")?;
    out.flush().context("cannot write the export")?;
    drop(out);
    if a.output.is_some() {
        output::note(&format!("{rows} events exported"));
    }
    Ok(())
}
