//! Token counters (seed 003): readings of a tool's cumulative token figure against a quota. The
//! seed's `POST /api/record_token_usage` and the v1 equivalents, with a parse endpoint for live
//! feedback while typing. Every counter belongs to a team: its members read it, members and up
//! record readings (a reading below the last is a reset), team admins set its quota; to everyone
//! else it does not exist. A request that names no team means the caller's only team, else the
//! `default` team. Those rules live in `rules::counters`; these handlers parse and map.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::reading::{READING_EXAMPLES, parse_reading};
use tollgate_core::time::now_ms;
use tollgate_core::tokenize::Vocabulary;
use tollgate_store::{Counter, CounterReading};
use utoipa::{IntoParams, ToSchema};

use super::views::MAX_TIME_MS;
use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::rules::Actor;
use crate::rules::counters::{self, ReadingNote};

pub use crate::rules::counters::{DEFAULT_COUNTER, DEFAULT_QUOTA, MAX_TOKENS, SYNC_TYPES};

/// A counter's status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CounterStatus {
    /// Name.
    pub name: String,
    /// Owning team.
    pub team_id: i64,
    /// Tokens used.
    pub used: i64,
    /// Quota.
    pub quota: i64,
    /// `used / quota × 100`, two decimals.
    pub percent: f64,
    /// `quota − used`, never below 0.
    pub remaining: i64,
    /// Readings recorded.
    pub sessions: i64,
    /// Last reading, epoch ms.
    pub last_update: Option<i64>,
}

impl From<&Counter> for CounterStatus {
    fn from(c: &Counter) -> Self {
        #[expect(clippy::cast_precision_loss, reason = "token counts far below 2^52")]
        let percent = if c.quota > 0 {
            (c.used as f64 / c.quota as f64 * 10_000.0).round() / 100.0
        } else {
            0.0
        };
        Self {
            name: c.name.clone(),
            team_id: c.team_id,
            used: c.used,
            quota: c.quota,
            percent,
            remaining: (c.quota - c.used).max(0),
            sessions: c.readings,
            last_update: c.updated_at_ms,
        }
    }
}

/// One reading in a counter's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadingView {
    /// Id.
    pub id: i64,
    /// When, epoch ms.
    pub ts: i64,
    /// The cumulative figure.
    pub reading: i64,
    /// Tokens added by it.
    pub increment: i64,
    /// Whether it reset the counter.
    pub reset: bool,
    /// What happened.
    pub event: String,
    /// Conversation.
    pub conversation_id: Option<String>,
    /// `manual`, `clipboard`, `estimate`, `import` or `api`.
    pub sync_type: String,
    /// Who recorded it.
    pub actor: Option<String>,
}

impl From<&CounterReading> for ReadingView {
    fn from(r: &CounterReading) -> Self {
        Self {
            id: r.id,
            ts: r.ts_ms,
            reading: r.reading,
            increment: r.increment,
            reset: r.reset,
            event: r.event.clone(),
            conversation_id: r.conversation_id.clone(),
            sync_type: r.sync_type.clone(),
            actor: r.actor.clone(),
        }
    }
}

/// A figure as sent: a number, or text in any accepted form (`350K`, `35万`, `350,000 tokens`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Figure {
    /// A number of tokens.
    Number(i64),
    /// Text to parse.
    Text(String),
}

impl Figure {
    /// The tokens, or a 422 naming `field` and the input.
    pub fn tokens(&self, field: &'static str) -> ApiResult<i64> {
        let value = match self {
            Figure::Number(n) => *n,
            Figure::Text(t) => parse_reading(t)
                .map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
                .and_then(|v| {
                    i64::try_from(v)
                        .map_err(|_| ApiError::invalid(field, format!("{field} is too large")))
                })?,
        };
        Ok(counters::check_tokens(field, value)?)
    }
}

/// Which team's counter a request is about.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CounterScope {
    /// The counter's team (default: the caller's only team, else the `default` team).
    pub team_id: Option<i64>,
}

/// Whether the caller may read a counter: members of its team (viewers included), and instance
/// admins.
pub fn may_read(caller: &Caller, counter: &Counter) -> bool {
    counters::may_read(&Actor::Console(caller), counter)
}

