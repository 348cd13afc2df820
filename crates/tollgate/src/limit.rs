//! `tollgate limit …`: set, list and remove limits through the same rules as the console API. A
//! running server applies a change within a second (store revision); `limit list` computes the
//! current use from the store (budgets since their period started; rate windows and calls in
//! flight live only in a running gateway and show as zero here).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tollgate_console::api::limits::{LimitView, views};
use tollgate_console::rules::limits::{self, LimitDraft, LimitFilter, StoreSeed};
use tollgate_console::rules::{Actor, RuleError, Rules};
use tollgate_core::time::format_ms;
use tollgate_limits::{
    Enforcement, LimitKind, Limiter, LimiterConfig, LocalCounters, Period, Scope, Window, parse_usd,
};
use tollgate_store::Store;

use crate::admin::{cli_error, os_user};
use crate::cli::{LimitCommand, LimitSetArgs};
use crate::config::Config;
use crate::{output, store};

/// `tollgate limit …`.
pub async fn run(config: &Config, command: LimitCommand) -> anyhow::Result<()> {
    let store = store::open(config).await?;
    let result = match command {
        LimitCommand::Set(args) => set(store.as_ref(), &args).await,
        LimitCommand::List(args) => list(&store, args.json).await,
        LimitCommand::Remove(args) => remove(store.as_ref(), args.id, args.json).await,
    };
    store.close().await;
    result
}

/// The flag behind each kind, for errors about its ceiling.
fn kind_flag(kind: &LimitKind) -> &'static str {
    match kind {
        LimitKind::Requests {
            per: Window::Second,
            ..
        } => "--rps",
        LimitKind::Requests {
            per: Window::Minute,
            ..
        } => "--rpm",
        LimitKind::Requests {
            per: Window::Hour, ..
        } => "--rph",
        LimitKind::TokensPerMinute { .. } => "--tpm",
        LimitKind::Concurrency { .. } => "--concurrency",
        LimitKind::TokenBudget { .. } => "--tokens",
        LimitKind::CostBudget { .. } => "--cost-usd",
    }
}

fn limit_error(e: RuleError, kind: &LimitKind) -> anyhow::Error {
    let flag = kind_flag(kind);
    let flags = [
        ("kind.max", flag),
        ("kind.max_micro_usd", flag),
        ("kind.period", "--period"),
        ("alert_at", "--alert-at"),
        ("include_reported", "--include-reported"),
        ("scope.id", "--team/--key"),
    ];
    match e {
        RuleError::Forbidden(m) => {
            let m = m
                .strip_prefix("kind.max: ")
                .or_else(|| m.strip_prefix("kind.max_micro_usd: "))
                .map_or(m.clone(), |rest| format!("{flag}: {rest}"));
            anyhow::anyhow!("{m}")
        }
        other => cli_error(other, &flags),
    }
}

/// The kinds the flags ask for, in flag order.
fn kinds(args: &LimitSetArgs) -> anyhow::Result<Vec<LimitKind>> {
    let mut out = Vec::new();
    let rates = [
        (args.rps, Window::Second),
        (args.rpm, Window::Minute),
        (args.rph, Window::Hour),
    ];
    for (max, per) in rates {
        if let Some(max) = max {
            out.push(LimitKind::Requests { per, max });
        }
    }
    if let Some(max) = args.tpm {
        out.push(LimitKind::TokensPerMinute { max });
    }
    if let Some(max) = args.concurrency {
        out.push(LimitKind::Concurrency { max });
    }
    let budget = args.tokens.is_some() || args.cost_usd.is_some();
    let period: Option<Period> =
        match (&args.period, budget) {
            (Some(p), true) => Some(p.as_str().parse().map_err(
                |e: tollgate_limits::FieldError| anyhow::anyhow!("--period: {}", e.message),
            )?),
            (None, true) => anyhow::bail!("--period: give day, week, month or total with a budget"),
            (Some(_), false) => anyhow::bail!("--period: applies to --tokens and --cost-usd only"),
            (None, false) => None,
        };
    if let (Some(max), Some(period)) = (args.tokens, period) {
        out.push(LimitKind::TokenBudget { max, period });
    }
    if let (Some(usd), Some(period)) = (&args.cost_usd, period) {
        let max_micro_usd = parse_usd("--cost-usd", usd)
            .map_err(|e| anyhow::anyhow!("--cost-usd: {}", e.message))?;
        out.push(LimitKind::CostBudget {
            max_micro_usd,
            period,
        });
    }
    if out.is_empty() {
        anyhow::bail!(
            "give at least one of --rps, --rpm, --rph, --tpm, --concurrency, --tokens, --cost-usd"
        );
    }
    Ok(out)
}

async fn scope(store: &dyn Store, args: &LimitSetArgs) -> anyhow::Result<Scope> {
    Ok(match (&args.team, &args.key, &args.route) {
        (Some(team), _, _) => Scope::Team(*team),
        (_, Some(key), _) => Scope::Key(*key),
        (_, _, Some(name)) => Scope::Route(
            store
                .route_by_name(name)
                .await?
                .with_context(|| format!("--route: no route named `{name}`"))?
                .id,
        ),
        _ => Scope::Instance,
    })
}

