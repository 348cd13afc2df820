//! `tollgate limit …`: set, list and remove limits through the same rules as the console API, on
//! the local store or a server. A running server applies a change within a second (store
//! revision). Locally `limit list` computes the current use from the store (budgets since their
//! period started; rate windows and calls in flight live only in a running gateway and show as
//! zero); with `--server` it shows the server's live use.

use anyhow::Context;
use tollgate_console::rules::limits::{self, LimitDraft};
use tollgate_core::time::format_ms;
use tollgate_limits::{Enforcement, LimitKind, Period, Scope, Window, parse_usd};

use crate::backend::{Backend, Failure, limit_of};
use crate::cli::{LimitCommand, LimitSetArgs};
use crate::output;

/// `tollgate limit …`, on the local store or a server.
pub async fn run(backend: Backend, command: LimitCommand) -> anyhow::Result<()> {
    let result = match command {
        LimitCommand::Set(args) => set(&backend, &args).await,
        LimitCommand::List(args) => list(&backend, args.json).await,
        LimitCommand::Remove(args) => remove(&backend, args.id, args.json).await,
    };
    backend.close().await;
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

fn limit_error(e: Failure, kind: &LimitKind) -> anyhow::Error {
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
        Failure::Refused {
            status: 403,
            detail,
        } => {
            let m = &detail.message;
            let m = m
                .strip_prefix("kind.max: ")
                .or_else(|| m.strip_prefix("kind.max_micro_usd: "))
                .map_or(m.clone(), |rest| format!("{flag}: {rest}"));
            anyhow::anyhow!("{m}")
        }
        other => other.cli(&flags),
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

async fn scope(backend: &Backend, args: &LimitSetArgs) -> anyhow::Result<Scope> {
    Ok(match (&args.team, &args.key, &args.route) {
        (Some(team), _, _) => Scope::Team(*team),
        (_, Some(key), _) => Scope::Key(*key),
        (_, _, Some(name)) => Scope::Route(
            backend
                .routes()
                .await
                .map_err(|e| e.cli(&[]))?
                .into_iter()
                .find(|r| &r.name == name)
                .with_context(|| format!("--route: no route named `{name}`"))?
                .id,
        ),
        _ => Scope::Instance,
    })
}

/// `tollgate limit set`: every limit is checked before the first is stored, so a refused flag
/// stores nothing.
async fn set(backend: &Backend, args: &LimitSetArgs) -> anyhow::Result<()> {
    let kinds = kinds(args)?;
    let scope = scope(backend, args).await?;
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
    let kinds: Vec<LimitKind> = drafts.iter().map(|d| d.kind).collect();
    let created = backend
        .create_limits(drafts)
        .await
        .map_err(|(e, i)| limit_error(e, &kinds[i.min(kinds.len() - 1)]))?;
    let ids: Vec<i64> = created.iter().map(|v| v.id).collect();
    if args.json {
        if let [id] = ids.as_slice() {
            return output::json(&serde_json::json!({ "id": id }));
        }
        return output::json(&serde_json::json!({ "ids": ids }));
    }
    for view in &created {
        output::line(&format!(
            "Set limit {}: {}.",
            view.id,
            limits::describe(&limit_of(view))
        ));
    }
    Ok(())
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
async fn list(backend: &Backend, json: bool) -> anyhow::Result<()> {
    let views = backend.limits().await.map_err(|e| e.cli(&[]))?;
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
async fn remove(backend: &Backend, id: i64, json: bool) -> anyhow::Result<()> {
    let removed = backend
        .delete_limit(id)
        .await
        .map_err(|e| e.cli_or(&[], || format!("no limit with id {id}")))?;
    if json {
        output::json(&serde_json::json!({ "id": id, "removed": true }))
    } else {
        output::line(&format!(
            "Removed limit {id}: {}.",
            limits::describe(&removed)
        ));
        Ok(())
    }
}
