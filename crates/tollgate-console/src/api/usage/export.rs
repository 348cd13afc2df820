//! Streamed exports of events, series and top-N as CSV, JSON or NDJSON.

use futures_util::StreamExt as _;
use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tollgate_core::spreadsheet::text_cell;
use tollgate_core::time::{DAY_MS, now_ms};
use tollgate_store::{AggregateOrder, EventCursor, EventFilter, Grouping, Store};
use utoipa::IntoParams;

use super::{LogEntry, LogQuery, Percentiles, UsageQuery, event_filter, series_points, top_items};
use crate::ConsoleState;
use crate::api::vocabulary::ExportFormat;
use crate::api::vocabulary::{Bucket, ExportDataset, Grouping as By};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;

/// Export query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `events` (default), `series` or `top`.
    pub dataset: Option<ExportDataset>,
    /// `csv` (default), `json` or `ndjson`.
    pub format: Option<ExportFormat>,
    /// Start, epoch ms (default: `to` minus `range`, or 7 days ago).
    pub from: Option<i64>,
    /// End, epoch ms.
    pub to: Option<i64>,
    /// How far back from `to` (or now), e.g. `24h`, `7d`, `90d` (at most 400d), as in the other
    /// usage endpoints; instead of `from`.
    pub range: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// Status or class (events).
    pub status: Option<String>,
    /// For `top`: key, route, model, team, status_class.
    pub by: Option<By>,
    /// For `series`: hour or day (default day).
    pub bucket: Option<Bucket>,
}

impl ExportFormat {
    /// Parses `csv` (the default), `json` or `ndjson`, for callers that hold the word as text.
    pub fn parse(text: Option<&str>) -> ApiResult<Self> {
        text.unwrap_or("csv")
            .parse()
            .map_err(|e| ApiError::invalid("format", e))
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
        }
    }
}

/// Encodes rows of one serialisable type in a format, piece by piece, so that exports stream.
#[derive(Debug)]
pub struct RowEncoder {
    format: ExportFormat,
    rows: usize,
}

impl RowEncoder {
    /// A new encoder.
    pub fn new(format: ExportFormat) -> Self {
        Self { format, rows: 0 }
    }

    /// The bytes for one row (with the CSV header before the first one).
    pub fn row<T: Serialize>(&mut self, value: &T) -> Vec<u8> {
        let first = self.rows == 0;
        self.rows += 1;
        let mut out = Vec::new();
        match self.format {
            ExportFormat::Json => {
                out.extend_from_slice(if first { b"[\n" } else { b",\n" });
                let _ = serde_json::to_writer(&mut out, value);
            }
            ExportFormat::Ndjson => {
                let _ = serde_json::to_writer(&mut out, value);
                out.push(b'\n');
            }
            ExportFormat::Csv => {
                let Ok(serde_json::Value::Object(map)) = serde_json::to_value(value) else {
                    return out;
                };
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new());
                if first {
                    let _ = w.write_record(map.keys());
                }
                let _ = w.write_record(map.values().map(|v| match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => text_cell(s).into_owned(),
                    other => other.to_string(),
                }));
                out = w.into_inner().unwrap_or_default();
            }
        }
        out
    }

    /// The closing bytes.
    pub fn finish(&self) -> Vec<u8> {
        match (self.format, self.rows) {
            (ExportFormat::Json, 0) => b"[]\n".to_vec(),
            (ExportFormat::Json, _) => b"\n]\n".to_vec(),
            _ => Vec::new(),
        }
    }
}

fn attachment(format: ExportFormat, name: &str, body: Body) -> Response {
    let disposition = format!(
        "attachment; filename=\"tollgate-{name}.{}\"",
        format.extension()
    );
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// Every key's name by id (deleted keys have none), for exports that show names beside ids.
pub async fn key_names(store: &dyn Store) -> ApiResult<HashMap<i64, String>> {
    Ok(store
        .list_keys(None)
        .await?
        .into_iter()
        .map(|k| (k.id, k.name))
        .collect())
}

/// One exported call: its call-log entry with the key's name (null when the call had no key or
/// the key is gone) right after the key id, so a spreadsheet reads without a second lookup.
pub fn export_row(entry: &LogEntry, names: &HashMap<i64, String>) -> serde_json::Value {
    let key_name = entry.key_id.and_then(|id| names.get(&id)).cloned();
    let serde_json::Value::Object(fields) = serde_json::to_value(entry).unwrap_or_default() else {
        return serde_json::Value::Null;
    };
    let mut row = serde_json::Map::with_capacity(fields.len() + 1);
    for (name, value) in fields {
        let after_key = name == "key_id";
        row.insert(name, value);
        if after_key {
            row.insert("key_name".into(), key_name.clone().into());
        }
    }
    serde_json::Value::Object(row)
}

/// Streams every event matching `filter`, page by page (constant memory whatever the size), each
/// with its key's name from `names`.
pub fn stream_events(
    state: ConsoleState,
    filter: EventFilter,
    format: ExportFormat,
    names: std::sync::Arc<HashMap<i64, String>>,
) -> Body {
    const PAGE: i64 = 2_000;
    let encoder = RowEncoder::new(format);
    let stream = futures_util::stream::unfold(
        (Some(None::<EventCursor>), encoder),
        move |(cursor, mut encoder)| {
            let state = state.clone();
            let filter = filter.clone();
            let names = names.clone();
            async move {
                let after = cursor?;
                match state.store.search_usage(&filter, after, PAGE).await {
                    Ok(rows) => {
                        let mut out = Vec::new();
                        for r in &rows {
                            out.extend(encoder.row(&export_row(&LogEntry::from(r), &names)));
                        }
                        let next = if i64::try_from(rows.len()).unwrap_or(0) < PAGE {
                            out.extend(encoder.finish());
                            None
                        } else {
                            rows.last().map(|r| {
                                Some(EventCursor {
                                    ts_ms: r.event.ts_ms,
                                    id: r.id,
                                })
                            })
                        };
                        Some((Ok::<_, std::io::Error>(out), (next, encoder)))
                    }
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, encoder))),
                }
            }
        },
    );
    // Fused: the compression layer polls once more after the end, which `unfold` forbids.
    Body::from_stream(stream.fuse())
}

