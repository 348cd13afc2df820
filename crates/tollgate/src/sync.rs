//! `tollgate sync …`: token-count sync from a terminal (seed 003). Readings are parsed from what
//! people paste (`350K`, `35万`, `350,000 tokens used`); on the local store or, with `--server`, through a console's API.

use std::path::Path;
use std::process::Command as Process;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tollgate_console::api::counters::{CounterEstimate, CounterStatus, ReadingView};
use tollgate_console::rules::RuleError;
use tollgate_console::rules::counters::{self, ImportedSession, MAX_TOKENS, ReadingNote};
use tollgate_core::reading::{READING_EXAMPLES, parse_reading};
use tollgate_core::time::{format_ms, now_ms};

use crate::admin::cli_error;
use crate::backend::Target;
use crate::cli::SyncCommand;
use crate::{estimate, output};

/// The flags of `sync …` behind the counter rules' fields.
const SYNC_FLAGS: &[(&str, &str)] = &[
    ("counter", "--counter"),
    ("event", "--event"),
    ("conversation_id", "--conversation"),
];

fn sync_error(e: RuleError) -> anyhow::Error {
    cli_error(e, SYNC_FLAGS)
}

fn reading_of(text: &str) -> anyhow::Result<i64> {
    let value = parse_reading(text).map_err(|e| {
        anyhow::anyhow!(
            "{e} (accepted forms include {})",
            READING_EXAMPLES[..6].join(", ")
        )
    })?;
    i64::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_TOKENS)
        .with_context(|| format!("`{text}` is more than {MAX_TOKENS} tokens"))
}

fn check_event(event: &str) -> anyhow::Result<()> {
    counters::check_event(event).map_err(sync_error)
}

fn note(event: String, conversation_id: Option<String>, sync_type: &str) -> ReadingNote {
    ReadingNote {
        event,
        conversation_id,
        sync_type: sync_type.to_owned(),
    }
}

fn report(c: &CounterStatus, r: &ReadingView, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(&serde_json::json!({
            "success": true,
            "reading_id": r.id,
            "total_used": c.used,
            "increment": r.increment,
            "reset": r.reset,
            "counter": c,
        }));
    }
    let what = if r.reset {
        format!("reset to {}", c.used)
    } else {
        format!("+{}", r.increment)
    };
    output::line(&format!(
        "{}: {what} → {} of {} tokens ({:.2} %, {} left)",
        c.name, c.used, c.quota, c.percent, c.remaining
    ));
    Ok(())
}