/// The seed's request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTokenUsage {
    /// The tool's cumulative figure: a number or text such as `350K` or `35万`.
    pub tokens: Figure,
    /// What happened.
    #[serde(default)]
    pub event: String,
    /// Conversation.
    pub conversation_id: Option<String>,
    /// `api` (the default here: a program posted the reading), `manual`, `clipboard`,
    /// `estimate` or `import`. (`POST /api/v1/counters/{name}/readings`, where people record
    /// readings from the console, defaults to `manual`.)
    pub sync_type: Option<String>,
    /// Counter name (default `default`).
    pub counter: Option<String>,
    /// The counter's team (default: the caller's only team, else the `default` team).
    pub team_id: Option<i64>,
}

/// The seed's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedTokenUsage {
    /// Always true for a 200 answer.
    pub success: bool,
    /// One human line.
    pub message: String,
    /// Tokens used after this reading.
    pub total_used: i64,
    /// Tokens this reading added.
    pub increment: i64,
}

async fn record(
    state: &ConsoleState,
    caller: &Caller,
    name: &str,
    req: RecordTokenUsage,
    default_type: &str,
) -> ApiResult<(Counter, CounterReading)> {
    let tokens = req.tokens.tokens("tokens")?;
    let note = ReadingNote {
        event: req.event,
        conversation_id: req.conversation_id,
        sync_type: req.sync_type.unwrap_or_else(|| default_type.to_owned()),
    };
    let actor = Actor::Console(caller);
    let (counter, reading) =
        counters::record(&state.rules(), &actor, req.team_id, name, tokens, note).await?;
    report_to_limiter(state, &counter, &reading).await;
    Ok((counter, reading))
}

/// Counts a reading on the budgets that include readings; a reading is already stored, so a
/// limiter that cannot count it only logs.
async fn report_to_limiter(state: &ConsoleState, counter: &Counter, reading: &CounterReading) {
    let Some(limiter) = &state.limiter else {
        return;
    };
    let reported = tollgate_limits::Reported {
        team_id: Some(counter.team_id),
        key_id: None,
        route_id: None,
        tokens: u64::try_from(reading.increment).unwrap_or(0),
        cost_micro: 0,
    };
    if let Err(e) = limiter.record_reported(&reported).await {
        tracing::warn!(error = %e, counter = counter.id, "a reading could not be counted on budgets");
    }
}

/// Seed 003: records a tool's cumulative token reading (a reading below the previous one is a reset).
#[utoipa::path(post, path = "/api/record_token_usage", tag = "seed", request_body = RecordTokenUsage,
    responses((status = 200, body = RecordedTokenUsage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record_token_usage(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<RecordTokenUsage>,
) -> ApiResult<Json<RecordedTokenUsage>> {
    let name = req
        .counter
        .clone()
        .unwrap_or_else(|| DEFAULT_COUNTER.to_owned());
    // Posted by a program (the seed's scripts), so `api` unless it says otherwise.
    let (counter, reading) = record(&state, &caller, &name, req, "api").await?;
    let message = if reading.reset {
        format!(
            "counter `{}` was reset: now {} tokens",
            counter.name, counter.used
        )
    } else {
        format!(
            "recorded {} tokens on `{}`",
            reading.increment, counter.name
        )
    };
    Ok(Json(RecordedTokenUsage {
        success: true,
        message,
        total_used: counter.used,
        increment: reading.increment,
    }))
}

/// Every counter the caller may see.
#[utoipa::path(get, path = "/api/v1/counters", tag = "counters", responses((status = 200, body = [CounterStatus]), (status = 401, body = ErrorBody)))]
pub async fn list_counters(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<CounterStatus>>> {
    let counters = state.store.list_counters().await?;
    Ok(Json(
        counters
            .iter()
            .filter(|c| may_read(&caller, c))
            .map(CounterStatus::from)
            .collect(),
    ))
}

/// One counter's status: used, quota, percent, remaining, sessions, last update.
#[utoipa::path(get, path = "/api/v1/counters/{name}", tag = "counters", params(("name" = String, Path, description = "Counter name"), CounterScope),
    responses((status = 200, body = CounterStatus), (status = 404, body = ErrorBody)))]
pub async fn counter_status(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(scope): ApiQuery<CounterScope>,
) -> ApiResult<Json<CounterStatus>> {
    let counter = counters::visible(
        &state.rules(),
        &Actor::Console(&caller),
        scope.team_id,
        &name,
    )
    .await?;
    Ok(Json(CounterStatus::from(&counter)))
}

/// A reading to record (v1).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadingCreate {
    /// The cumulative figure: a number or text such as `350K` or `35万`.
    pub reading: Figure,
    /// What happened.
    #[serde(default)]
    pub event: String,
    /// Conversation.
    pub conversation_id: Option<String>,
    /// `manual` (the default here: a person recorded it), `clipboard`, `estimate`, `import` or
    /// `api`. (The seed's `POST /api/record_token_usage` defaults to `api`.)
    pub sync_type: Option<String>,
}