/// Exports events (streamed), a series or a top-N as CSV, JSON or NDJSON.
#[utoipa::path(get, path = "/api/v1/usage/export", tag = "usage", params(ExportQuery),
    responses((status = 200, description = "The file, streamed"), (status = 422, body = ErrorBody)))]
pub async fn export(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or(ExportFormat::Csv);
    match q.dataset.unwrap_or(ExportDataset::Events) {
        ExportDataset::Events => {
            let (from, to) = match &q.range {
                // Resolved as every usage endpoint resolves it (and refused the same way).
                Some(_) => {
                    let scope = UsageQuery {
                        from: q.from,
                        to: q.to,
                        range: q.range.clone(),
                        team_id: q.team_id,
                        ..UsageQuery::default()
                    }
                    .scope(&caller)?;
                    (scope.from_ms, Some(scope.to_ms))
                }
                None => (q.from.unwrap_or_else(|| now_ms() - 7 * DAY_MS), q.to),
            };
            let logq = LogQuery {
                from: Some(from),
                to,
                team_id: q.team_id,
                key_id: q.key_id,
                route_id: q.route_id,
                model: q.model.clone(),
                status: q.status.clone(),
                q: None,
                cursor: None,
                limit: None,
            };
            let filter = event_filter(&caller, &logq)?;
            let names = std::sync::Arc::new(key_names(state.store.as_ref()).await?);
            Ok(attachment(
                format,
                "events",
                stream_events(state, filter, format, names),
            ))
        }
        dataset @ (ExportDataset::Series | ExportDataset::Top) => {
            let uq = UsageQuery {
                from: q.from,
                to: q.to,
                range: q.range.clone(),
                team_id: q.team_id,
                key_id: q.key_id,
                route_id: q.route_id,
                model: q.model.clone(),
                status_class: None,
            };
            let uq = if q.from.is_none() && q.range.is_none() {
                UsageQuery {
                    range: Some("7d".into()),
                    ..uq
                }
            } else {
                uq
            };
            let scope = uq.scope(&caller)?;
            let mut enc = RowEncoder::new(format);
            let mut out = Vec::new();
            if dataset == ExportDataset::Series {
                let bucket = Grouping::from(q.bucket.unwrap_or(Bucket::Day));
                for p in series_points(&state, &scope, bucket, Percentiles::Sketched).await? {
                    out.extend(enc.row(&p));
                }
            } else {
                for item in top_items(
                    state.store.as_ref(),
                    &scope.rollups,
                    Grouping::from(q.by.unwrap_or(By::Key)),
                    AggregateOrder::CallsDesc,
                    1000,
                    Percentiles::Sketched,
                )
                .await?
                {
                    out.extend(enc.row(&item));
                }
            }
            out.extend(enc.finish());
            Ok(attachment(format, dataset.as_str(), Body::from(out)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_frame_their_rows() {
        #[derive(Serialize)]
        struct R {
            a: i64,
            b: Option<String>,
        }
        let mut json = RowEncoder::new(ExportFormat::Json);
        let mut text = json.row(&R { a: 1, b: None });
        text.extend(json.row(&R {
            a: 2,
            b: Some("x,y".into()),
        }));
        text.extend(json.finish());
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(RowEncoder::new(ExportFormat::Json).finish(), b"[]\n");
        let mut csv = RowEncoder::new(ExportFormat::Csv);
        let mut text = csv.row(&R { a: 1, b: None });
        text.extend(csv.row(&R {
            a: 2,
            b: Some("x,y".into()),
        }));
        assert_eq!(String::from_utf8(text).unwrap(), "a,b\n1,\n2,\"x,y\"\n");
        let mut nd = RowEncoder::new(ExportFormat::Ndjson);
        assert_eq!(
            String::from_utf8(nd.row(&R { a: 3, b: None })).unwrap(),
            "{\"a\":3,\"b\":null}\n"
        );
    }
}
