//! Usage totals, top lists and exports, on either side.

use super::*;

/// What a usage command asks about: a time range (epoch ms) and filters.
#[derive(Debug, Clone)]
pub struct UsageAsk {
    /// From, epoch ms.
    pub from_ms: i64,
    /// To, epoch ms.
    pub to_ms: i64,
    /// Only this key.
    pub key: Option<i64>,
    /// Only this route.
    pub route: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
}

impl UsageAsk {
    /// The roll-up filter of the range, in whole hours.
    fn rollups(&self) -> RollupFilter {
        RollupFilter {
            from_ms: self.from_ms - self.from_ms.rem_euclid(HOUR_MS),
            to_ms: self.to_ms - self.to_ms.rem_euclid(HOUR_MS) + HOUR_MS,
            team_ids: None,
            key_id: self.key,
            route_id: self.route,
            model: self.model.clone(),
            status_class: None,
        }
    }

    /// The query parameters of the usage endpoints.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("from", self.from_ms.to_string()),
            ("to", self.to_ms.to_string()),
        ];
        if let Some(key) = self.key {
            q.push(("key_id", key.to_string()));
        }
        if let Some(route) = self.route {
            q.push(("route_id", route.to_string()));
        }
        if let Some(model) = &self.model {
            q.push(("model", model.clone()));
        }
        q
    }
}

impl Backend {
    /// Usage totals over a range.
    pub async fn usage_totals(&self, ask: &UsageAsk) -> Outcome<UsageSummary> {
        match self {
            Self::Local(l) => Ok(usage::totals(
                l.store.as_ref(),
                &ask.rollups(),
                usage::Percentiles::Sketched,
            )
            .await
            .map_err(api_failure)?),
            Self::Remote(r) => Ok(r
                .get_query::<SummaryView>("api/v1/usage/summary", &ask.query())
                .await?
                .summary),
        }
    }

    /// The top `limit` groups `by` (an API word: key, route, model, team, status_class) in
    /// `order` (calls, tokens).
    pub async fn usage_top(
        &self,
        ask: &UsageAsk,
        by: &str,
        order: &str,
        limit: i64,
    ) -> Outcome<Vec<TopItem>> {
        match self {
            Self::Local(l) => {
                let grouping = usage::grouping_of(Some(by)).map_err(api_failure)?;
                let order = usage::order_of(Some(order)).map_err(api_failure)?;
                usage::top_items(
                    l.store.as_ref(),
                    &ask.rollups(),
                    grouping,
                    order,
                    limit,
                    usage::Percentiles::Sketched,
                )
                .await
                .map_err(api_failure)
            }
            Self::Remote(r) => {
                let mut query = ask.query();
                query.push(("by", by.to_owned()));
                query.push(("order", order.to_owned()));
                query.push(("limit", limit.to_string()));
                r.get_query("api/v1/usage/top", &query).await
            }
        }
    }

    /// Streams the raw events of a range into `out` in `format`; the events written locally
    /// (a server's stream is not counted: `None`).
    pub async fn usage_export(
        &self,
        ask: &UsageAsk,
        format: ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> Outcome<Option<u64>> {
        match self {
            Self::Local(l) => {
                let store = l.store.as_ref();
                let filter = EventFilter {
                    from_ms: Some(ask.from_ms),
                    to_ms: Some(ask.to_ms),
                    key_id: ask.key,
                    route_id: ask.route,
                    model: ask.model.clone(),
                    ..EventFilter::default()
                };
                let names = usage::key_names(store).await.map_err(api_failure)?;
                let mut encoder = usage::RowEncoder::new(format);
                let mut cursor: Option<EventCursor> = None;
                let mut rows = 0u64;
                let write = |out: &mut dyn std::io::Write, bytes: &[u8]| {
                    out.write_all(bytes).map_err(|e| {
                        Failure::Other(anyhow::Error::from(e).context("cannot write the export"))
                    })
                };
                loop {
                    let page = store.search_usage(&filter, cursor, 5_000).await?;
                    for e in &page {
                        write(
                            out,
                            &encoder.row(&usage::export_row(&usage::LogEntry::from(e), &names)),
                        )?;
                    }
                    rows += page.len() as u64;
                    match page.last() {
                        Some(last) if page.len() == 5_000 => {
                            cursor = Some(EventCursor {
                                ts_ms: last.event.ts_ms,
                                id: last.id,
                            });
                        }
                        _ => break,
                    }
                }
                write(out, &encoder.finish())?;
                Ok(Some(rows))
            }
            Self::Remote(r) => {
                let mut query = ask.query();
                query.push(("format", format.as_str().to_owned()));
                r.stream_to("api/v1/usage/export", &query, out).await?;
                Ok(None)
            }
        }
    }
}

/// A console-layer refusal as a backend one.
fn api_failure(e: ApiError) -> Failure {
    match e {
        ApiError::Internal(detail) => Failure::Other(anyhow::anyhow!("{detail}")),
        other => Failure::Refused {
            status: other.status().as_u16(),
            detail: other.detail(),
        },
    }
}
