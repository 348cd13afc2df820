//! Rate limits, concurrency limits and budgets, on either side.

use super::*;

impl Backend {
    // ---- limits ------------------------------------------------------------------------------

    /// Every limit the actor may see, with its use: a server's from its live limiter; locally
    /// computed from the store (budgets since their period began; rate windows and calls in
    /// flight live only in a running gateway and show as zero).
    pub async fn limits(&self) -> Outcome<Vec<LimitView>> {
        match self {
            Self::Local(l) => {
                let entries = limits::list(&l.rules(), &l.actor(), LimitFilter::default()).await?;
                let names = limits::scope_names(l.store.as_ref()).await?;
                let counters = Arc::new(LocalCounters::new(Arc::new(StoreSeed::new(Arc::clone(
                    &l.store,
                )))));
                let time_zone = tollgate_limits::time_zone("limits.time_zone", &l.limits_zone)
                    .map_err(|e| anyhow::anyhow!("limits.time_zone: {}", e.message))?;
                let limiter = Limiter::new(
                    entries.iter().map(|e| e.limit.clone()).collect(),
                    counters,
                    LimiterConfig {
                        time_zone,
                        ..LimiterConfig::default()
                    },
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let usage: HashMap<i64, LimitUsage> = limiter
                    .usage()
                    .await
                    .map_err(|e| anyhow::anyhow!("reading the limits' use failed: {e}"))?
                    .into_iter()
                    .map(|u| (u.limit_id, u))
                    .collect();
                Ok(limit_views(entries, &names, Some(&usage)))
            }
            Self::Remote(r) => Ok(r.get::<LimitList>("api/v1/limits").await?.limits),
        }
    }

    /// Creates limits, all or none: on a refusal, the index of the refused draft. Locally every
    /// draft is checked before the first is stored; a server checks each as it is created, and
    /// the ones created before a refusal are removed again.
    pub async fn create_limits(
        &self,
        drafts: Vec<LimitDraft>,
    ) -> Result<Vec<LimitView>, (Failure, usize)> {
        match self {
            Self::Local(l) => {
                let (rules, actor) = (l.rules(), l.actor());
                for (i, draft) in drafts.iter().enumerate() {
                    limits::check_draft(&rules, &actor, draft)
                        .await
                        .map_err(|e| (Failure::from(e), i))?;
                }
                let mut entries = Vec::with_capacity(drafts.len());
                for (i, draft) in drafts.into_iter().enumerate() {
                    entries.push(
                        limits::create(&rules, &actor, draft, None)
                            .await
                            .map_err(|e| (Failure::from(e), i))?,
                    );
                }
                let names = limits::scope_names(l.store.as_ref())
                    .await
                    .map_err(|e| (Failure::from(e), 0))?;
                Ok(limit_views(entries, &names, None))
            }
            Self::Remote(r) => {
                let mut created: Vec<LimitView> = Vec::with_capacity(drafts.len());
                for (i, draft) in drafts.into_iter().enumerate() {
                    let body = LimitCreate {
                        scope: draft.scope,
                        kind: draft.kind,
                        enforcement: draft.enforcement,
                        alert_at: draft.alert_at,
                        include_reported: draft.include_reported,
                    };
                    match r.send(Method::POST, "api/v1/limits", &body).await {
                        Ok(view) => created.push(view),
                        Err(e) => {
                            for done in &created {
                                // Best effort: the refusal is what the caller must see.
                                let _ = r.delete(&format!("api/v1/limits/{}", done.id)).await;
                            }
                            return Err((e, i));
                        }
                    }
                }
                Ok(created)
            }
        }
    }

    /// Removes a limit and returns it as it was.
    pub async fn delete_limit(&self, id: i64) -> Outcome<Limit> {
        match self {
            Self::Local(l) => Ok(limits::delete(&l.rules(), &l.actor(), id).await?.limit),
            Self::Remote(r) => {
                let limit = r
                    .get::<LimitList>("api/v1/limits")
                    .await?
                    .limits
                    .into_iter()
                    .find(|v| v.id == id)
                    .map(|v| limit_of(&v))
                    .ok_or_else(|| Failure::Refused {
                        status: 404,
                        detail: ErrorDetail {
                            code: "not_found".into(),
                            message: format!("limit {id} does not exist"),
                            field: None,
                        },
                    })?;
                r.delete(&format!("api/v1/limits/{id}")).await?;
                Ok(limit)
            }
        }
    }
}

/// The limit a view shows.
pub fn limit_of(v: &LimitView) -> Limit {
    Limit {
        id: v.id,
        scope: v.scope,
        kind: v.kind,
        enforcement: v.enforcement,
        alert_at: v.alert_at.clone(),
        include_reported: v.include_reported,
    }
}
