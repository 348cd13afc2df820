//! The call log: raw events with cursor pagination, and one call's detail.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_store::{EventCursor, EventFilter, StoredEvent};
use utoipa::{IntoParams, ToSchema};

use crate::ConsoleState;
use crate::api::views::MAX_TIME_MS;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};

/// Call-log query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Start, epoch ms.
    pub from: Option<i64>,
    /// End (exclusive), epoch ms.
    pub to: Option<i64>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// An exact status (e.g. 429) or a class (`2xx`, `4xx`, `5xx`).
    pub status: Option<String>,
    /// Text in the path, error or user agent.
    pub q: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// One call as the logs show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    /// Row id (for the detail view).
    pub id: i64,
    /// When, epoch ms.
    pub ts: i64,
    /// Key id.
    pub key_id: Option<i64>,
    /// Team id.
    pub team_id: Option<i64>,
    /// Route id.
    pub route_id: Option<i64>,
    /// Route name or reported route.
    pub route: Option<String>,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status.
    pub status: u16,
    /// Latency, ms.
    pub latency_ms: f64,
    /// Upstream latency (time to the upstream's response head, first byte), ms.
    pub upstream_latency_ms: Option<f64>,
    /// Upstream time to last byte (until the upstream's answer ended), ms; null when it did not
    /// end (the client hung up, an upstream error or timeout) or was not recorded.
    pub upstream_last_byte_ms: Option<f64>,
    /// Client address.
    pub client_ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
    /// Cached tokens.
    pub cached_tokens: i64,
    /// Reasoning tokens.
    pub reasoning_tokens: i64,
    /// Whether tokens were estimated.
    pub estimated: bool,
    /// Cost, USD; null ("no price") when the call used tokens of a model without a price.
    pub cost_usd: Option<f64>,
    /// Error.
    pub error: Option<String>,
    /// `gateway`, `ingest` or `middleware`.
    pub source: String,
    /// Request id.
    pub request_id: Option<String>,
    /// On `llm` routes, every upstream attempt of the call, in order; absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptView>>,
}

/// One upstream attempt of a call on an `llm` route.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// The target tried.
    pub target: String,
    /// The model name sent to it.
    pub model: String,
    /// Its status; the gateway's 502 or 504 when it did not answer.
    pub status: u16,
    /// Until its answer's head (or its failure), ms.
    pub ms: u64,
}

impl From<&StoredEvent> for LogEntry {
    #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^52 µs")]
    fn from(s: &StoredEvent) -> Self {
        let e = &s.event;
        Self {
            id: s.id,
            ts: e.ts_ms,
            key_id: e.key_id,
            team_id: e.team_id,
            route_id: e.route_id,
            route: e.route.clone(),
            method: e.method.clone(),
            path: e.path.clone(),
            status: e.status,
            latency_ms: e.latency_us as f64 / 1000.0,
            upstream_latency_ms: e.upstream_latency_us.map(|u| u as f64 / 1000.0),
            upstream_last_byte_ms: e.upstream_last_byte_us.map(|u| u as f64 / 1000.0),
            client_ip: e.client_ip.clone(),
            user_agent: e.user_agent.clone(),
            model: e.model.clone(),
            prompt_tokens: e.tokens.prompt,
            completion_tokens: e.tokens.completion,
            total_tokens: e.tokens.total,
            cached_tokens: e.tokens.cached,
            reasoning_tokens: e.tokens.reasoning,
            estimated: e.estimated,
            cost_usd: e.cost_usd,
            error: e.error.clone(),
            source: e.source.as_str().to_owned(),
            request_id: e.request_id.clone(),
            attempts: e
                .attempts
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok()),
        }
    }
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Newest first.
    pub items: Vec<LogEntry>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// The event filter of a log query, limited to what the caller may see.