/// The clipboard's text, from the first clipboard tool found.
fn clipboard() -> anyhow::Result<String> {
    let tools: [(&str, &[&str]); 5] = [
        ("wl-paste", &["--no-newline"]),
        ("xclip", &["-selection", "clipboard", "-o"]),
        ("xsel", &["--clipboard", "--output"]),
        ("pbpaste", &[]),
        (
            "powershell.exe",
            &["-NoProfile", "-Command", "Get-Clipboard"],
        ),
    ];
    let mut tried = Vec::new();
    for (tool, args) in tools {
        match Process::new(tool).args(args).output() {
            Ok(out) if out.status.success() => {
                return String::from_utf8(out.stdout).context("the clipboard does not hold text");
            }
            Ok(out) => tried.push(format!(
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(_) => {}
        }
    }
    if tried.is_empty() {
        bail!(
            "no clipboard tool found (wl-paste, xclip, xsel, pbpaste): use `tollgate sync record VALUE` instead"
        );
    }
    bail!("cannot read the clipboard ({})", tried.join("; "))
}

/// One imported session.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Session {
    tokens: serde_json::Value,
    #[serde(default)]
    event: String,
    timestamp: Option<serde_json::Value>,
}

/// Reads sessions `{tokens, event, timestamp}` from JSON (an array) or CSV (a header row).
fn read_sessions(path: &Path) -> anyhow::Result<Vec<(i64, String, i64)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let now = now_ms();
    let mut out = Vec::new();
    let place = |i: usize| format!("{} session {}", path.display(), i + 1);
    let timestamp = |i: usize, t: Option<&str>| -> anyhow::Result<i64> {
        let Some(t) = t.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(now);
        };
        if let Ok(ms) = t.parse::<i64>() {
            return if (946_684_800_000..253_402_300_799_000).contains(&ms) {
                Ok(ms)
            } else {
                bail!(
                    "{}: timestamp {t} is not epoch milliseconds after 2000",
                    place(i)
                )
            };
        }
        humantime::parse_rfc3339_weak(t)
            .ok()
            .and_then(|st| st.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .with_context(|| {
                format!(
                    "{}: timestamp `{t}` is neither epoch ms nor an RFC 3339 time",
                    place(i)
                )
            })
    };
    if text.trim_start().starts_with('[') {
        let sessions: Vec<Session> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a JSON array of {{tokens, event, timestamp}}",
                path.display()
            )
        })?;
        for (i, s) in sessions.into_iter().enumerate() {
            let tokens = match &s.tokens {
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .filter(|v| (0..=MAX_TOKENS).contains(v))
                    .with_context(|| {
                        format!("{}: tokens {n} is not a whole number ≥ 0", place(i))
                    })?,
                serde_json::Value::String(t) => reading_of(t).with_context(|| place(i))?,
                other => bail!("{}: tokens {other} is not a number", place(i)),
            };
            let ts = match &s.timestamp {
                Some(serde_json::Value::Number(n)) => timestamp(i, Some(&n.to_string()))?,
                Some(serde_json::Value::String(t)) => timestamp(i, Some(t))?,
                None | Some(serde_json::Value::Null) => now,
                Some(other) => bail!("{}: timestamp {other} is not a time", place(i)),
            };
            check_event(&s.event).with_context(|| place(i))?;
            out.push((tokens, s.event, ts));
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .with_context(|| format!("{} has no CSV header", path.display()))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let tokens_col = col("tokens").with_context(|| {
            format!("{}: the CSV header has no `tokens` column", path.display())
        })?;
        let (event_col, ts_col) = (col("event"), col("timestamp"));
        for (i, record) in reader.records().enumerate() {
            let record = record.with_context(|| place(i))?;
            let tokens =
                reading_of(record.get(tokens_col).unwrap_or("")).with_context(|| place(i))?;
            let event = event_col
                .and_then(|c| record.get(c))
                .unwrap_or("")
                .to_owned();
            check_event(&event).with_context(|| place(i))?;
            out.push((
                tokens,
                event,
                timestamp(i, ts_col.and_then(|c| record.get(c)))?,
            ));
        }
    }
    if out.is_empty() {
        bail!("{} holds no sessions", path.display());
    }
    out.sort_by_key(|(_, _, ts)| *ts);
    Ok(out)
}

