//! Token counters: names, figures, reading texts, which team a counter belongs to when none is
//! named, who may read, record on or set the quota of one, and the audit entry of each change.
//! Every counter belongs to a team: its members read it, members and up record readings (a
//! reading below the last is a reset), team admins set its quota; to everyone else it does not
//! exist.

use tollgate_core::Role;
use tollgate_core::time::now_ms;
use tollgate_store::{Counter, CounterReading, DEFAULT_TEAM, NewReading};

use super::{Actor, RuleError, RuleResult, Rules, is_plain_name};
use crate::audit::Change;

/// The quota of a counter created by its first reading.
pub const DEFAULT_QUOTA: i64 = 1_000_000;
/// The largest figure accepted: a quadrillion tokens, far beyond any real use, and far enough
/// below 2^63 that sums over many readings stay exact.
pub const MAX_TOKENS: i64 = 1_000_000_000_000_000;
/// The counter used when none is named.
pub const DEFAULT_COUNTER: &str = "default";
/// The kinds of reading.
pub const SYNC_TYPES: [&str; 5] = ["manual", "clipboard", "estimate", "import", "api"];

/// What a reading says besides its figure.
#[derive(Debug, Clone)]
pub struct ReadingNote {
    /// What happened, up to 500 characters (trimmed).
    pub event: String,
    /// Conversation, 1 to 200 bytes.
    pub conversation_id: Option<String>,
    /// One of [`SYNC_TYPES`].
    pub sync_type: String,
}

/// Checks a counter name: 1 to 64 letters, digits, `-`, `_` or `.`, and not `parse` (a path of
/// its own under `/api/v1/counters`).
pub fn check_name(name: &str) -> RuleResult<()> {
    if name != "parse" && is_plain_name(name) {
        Ok(())
    } else {
        Err(RuleError::invalid(
            "counter",
            format!("counter name `{name}` must be 1 to 64 letters, digits, -, _ or ."),
        ))
    }
}

/// Checks a figure of tokens: 0 to [`MAX_TOKENS`].
pub fn check_tokens(field: &'static str, value: i64) -> RuleResult<i64> {
    if value < 0 {
        return Err(RuleError::invalid(
            field,
            format!("{field} {value} is negative"),
        ));
    }
    if value > MAX_TOKENS {
        return Err(RuleError::invalid(
            field,
            format!("{field} {value} is more than {MAX_TOKENS} tokens"),
        ));
    }
    Ok(value)
}

/// Checks an event description alone (imports check each session's).
pub fn check_event(event: &str) -> RuleResult<()> {
    if event.chars().count() > 500 {
        return Err(RuleError::invalid(
            "event",
            "the event description is longer than 500 characters",
        ));
    }
    Ok(())
}