/// `tollgate limit set`: every limit is checked before the first is stored, so a refused flag
/// stores nothing.
async fn set(store: &dyn Store, args: &LimitSetArgs) -> anyhow::Result<()> {
    let kinds = kinds(args)?;
    let scope = scope(store, args).await?;
    let rules = Rules::new(store);
    let operator = os_user();
    let actor = Actor::Operator(&operator);
    let drafts: Vec<LimitDraft> = kinds
        .into_iter()
        .map(|kind| LimitDraft {
            scope,
            kind,
            enforcement: Some(if args.soft {
                Enforcement::Soft
            } else {
                Enforcement::Hard
            }),
            alert_at: args.alert_at.clone(),
            include_reported: Some(args.include_reported && kind.period().is_some()),
        })
        .collect();
    if args.include_reported && drafts.iter().all(|d| d.kind.period().is_none()) {
        anyhow::bail!("--include-reported: applies to --tokens and --cost-usd only");
    }
    for draft in &drafts {
        limits::check_draft(&rules, &actor, draft)
            .await
            .map_err(|e| limit_error(e, &draft.kind))?;
    }
    let mut ids = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let kind = draft.kind;
        let entry = limits::create(&rules, &actor, draft, None)
            .await
            .map_err(|e| limit_error(e, &kind))?;
        if !args.json {
            output::line(&format!(
                "Set limit {}: {}.",
                entry.limit.id,
                limits::describe(&entry.limit)
            ));
        }
        ids.push(entry.limit.id);
    }
    if args.json {
        if let [id] = ids.as_slice() {
            output::json(&serde_json::json!({ "id": id }))?;
        } else {
            output::json(&serde_json::json!({ "ids": ids }))?;
        }
    }
    Ok(())
}

/// The limits with their use, computed from the store.
async fn current(store: &Arc<dyn Store>) -> anyhow::Result<Vec<LimitView>> {
    let operator = os_user();
    let entries = limits::list(
        &Rules::new(store.as_ref()),
        &Actor::Operator(&operator),
        LimitFilter::default(),
    )
    .await
    .map_err(|e| cli_error(e, &[]))?;
    let names = limits::scope_names(store.as_ref())
        .await
        .map_err(|e| cli_error(e, &[]))?;
    let counters = Arc::new(LocalCounters::new(Arc::new(StoreSeed::new(Arc::clone(
        store,
    )))));
    let limiter = Limiter::new(
        entries.iter().map(|e| e.limit.clone()).collect(),
        counters,
        LimiterConfig::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let usage: HashMap<i64, tollgate_limits::LimitUsage> = limiter
        .usage()
        .await
        .map_err(|e| anyhow::anyhow!("reading the limits' use failed: {e}"))?
        .into_iter()
        .map(|u| (u.limit_id, u))
        .collect();
    Ok(views(entries, &names, Some(&usage)))
}

fn kind_text(kind: &LimitKind) -> String {
    match *kind {
        LimitKind::Requests { per, max } => {
            let per = match per {
                Window::Second => "second",
                Window::Minute => "minute",
                Window::Hour => "hour",
            };
            format!("{max} requests/{per}")
        }
        LimitKind::TokensPerMinute { max } => format!("{max} tokens/minute"),
        LimitKind::Concurrency { max } => format!("{max} in flight"),
        LimitKind::TokenBudget { max, period } => {
            format!("{max} tokens/{}", period_text(period))
        }
        LimitKind::CostBudget {
            max_micro_usd,
            period,
        } => format!(
            "${}.{:06}/{}",
            max_micro_usd / 1_000_000,
            max_micro_usd % 1_000_000,
            period_text(period)
        ),
    }
}

fn period_text(period: Period) -> &'static str {
    match period {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
        Period::Total => "total",
    }
}

/// `tollgate limit list`.
async fn list(store: &Arc<dyn Store>, json: bool) -> anyhow::Result<()> {
    let views = current(store).await?;
    if json {
        return output::json(&serde_json::json!({ "limits": views }));
    }
    let rows = views
        .into_iter()
        .map(|v| {
            let (used, remaining, percent, resets) = v.usage.map_or_else(
                || ("-".into(), "-".into(), "-".into(), "-".into()),
                |u| {
                    (
                        u.used.to_string(),
                        u.remaining.to_string(),
                        format!("{:.2}%", u.percent),
                        u.reset_at.map_or_else(|| "never".into(), format_ms),
                    )
                },
            );
            vec![
                v.id.to_string(),
                v.scope.kind_name().to_owned(),
                v.scope_name,
                kind_text(&v.kind),
                match v.enforcement {
                    Enforcement::Hard => "hard".to_owned(),
                    Enforcement::Soft => "soft".to_owned(),
                },
                used,
                remaining,
                percent,
                resets,
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "SCOPE",
            "NAME",
            "LIMIT",
            "ENFORCEMENT",
            "USED",
            "REMAINING",
            "USE",
            "RESETS",
        ],
        rows,
    );
    Ok(())
}

/// `tollgate limit remove`.
async fn remove(store: &dyn Store, id: i64, json: bool) -> anyhow::Result<()> {
    let operator = os_user();
    let removed = match limits::delete(&Rules::new(store), &Actor::Operator(&operator), id).await {
        Err(RuleError::NotFound(_)) => anyhow::bail!("no limit with id {id}"),
        other => other.map_err(|e| cli_error(e, &[]))?,
    };
    if json {
        output::json(&serde_json::json!({ "id": id, "removed": true }))
    } else {
        output::line(&format!(
            "Removed limit {id}: {}.",
            limits::describe(&removed.limit)
        ));
        Ok(())
    }
}