/// `tollgate sync …`, on the local store or a server (`sync record 350K --server …` from a
/// laptop is seed 003's workflow).
pub async fn run(target: Target<'_>, command: SyncCommand) -> anyhow::Result<()> {
    // Everything is parsed and checked before the store opens: bad input changes nothing.
    let (name, team) = match &command {
        SyncCommand::Record(a) => (&a.counter, &a.team),
        SyncCommand::Quick(a) => (&a.counter, &a.team),
        SyncCommand::Status(a) => (&a.counter, &a.team),
        SyncCommand::Estimate(a) => (&a.counter, &a.team),
        SyncCommand::Import(a) => (&a.counter, &a.team),
        SyncCommand::Correct(a) => (&a.counter, &a.team),
        SyncCommand::Delete(a) => (&a.counter, &a.team),
    };
    let (name, team) = (name.clone(), team.clone());
    counters::check_name(&name).map_err(sync_error)?;
    enum Plan {
        Reading(i64, String, Option<String>, &'static str),
        Estimate(i64, CounterEstimate),
        Import(Vec<(i64, String, i64)>),
        Status,
        Revise(i64, Option<i64>),
    }
    let (plan, json) = match &command {
        SyncCommand::Record(a) => {
            check_event(&a.event)?;
            (
                Plan::Reading(
                    reading_of(&a.reading)?,
                    a.event.clone(),
                    a.conversation.clone(),
                    "manual",
                ),
                a.json,
            )
        }
        SyncCommand::Quick(a) => {
            let text = clipboard()?;
            let value = reading_of(text.trim()).with_context(|| "the clipboard".to_owned())?;
            (
                Plan::Reading(
                    value,
                    a.event
                        .clone()
                        .unwrap_or_else(|| "from the clipboard".into()),
                    None,
                    "clipboard",
                ),
                a.json,
            )
        }
        SyncCommand::Status(a) => (Plan::Status, a.json),
        SyncCommand::Estimate(a) => {
            let vocab = estimate::vocabulary(a.model.as_deref(), None)?;
            let user = vocab.count(&a.user);
            let assistant = vocab.count(&a.assistant);
            let total = i64::try_from(user + assistant).context("too many tokens")?;
            let event = a.event.clone().unwrap_or_else(|| {
                format!(
                    "estimate: {user} user + {assistant} assistant tokens ({})",
                    vocab.name()
                )
            });
            check_event(&event)?;
            let texts = CounterEstimate {
                user: a.user.clone(),
                assistant: a.assistant.clone(),
                model: a.model.clone(),
                event: Some(event),
            };
            (Plan::Estimate(total, texts), a.json)
        }
        SyncCommand::Import(a) => (Plan::Import(read_sessions(&a.file)?), a.json),
        SyncCommand::Correct(a) => (Plan::Revise(a.id, Some(reading_of(&a.reading)?)), a.json),
        SyncCommand::Delete(a) => (Plan::Revise(a.id, None), a.json),
    };
    let backend = target.open().await?;
    let result = async {
        let team = backend
            .team_id(&team)
            .await
            .map_err(|e| anyhow::anyhow!("--team: {e}"))?;
        match plan {
            Plan::Reading(value, event, conversation, kind) => {
                let done = backend
                    .record_reading(team, &name, value, note(event, conversation, kind))
                    .await
                    .map_err(|e| e.cli(SYNC_FLAGS))?;
                report(&done.counter, &done.reading, json)
            }
            Plan::Estimate(tokens, texts) => {
                let done = backend
                    .estimate_reading(team, &name, tokens, texts)
                    .await
                    .map_err(|e| e.cli(SYNC_FLAGS))?;
                report(&done.counter, &done.reading, json)
            }
            Plan::Import(sessions) => {
                let sessions: Vec<ImportedSession> = sessions
                    .into_iter()
                    .map(|(tokens, event, ts_ms)| ImportedSession {
                        tokens,
                        event,
                        ts_ms,
                    })
                    .collect();
                let bar = ProgressBar::new(sessions.len() as u64);
                bar.set_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} sessions")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                let done = backend
                    .import_sessions(team, &name, sessions, || bar.inc(1))
                    .await
                    .map_err(|e| e.cli(SYNC_FLAGS))?;
                bar.finish_and_clear();
                if json {
                    output::json(&done)
                } else {
                    output::line(&format!(
                        "{} sessions imported (+{} tokens): {} of {} used",
                        done.imported, done.tokens, done.counter.used, done.counter.quota
                    ));
                    Ok(())
                }
            }
            Plan::Revise(id, figure) => {
                let (c, r) = backend
                    .revise_reading(team, &name, id, figure)
                    .await
                    .map_err(|e| e.cli(SYNC_FLAGS))?;
                if json {
                    return output::json(&serde_json::json!({
                        "counter": c,
                        "reading": r,
                    }));
                }
                match r {
                    Some(r) => output::line(&format!(
                        "reading {id} is now {} (+{}): {} of {} used",
                        r.reading, r.increment, c.used, c.quota
                    )),
                    None => output::line(&format!(
                        "reading {id} deleted: {} of {} used",
                        c.used, c.quota
                    )),
                }
                Ok(())
            }
            Plan::Status => {
                let status = backend
                    .counter_status(team, &name)
                    .await
                    .map_err(|e| e.cli(SYNC_FLAGS))?;
                if json {
                    return output::json(&status);
                }
                output::table(
                    &[
                        "counter",
                        "used",
                        "quota",
                        "percent",
                        "remaining",
                        "sessions",
                        "last update",
                    ],
                    vec![vec![
                        status.name.clone(),
                        status.used.to_string(),
                        status.quota.to_string(),
                        format!("{:.2} %", status.percent),
                        status.remaining.to_string(),
                        status.sessions.to_string(),
                        status
                            .last_update
                            .map_or_else(|| "never".to_owned(), format_ms),
                    ]],
                );
                Ok(())
            }
        }
    }
    .await;
    backend.close().await;
    result
}