/// The counter after a reading, and the reading.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadingRecorded {
    /// The counter now.
    pub counter: CounterStatus,
    /// The reading.
    pub reading: ReadingView,
}

/// Records a reading on a counter (created with the default quota on first use).
#[utoipa::path(post, path = "/api/v1/counters/{name}/readings", tag = "counters", request_body = ReadingCreate,
    params(("name" = String, Path, description = "Counter name"), CounterScope),
    responses((status = 201, body = ReadingRecorded), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_reading(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(scope): ApiQuery<CounterScope>,
    ApiJson(req): ApiJson<ReadingCreate>,
) -> ApiResult<(StatusCode, Json<ReadingRecorded>)> {
    let seed = RecordTokenUsage {
        tokens: req.reading,
        event: req.event,
        conversation_id: req.conversation_id,
        sync_type: req.sync_type,
        counter: None,
        team_id: scope.team_id,
    };
    // The console's record dialog: a person typed it.
    let (counter, reading) = record(&state, &caller, &name, seed, "manual").await?;
    Ok((
        StatusCode::CREATED,
        Json(ReadingRecorded {
            counter: CounterStatus::from(&counter),
            reading: ReadingView::from(&reading),
        }),
    ))
}

/// History paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// Readings older than this id.
    pub before: Option<i64>,
    /// 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The counter's team (default: the caller's only team, else the `default` team).
    pub team_id: Option<i64>,
}

/// A counter's readings, newest first: its history as an event stream.
#[utoipa::path(get, path = "/api/v1/counters/{name}/readings", tag = "counters", params(("name" = String, Path, description = "Counter name"), ReadingsQuery),
    responses((status = 200, body = [ReadingView]), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_readings(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadingsQuery>,
) -> ApiResult<Json<Vec<ReadingView>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 500"));
    }
    let counter =
        counters::visible(&state.rules(), &Actor::Console(&caller), q.team_id, &name).await?;
    let readings = state
        .store
        .list_readings(counter.id, q.before, limit)
        .await?;
    Ok(Json(readings.iter().map(ReadingView::from).collect()))
}

/// A new quota.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterQuota {
    /// Tokens: a number or text such as `2M`.
    pub quota: Figure,
}

/// Sets a counter's quota (its team's owners and admins, and instance admins).
#[utoipa::path(put, path = "/api/v1/counters/{name}/quota", tag = "counters", request_body = CounterQuota,
    params(("name" = String, Path, description = "Counter name"), CounterScope),
    responses((status = 200, body = CounterStatus), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_quota(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(scope): ApiQuery<CounterScope>,
    ApiJson(req): ApiJson<CounterQuota>,
) -> ApiResult<Json<CounterStatus>> {
    let quota = req.quota.tokens("quota")?;
    let actor = Actor::Console(&caller);
    let updated = counters::set_quota(&state.rules(), &actor, scope.team_id, &name, quota).await?;
    Ok(Json(CounterStatus::from(&updated)))
}

/// Text to parse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseRequest {
    /// What was typed or pasted.
    pub text: String,
}

/// The parsed figure.
#[derive(Debug, Serialize, ToSchema)]
pub struct Parsed {
    /// Tokens.
    pub tokens: i64,
    /// Forms accepted, for hints.
    pub examples: Vec<&'static str>,
}

/// Parses a reading as the record dialog does, for feedback while typing; 422 names the problem.
#[utoipa::path(post, path = "/api/v1/counters/parse", tag = "counters", request_body = ParseRequest,
    responses((status = 200, body = Parsed), (status = 422, body = ErrorBody)))]
pub async fn parse(caller: Caller, ApiJson(req): ApiJson<ParseRequest>) -> ApiResult<Json<Parsed>> {
    let _ = caller;
    if req.text.chars().count() > 200 {
        return Err(ApiError::invalid(
            "text",
            "the text is longer than 200 characters",
        ));
    }
    let tokens = Figure::Text(req.text).tokens("text")?;
    Ok(Json(Parsed {
        tokens,
        examples: READING_EXAMPLES.to_vec(),
    }))
}

/// The most text one estimate counts, bytes: far beyond a conversation, small enough that
/// counting it cannot hold a worker for long.
pub const MAX_ESTIMATE_BYTES: usize = 1024 * 1024;