/// Checks the texts of a reading.
pub fn check_note(note: &ReadingNote) -> RuleResult<()> {
    check_event(&note.event)?;
    if note
        .conversation_id
        .as_deref()
        .is_some_and(|c| c.is_empty() || c.len() > 200)
    {
        return Err(RuleError::invalid(
            "conversation_id",
            "conversation_id must be 1 to 200 characters",
        ));
    }
    if !SYNC_TYPES.contains(&note.sync_type.as_str()) {
        return Err(RuleError::invalid(
            "sync_type",
            format!(
                "sync_type `{}` is not one of {}",
                note.sync_type,
                SYNC_TYPES.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Whether the actor may read a counter: members of its team (viewers included), and instance
/// admins.
pub fn may_read(actor: &Actor<'_>, counter: &Counter) -> bool {
    actor.role_in(counter.team_id).is_some()
}

/// The team a counter request is about: the one named, else the actor's only team, else the
/// `default` team every instance keeps.
async fn team_of(rules: &Rules<'_>, actor: &Actor<'_>, team_id: Option<i64>) -> RuleResult<i64> {
    if let Some(team) = team_id {
        return Ok(team);
    }
    if let Some([only]) = actor.visible_teams().as_deref() {
        return Ok(*only);
    }
    rules
        .store
        .team_by_name(DEFAULT_TEAM)
        .await?
        .map(|t| t.id)
        .ok_or_else(|| RuleError::invalid("team_id", "name the counter's team with team_id"))
}

/// The counter if the actor may read it; otherwise "not found".
pub async fn visible(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
) -> RuleResult<Counter> {
    check_name(name)?;
    let team = team_of(rules, actor, team_id).await?;
    match rules.store.counter_by_name(team, name).await? {
        Some(c) if may_read(actor, &c) => Ok(c),
        _ => Err(RuleError::NotFound(format!(
            "counter `{name}` does not exist"
        ))),
    }
}

/// The counter to record on, created with the default quota on first use: members and up of its
/// team (viewers are refused; to non-members the team does not exist).
async fn for_write(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
) -> RuleResult<Counter> {
    check_name(name)?;
    let team = team_of(rules, actor, team_id).await?;
    actor.require(team, Role::Member)?;
    Ok(match rules.store.counter_by_name(team, name).await? {
        Some(c) => c,
        None => {
            rules
                .store
                .ensure_counter(team, name, DEFAULT_QUOTA)
                .await?
        }
    })
}

fn new_reading(actor: &Actor<'_>, reading: i64, note: ReadingNote, ts_ms: i64) -> NewReading {
    NewReading {
        ts_ms,
        reading,
        event: note.event.trim().to_owned(),
        conversation_id: note.conversation_id,
        sync_type: note.sync_type,
        actor: Some(actor.audit_name()),
    }
}

async fn audit_reading(rules: &Rules<'_>, actor: &Actor<'_>, c: &Counter, r: &CounterReading) {
    let change = Change::new("counter.record", "counter", &c.name)
        .team(Some(c.team_id))
        .summary(format!(
            "{} reading {} (+{}) on `{}`",
            r.sync_type, r.reading, r.increment, c.name
        ));
    actor.audit(rules.store, change).await;
}

/// Records a cumulative reading on counter `name` (a reading below the last is a reset).
/// Audited.
pub async fn record(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
    reading: i64,
    note: ReadingNote,
) -> RuleResult<(Counter, CounterReading)> {
    let reading = check_tokens("tokens", reading)?;
    check_note(&note)?;
    let counter = for_write(rules, actor, team_id, name).await?;
    let (c, r) = rules
        .store
        .record_reading(counter.id, new_reading(actor, reading, note, now_ms()))
        .await?;
    audit_reading(rules, actor, &c, &r).await;
    Ok((c, r))
}

/// Adds `tokens` to counter `name` (an estimate, not a cumulative reading). Audited.
pub async fn add(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
    tokens: i64,
    note: ReadingNote,
) -> RuleResult<(Counter, CounterReading)> {
    let tokens = check_tokens("tokens", tokens)?;
    check_note(&note)?;
    let counter = for_write(rules, actor, team_id, name).await?;
    let (c, r) = rules
        .store
        .add_to_counter(counter.id, tokens, new_reading(actor, 0, note, now_ms()))
        .await?;
    audit_reading(rules, actor, &c, &r).await;
    Ok((c, r))
}

/// One imported session: tokens added, what happened, when (epoch ms).
#[derive(Debug, Clone)]
pub struct ImportedSession {
    /// Tokens the session used.
    pub tokens: i64,
    /// What happened.
    pub event: String,
    /// When, epoch ms.
    pub ts_ms: i64,
}

/// Adds imported sessions to counter `name` in order, calling `progress` after each; checked in
/// full before the first is added. One audit entry for the import.
pub async fn import(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
    sessions: &[ImportedSession],
    mut progress: impl FnMut(),
) -> RuleResult<(Counter, i64)> {
    for s in sessions {
        check_tokens("tokens", s.tokens)?;
        check_event(&s.event)?;
    }
    let counter = for_write(rules, actor, team_id, name).await?;
    let mut last = None;
    let mut added = 0i64;
    for s in sessions {
        let note = ReadingNote {
            event: s.event.clone(),
            conversation_id: None,
            sync_type: "import".into(),
        };
        let (c, r) = rules
            .store
            .add_to_counter(counter.id, s.tokens, new_reading(actor, 0, note, s.ts_ms))
            .await?;
        added += r.increment;
        last = Some(c);
        progress();
    }
    let change = Change::new("counter.import", "counter", &counter.name)
        .team(Some(counter.team_id))
        .summary(format!(
            "{} sessions, {added} tokens imported",
            sessions.len()
        ));
    actor.audit(rules.store, change).await;
    Ok((last.unwrap_or(counter), added))
}

/// Sets a counter's quota, at least 1 token (its team's owners and admins). Audited.
pub async fn set_quota(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
    quota: i64,
) -> RuleResult<Counter> {
    let quota = check_tokens("quota", quota)?;
    if quota < 1 {
        return Err(RuleError::invalid(
            "quota",
            "the quota must be at least 1 token",
        ));
    }
    let counter = visible(rules, actor, team_id, name).await?;
    actor.require(counter.team_id, Role::Admin)?;
    let updated = rules.store.set_counter_quota(counter.id, quota).await?;
    let change = Change::new("setting.change", "counter", &counter.name)
        .team(Some(counter.team_id))
        .summary(format!("quota of `{}` set to {quota}", counter.name));
    actor.audit(rules.store, change).await;
    Ok(updated)
}

/// Corrects (`Some(figure)`) or deletes (`None`) reading `reading_id` of counter `name`, and
/// recomputes the readings after it (see [`tollgate_store::CounterQueries::revise_reading`]).
/// The team's admins and owners may revise any reading; a member only a reading they recorded;
/// viewers none. Audited with the figure before and after.
pub async fn revise(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: Option<i64>,
    name: &str,
    reading_id: i64,
    figure: Option<i64>,
) -> RuleResult<(Counter, Option<CounterReading>)> {
    if let Some(f) = figure {
        check_tokens("reading", f)?;
    }
    let counter = visible(rules, actor, team_id, name).await?;
    let role = actor.require(counter.team_id, Role::Member)?;
    let missing = || {
        RuleError::NotFound(format!(
            "reading {reading_id} of counter `{name}` does not exist"
        ))
    };
    let old = rules
        .store
        .list_readings(counter.id, reading_id.checked_add(1), 1)
        .await?
        .into_iter()
        .next()
        .filter(|r| r.id == reading_id)
        .ok_or_else(missing)?;
    if role < Role::Admin && old.actor.as_deref() != Some(actor.audit_name().as_str()) {
        return Err(RuleError::Forbidden(format!(
            "reading {reading_id} was recorded by someone else: only the team's admins may \
             change it"
        )));
    }
    let (c, r) = rules
        .store
        .revise_reading(counter.id, reading_id, figure)
        .await?;
    let change = match &r {
        Some(new) => Change::new("counter.correct", "counter", &c.name).summary(format!(
            "reading {reading_id} on `{}` corrected from {} to {} (now {} used)",
            c.name, old.reading, new.reading, c.used
        )),
        None => Change::new("counter.delete_reading", "counter", &c.name).summary(format!(
            "reading {reading_id} ({}, +{}) on `{}` deleted (now {} used)",
            old.reading, old.increment, c.name, c.used
        )),
    };
    actor.audit(rules.store, change.team(Some(c.team_id))).await;
    Ok((c, r))
}
