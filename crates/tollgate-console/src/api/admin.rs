//! The audit log (v1 and the seed's dashboard path with CSV), instance settings with ingest secret
//! rotation, and the seed-compatible key endpoints.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tollgate_core::crypto::SealedRow;
use tollgate_core::spreadsheet::text_cell;
use tollgate_core::time::now_ms;
use tollgate_store::{AuditEntry, AuditFilter};
use utoipa::{IntoParams, ToSchema};

use super::ingest::{INGEST_SECRET_SETTING, SecretSource, StoredSecret};
use super::keys::{KeyCreated, create_key_for, delete_key_as};
use super::views::{KeyView, MAX_TIME_MS, Page};
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::{Caller, random_secret};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

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
    pub format: Option<String>,
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

async fn audit_answer(
    state: &ConsoleState,
    caller: &Caller,
    q: AuditQuery,
    default_per_page: i64,
) -> ApiResult<Response> {
    let filter = filter_for(caller, &q)?;
    match q.format.as_deref() {
        None | Some("json") => {
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
        Some("csv") => Ok(audit_csv(state.clone(), filter)),
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("format `{other}` is not json or csv"),
        )),
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

/// The seed's audit log path: filter by action and entity type, pages of 50, `format=csv` for CSV.
#[utoipa::path(get, path = "/api/dashboard/audit-logs", tag = "seed", params(AuditQuery),
    responses((status = 200, body = Page<AuditView>, description = "JSON page, or CSV with format=csv"), (status = 422, body = ErrorBody)))]
pub async fn dashboard_audit_logs(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    if q.per_page.is_some_and(|p| p != 50) {
        return Err(ApiError::invalid(
            "per_page",
            "this path pages by 50; use /api/v1/audit for other sizes",
        ));
    }
    q.per_page = Some(50);
    audit_answer(&state, &caller, q, 50).await
}

/// Instance settings as the console shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// Where the ingest secret in force comes from.
    pub ingest_secret: SecretSource,
    /// Whether ingest without credentials is allowed.
    pub ingest_open: bool,
    /// Whether a master key is configured (revealable keys, upstream credentials).
    pub master_key: bool,
    /// Raw usage retention, days.
    pub retention_days: u32,
}

/// The instance settings (instance admins).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", responses((status = 200, body = SettingsView), (status = 403, body = ErrorBody)))]
pub async fn get_settings(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<SettingsView>> {
    caller.require_admin()?;
    let (_, source) = state.ingest_secret.current(&state).await?;
    Ok(Json(SettingsView {
        ingest_secret: source,
        ingest_open: state.settings.ingest_open,
        master_key: state.master_key.is_some(),
        retention_days: state.settings.retention_days,
    }))
}

/// A new ingest secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestSecretRotated {
    /// The new secret: sign bodies with it or send it as a bearer token. The previous one stops working.
    pub secret: String,
}

/// Rotates the ingest secret (instance admins): the old one stops working within a second.
#[utoipa::path(post, path = "/api/v1/settings/ingest-secret", tag = "settings",
    responses((status = 201, body = IngestSecretRotated), (status = 403, body = ErrorBody)))]
pub async fn rotate_ingest_secret(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<IngestSecretRotated>)> {
    caller.require_admin()?;
    let secret = random_secret();
    let stored = match &state.master_key {
        Some(m) => StoredSecret::Sealed(hex::encode(
            m.seal(secret.as_bytes(), SealedRow::Setting(INGEST_SECRET_SETTING)),
        )),
        None => StoredSecret::Plain(secret.clone()),
    };
    let text = serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store
        .set_setting(INGEST_SECRET_SETTING, &text)
        .await?;
    state.ingest_secret.invalidate();
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("setting.change", "setting", INGEST_SECRET_SETTING)
            .summary("ingest secret rotated"),
    )
    .await;
    Ok((StatusCode::CREATED, Json(IngestSecretRotated { secret })))
}

/// The seed's envelope: `{"code":0,"data":…}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedEnvelope<T> {
    /// 0 for success.
    pub code: i32,
    /// The answer.
    pub data: T,
}

/// The seed's key creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedKeyCreate {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// The seed's key list (masked), for the caller's teams.
#[utoipa::path(get, path = "/api/console/keys", tag = "seed", responses((status = 200, body = SeedEnvelope<Vec<KeyView>>), (status = 401, body = ErrorBody)))]
pub async fn seed_list_keys(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<SeedEnvelope<Vec<KeyView>>>> {
    let now = now_ms();
    let keys = state.store.list_keys(None).await?;
    let data = keys
        .iter()
        .filter(|k| caller.role_in(k.team_id).is_some())
        .map(|k| KeyView::of(k, now))
        .collect();
    Ok(Json(SeedEnvelope { code: 0, data }))
}

/// The seed's key creation: `{name, description}`; the key is in the answer once.
#[utoipa::path(post, path = "/api/console/keys", tag = "seed", request_body = SeedKeyCreate,
    responses((status = 201, body = SeedEnvelope<KeyCreated>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn seed_create_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<SeedKeyCreate>,
) -> ApiResult<(StatusCode, Json<SeedEnvelope<KeyCreated>>)> {
    let (key, secret) = create_key_for(
        &state,
        &caller,
        None,
        &req.name,
        &req.description,
        None,
        None,
    )
    .await?;
    let data = KeyCreated {
        key: secret.expose().to_owned(),
        view: KeyView::of(&key, now_ms()),
    };
    Ok((StatusCode::CREATED, Json(SeedEnvelope { code: 0, data })))
}

/// The seed's key deletion.
#[utoipa::path(delete, path = "/api/console/keys/{id}", tag = "seed", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = SeedEnvelope<String>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn seed_delete_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SeedEnvelope<String>>> {
    delete_key_as(&state, &caller, id).await?;
    Ok(Json(SeedEnvelope {
        code: 0,
        data: format!("key {id} deleted"),
    }))
}