/// Counts `text` with `vocab` off the async workers (BPE is CPU work).
pub async fn count_text(vocab: Vocabulary, text: String) -> ApiResult<usize> {
    tokio::task::spawn_blocking(move || vocab.count(&text))
        .await
        .map_err(|e| ApiError::Internal(format!("token counting failed: {e}")))
}

/// Two texts to count and add to a counter as an estimate.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterEstimate {
    /// The user's text.
    pub user: String,
    /// The assistant's text.
    pub assistant: String,
    /// Model whose vocabulary counts the texts (default: `o200k_base`, today's OpenAI default).
    pub model: Option<String>,
    /// What happened (default: the counts).
    pub event: Option<String>,
}

/// Counts a user and an assistant text with a BPE vocabulary and adds the sum to a counter as an
/// `estimate` reading (as `tollgate sync estimate` does).
#[utoipa::path(post, path = "/api/v1/counters/{name}/estimate", tag = "counters", request_body = CounterEstimate,
    params(("name" = String, Path, description = "Counter name"), CounterScope),
    responses((status = 201, body = ReadingRecorded), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn estimate_reading(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(scope): ApiQuery<CounterScope>,
    ApiJson(req): ApiJson<CounterEstimate>,
) -> ApiResult<(StatusCode, Json<ReadingRecorded>)> {
    for (field, text) in [("user", &req.user), ("assistant", &req.assistant)] {
        if text.len() > MAX_ESTIMATE_BYTES {
            return Err(ApiError::invalid(
                field,
                format!("{field}: the text is longer than {MAX_ESTIMATE_BYTES} bytes"),
            ));
        }
    }
    if req.model.as_ref().is_some_and(|m| m.len() > 200) {
        return Err(ApiError::invalid(
            "model",
            "model is longer than 200 characters",
        ));
    }
    let vocab = Vocabulary::for_model(req.model.as_deref().unwrap_or(""));
    let user = count_text(vocab, req.user).await?;
    let assistant = count_text(vocab, req.assistant).await?;
    let tokens = i64::try_from(user + assistant)
        .map_err(|_| ApiError::invalid("user", "too many tokens"))?;
    let event = req.event.unwrap_or_else(|| {
        format!(
            "estimate: {user} user + {assistant} assistant tokens ({})",
            vocab.name()
        )
    });
    let note = ReadingNote {
        event,
        conversation_id: None,
        sync_type: "estimate".into(),
    };
    let actor = Actor::Console(&caller);
    let (counter, reading) =
        counters::add(&state.rules(), &actor, scope.team_id, &name, tokens, note).await?;
    report_to_limiter(&state, &counter, &reading).await;
    Ok((
        StatusCode::CREATED,
        Json(ReadingRecorded {
            counter: CounterStatus::from(&counter),
            reading: ReadingView::from(&reading),
        }),
    ))
}

/// Most sessions one import adds.
pub const MAX_IMPORT_SESSIONS: usize = 10_000;

/// One session to import.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionImport {
    /// Tokens the session used: a number or text such as `5K`.
    pub tokens: Figure,
    /// What happened.
    #[serde(default)]
    pub event: String,
    /// When: epoch ms, or an RFC 3339 time such as `2026-05-01T10:00:00Z` (default: now).
    pub timestamp: Option<Moment>,
}

/// A time as sent: epoch milliseconds or RFC 3339 text.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Moment {
    /// Epoch milliseconds.
    Millis(i64),
    /// RFC 3339 text.
    Text(String),
}

/// Sessions to import, as `tollgate sync import` reads them from a file.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterImport {
    /// The sessions, 1 to 10000; added in time order.
    pub sessions: Vec<SessionImport>,
}

/// What an import added.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CounterImported {
    /// Sessions added.
    pub imported: usize,
    /// Tokens added.
    pub tokens: i64,
    /// The counter now.
    pub counter: CounterStatus,
}

fn session_time(i: usize, moment: Option<&Moment>, now: i64) -> ApiResult<i64> {
    const AFTER_2000: i64 = 946_684_800_000;
    let bad =
        |text: String| ApiError::invalid("sessions", format!("sessions[{i}].timestamp: {text}"));
    match moment {
        None => Ok(now),
        Some(Moment::Millis(ms)) if (AFTER_2000..MAX_TIME_MS).contains(ms) => Ok(*ms),
        Some(Moment::Millis(ms)) => Err(bad(format!("{ms} is not epoch milliseconds after 2000"))),
        Some(Moment::Text(text)) => text
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
            .filter(|ms| (AFTER_2000..MAX_TIME_MS).contains(ms))
            .ok_or_else(|| bad(format!("`{text}` is neither epoch ms nor an RFC 3339 time"))),
    }
}

