//! The audit log: who changed what, filtered and paged, or streamed as CSV. Instance admins read
//! all of it, team owners and admins their teams', everyone their own entries.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tollgate_core::spreadsheet::text_cell;
use tollgate_store::{AuditEntry, AuditFilter};
use utoipa::{IntoParams, ToSchema};

use super::views::{MAX_TIME_MS, Page};
use super::vocabulary::AuditFormat;
use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Id.
    pub id: i64,
    /// When, epoch ms.
    pub ts: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Kind of entity.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Summary.
    pub summary: String,
    /// Client address.
    pub ip: Option<String>,
    /// Team.
    pub team_id: Option<i64>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            ts: e.ts_ms,
            actor: e.actor,
            action: e.action,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            summary: e.summary,
            ip: e.ip,
            team_id: e.team_id,
        }
    }
}

/// Audit filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact action, e.g. `key.create`.
    pub action: Option<String>,
    /// Exact entity type, e.g. `key`.
    pub entity_type: Option<String>,
    /// Exact actor, e.g. `user:alice@example.com`.
    pub actor: Option<String>,
    /// From (inclusive), epoch ms.
    pub from: Option<i64>,
    /// To (exclusive), epoch ms.
    pub to: Option<i64>,
    /// Page, from 1.
    pub page: Option<i64>,
    /// Entries per page, 1 to 500 (default 50).
    pub per_page: Option<i64>,
    /// `json` (default) or `csv` (the whole filtered log, streamed).
    pub format: Option<AuditFormat>,
}

fn filter_for(caller: &Caller, q: &AuditQuery) -> ApiResult<AuditFilter> {
    for (field, value) in [
        ("action", &q.action),
        ("entity_type", &q.entity_type),
        ("actor", &q.actor),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > 200) {
            return Err(ApiError::invalid(
                field,
                format!("{field} is longer than 200 characters"),
            ));
        }
    }
    for (field, value) in [("from", q.from), ("to", q.to)] {
        if value.is_some_and(|v| !(0..MAX_TIME_MS).contains(&v)) {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be epoch ms before 9999"),
            ));
        }
    }
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::invalid("to", "`to` must be after `from`"));
    }
    Ok(AuditFilter {
        action: q.action.clone().filter(|s| !s.is_empty()),
        entity_type: q.entity_type.clone().filter(|s| !s.is_empty()),
        actor: q.actor.clone().filter(|s| !s.is_empty()),
        from_ms: q.from,
        to_ms: q.to,
        ..caller.audit_scope()
    })
}

fn paging(q: &AuditQuery, default: i64) -> ApiResult<(i64, i64)> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(default);
    if !(1..=1_000_000).contains(&page) {
        return Err(ApiError::invalid("page", "page must be 1 or more"));
    }
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::invalid("per_page", "per_page must be 1 to 500"));
    }
    Ok((page, per_page))
}

/// A page of the log the caller may read, or all of it as CSV, as `q` asks.
pub async fn audit_answer(
    state: &ConsoleState,
    caller: &Caller,
    q: AuditQuery,
    default_per_page: i64,
) -> ApiResult<Response> {
    let filter = filter_for(caller, &q)?;
    match q.format.unwrap_or(AuditFormat::Json) {
        AuditFormat::Json => {
            let (page, per_page) = paging(&q, default_per_page)?;
            let (items, total) = state
                .store
                .list_audit(&filter, per_page, (page - 1) * per_page)
                .await?;
            let body = Page {
                items: items.into_iter().map(AuditView::from).collect::<Vec<_>>(),
                total,
                page,
                per_page,
            };
            Ok(Json(body).into_response())
        }
        AuditFormat::Csv => Ok(audit_csv(state.clone(), filter)),
    }
}

/// Streams the filtered log as CSV, a page of rows at a time (constant memory).
fn audit_csv(state: ConsoleState, filter: AuditFilter) -> Response {
    const CHUNK: i64 = 500;
    let stream = futures_util::stream::unfold((0i64, true), move |(offset, first)| {
        let state = state.clone();
        let filter = filter.clone();
        async move {
            if offset < 0 {
                return None;
            }
            let mut out = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            if first {
                let _ = out.write_record([
                    "id",
                    "time",
                    "actor",
                    "action",
                    "entity_type",
                    "entity_id",
                    "summary",
                    "ip",
                    "team_id",
                ]);
            }
            let (rows, next) = match state.store.list_audit(&filter, CHUNK, offset).await {
                Ok((rows, _)) => {
                    let next = if i64::try_from(rows.len()).unwrap_or(0) < CHUNK {
                        -1
                    } else {
                        offset + CHUNK
                    };
                    (rows, next)
                }
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (-1, false))),
            };
            for r in rows {
                let _ = out.write_record(
                    [
                        r.id.to_string(),
                        tollgate_core::time::format_ms(r.ts_ms),
                        r.actor,
                        r.action,
                        r.entity_type,
                        r.entity_id.unwrap_or_default(),
                        r.summary,
                        r.ip.unwrap_or_default(),
                        r.team_id.map(|t| t.to_string()).unwrap_or_default(),
                    ]
                    .iter()
                    .map(|cell| text_cell(cell).into_owned()),
                );
            }
            let bytes = out.into_inner().unwrap_or_default();
            Some((Ok::<_, std::io::Error>(bytes), (next, false)))
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tollgate-audit.csv\"",
            ),
        ],
        // Fused: the compression layer polls once more after the end, which `unfold` forbids.
        Body::from_stream(stream.fuse()),
    )
        .into_response()
}

/// Reads the audit log: instance admins all of it, team owners and admins their teams', everyone their own.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditView>, description = "JSON page, or CSV with format=csv"), (status = 422, body = ErrorBody)))]
pub async fn list_audit(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    audit_answer(&state, &caller, q, 50).await
}