pub fn event_filter(caller: &Caller, q: &LogQuery) -> ApiResult<EventFilter> {
    for (field, v) in [("from", q.from), ("to", q.to)] {
        if v.is_some_and(|t| !(0..MAX_TIME_MS).contains(&t)) {
            return Err(ApiError::invalid(
                field,
                format!("`{field}` must be epoch ms before 9999"),
            ));
        }
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f >= t
    {
        return Err(ApiError::invalid("from", "`from` must be before `to`"));
    }
    if q.q.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::invalid(
            "q",
            "the search text is longer than 200 characters",
        ));
    }
    if q.model.as_ref().is_some_and(|m| m.len() > 200) {
        return Err(ApiError::invalid(
            "model",
            "model is longer than 200 characters",
        ));
    }
    let (status, status_class) = match q.status.as_deref() {
        None | Some("") => (None, None),
        Some(s) if s.len() == 3 && s.ends_with("xx") => match s.as_bytes()[0] {
            c @ b'2'..=b'5' => (None, Some(i16::from(c - b'0'))),
            _ => {
                return Err(ApiError::invalid(
                    "status",
                    format!("status `{s}` is not 2xx, 3xx, 4xx or 5xx"),
                ));
            }
        },
        Some(s) => match s.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => (Some(code), None),
            _ => {
                return Err(ApiError::invalid(
                    "status",
                    format!("status `{s}` is not an HTTP status or a class like 4xx"),
                ));
            }
        },
    };
    let team_ids = match q.team_id {
        Some(team) => {
            caller.require(team, Role::Viewer)?;
            Some(vec![team])
        }
        None => caller.visible_teams(),
    };
    Ok(EventFilter {
        from_ms: q.from,
        to_ms: q.to,
        team_ids,
        key_id: q.key_id,
        route_id: q.route_id,
        model: q.model.clone(),
        status,
        status_class,
        text: q.q.clone().filter(|t| !t.is_empty()),
    })
}

fn parse_cursor(text: &str) -> ApiResult<EventCursor> {
    let bad = || ApiError::invalid("cursor", "the cursor is not one this API returned");
    let (ts, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(EventCursor {
        ts_ms: ts.parse().map_err(|_| bad())?,
        id: id.parse().map_err(|_| bad())?,
    })
}

fn cursor_text(c: EventCursor) -> String {
    format!("{}.{}", c.ts_ms, c.id)
}

/// Reads one page of the call log.
pub async fn log_page(
    state: &ConsoleState,
    caller: &Caller,
    q: &LogQuery,
    default_limit: i64,
) -> ApiResult<LogPage> {
    let filter = event_filter(caller, q)?;
    let limit = q.limit.unwrap_or(default_limit);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 500"));
    }
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let rows = state.store.search_usage(&filter, after, limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let items: Vec<LogEntry> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(LogEntry::from)
        .collect();
    let next_cursor = if more {
        items.last().map(|e| {
            cursor_text(EventCursor {
                ts_ms: e.ts,
                id: e.id,
            })
        })
    } else {
        None
    };
    Ok(LogPage { items, next_cursor })
}

/// Searches the call log, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/logs", tag = "usage", params(LogQuery),
    responses((status = 200, body = LogPage), (status = 422, body = ErrorBody)))]
pub async fn logs(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    Ok(Json(log_page(&state, &caller, &q, 50).await?))
}

/// One call in full.
#[utoipa::path(get, path = "/api/v1/logs/{id}", tag = "usage", params(("id" = i64, Path, description = "Row id")),
    responses((status = 200, body = LogEntry), (status = 404, body = ErrorBody)))]
pub async fn log_entry(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<LogEntry>> {
    let visible = |team: Option<i64>| match team {
        Some(t) => caller.role_in(t).is_some(),
        None => caller.user.is_admin,
    };
    match state.store.usage_event(id).await? {
        Some(e) if visible(e.event.team_id) => Ok(Json(LogEntry::from(&e))),
        _ => Err(ApiError::NotFound(format!("call {id} does not exist"))),
    }
}