/// Adds sessions `{tokens, event, timestamp}` to a counter in time order, each an `import`
/// reading (as `tollgate sync import` does); checked in full first, so a bad session adds none.
#[utoipa::path(post, path = "/api/v1/counters/{name}/import", tag = "counters", request_body = CounterImport,
    params(("name" = String, Path, description = "Counter name"), CounterScope),
    responses((status = 201, body = CounterImported), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_sessions(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(scope): ApiQuery<CounterScope>,
    ApiJson(req): ApiJson<CounterImport>,
) -> ApiResult<(StatusCode, Json<CounterImported>)> {
    if req.sessions.is_empty() || req.sessions.len() > MAX_IMPORT_SESSIONS {
        return Err(ApiError::invalid(
            "sessions",
            format!("sessions: give 1 to {MAX_IMPORT_SESSIONS} sessions"),
        ));
    }
    let now = now_ms();
    let mut sessions = Vec::with_capacity(req.sessions.len());
    for (i, s) in req.sessions.into_iter().enumerate() {
        let tokens = s
            .tokens
            .tokens("tokens")
            .map_err(|e| ApiError::invalid("sessions", format!("sessions[{i}].{e}")))?;
        let ts_ms = session_time(i, s.timestamp.as_ref(), now)?;
        sessions.push(counters::ImportedSession {
            tokens,
            event: s.event,
            ts_ms,
        });
    }
    sessions.sort_by_key(|s| s.ts_ms);
    let actor = Actor::Console(&caller);
    let (counter, added) = counters::import(
        &state.rules(),
        &actor,
        scope.team_id,
        &name,
        &sessions,
        || {},
    )
    .await?;
    if let Some(limiter) = &state.limiter {
        let reported = tollgate_limits::Reported {
            team_id: Some(counter.team_id),
            key_id: None,
            route_id: None,
            tokens: u64::try_from(added).unwrap_or(0),
            cost_micro: 0,
        };
        if let Err(e) = limiter.record_reported(&reported).await {
            tracing::warn!(error = %e, counter = counter.id, "an import could not be counted on budgets");
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(CounterImported {
            imported: sessions.len(),
            tokens: added,
            counter: CounterStatus::from(&counter),
        }),
    ))
}

/// The right figure for a reading.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadingCorrection {
    /// The cumulative figure it should have been: a number or text such as `150K`.
    pub reading: Figure,
}

/// Corrects a wrong reading: it gets the right figure, every later reading's increment is
/// recomputed, and `used` follows. The team's admins, or the member who recorded it. Audited.
#[utoipa::path(patch, path = "/api/v1/counters/{name}/readings/{id}", tag = "counters", request_body = ReadingCorrection,
    params(("name" = String, Path, description = "Counter name"), ("id" = i64, Path, description = "Reading id"), CounterScope),
    responses((status = 200, body = ReadingRecorded), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn correct_reading(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath((name, id)): ApiPath<(String, i64)>,
    ApiQuery(scope): ApiQuery<CounterScope>,
    ApiJson(req): ApiJson<ReadingCorrection>,
) -> ApiResult<Json<ReadingRecorded>> {
    let figure = req.reading.tokens("reading")?;
    let actor = Actor::Console(&caller);
    let (counter, reading) = counters::revise(
        &state.rules(),
        &actor,
        scope.team_id,
        &name,
        id,
        Some(figure),
    )
    .await?;
    let reading = reading
        .ok_or_else(|| ApiError::Internal(format!("reading {id} vanished while corrected")))?;
    Ok(Json(ReadingRecorded {
        counter: CounterStatus::from(&counter),
        reading: ReadingView::from(&reading),
    }))
}

/// Deletes a wrong reading; the readings after it are recomputed and `used` follows. The team's
/// admins, or the member who recorded it. Audited.
#[utoipa::path(delete, path = "/api/v1/counters/{name}/readings/{id}", tag = "counters",
    params(("name" = String, Path, description = "Counter name"), ("id" = i64, Path, description = "Reading id"), CounterScope),
    responses((status = 200, body = CounterStatus), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_reading(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath((name, id)): ApiPath<(String, i64)>,
    ApiQuery(scope): ApiQuery<CounterScope>,
) -> ApiResult<Json<CounterStatus>> {
    let actor = Actor::Console(&caller);
    let (counter, _) =
        counters::revise(&state.rules(), &actor, scope.team_id, &name, id, None).await?;
    Ok(Json(CounterStatus::from(&counter)))
}
