//! API keys and routes, on either side.

use super::*;

impl Backend {
    // ---- keys --------------------------------------------------------------------------------

    /// Keys visible to the actor, masked.
    pub async fn keys(
        &self,
        team: Option<i64>,
        unused: bool,
        idle_days: Option<u32>,
    ) -> Outcome<Vec<KeyView>> {
        match self {
            Self::Local(l) => {
                let by_use = keys::UseFilter::new(unused, idle_days)?;
                let now = now_ms();
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(l.store
                    .list_keys(team)
                    .await?
                    .iter()
                    .filter(|k| by_use.keeps(k, now))
                    .map(|k| KeyView::of(k, now).with_models(&models))
                    .collect())
            }
            Self::Remote(r) => {
                let mut query = Vec::new();
                if let Some(team) = team {
                    query.push(format!("team_id={team}"));
                }
                if unused {
                    query.push("unused=true".into());
                }
                if let Some(days) = idle_days {
                    query.push(format!("idle_days={days}"));
                }
                let path = if query.is_empty() {
                    "api/v1/keys".to_owned()
                } else {
                    format!("api/v1/keys?{}", query.join("&"))
                };
                r.get(&path).await
            }
        }
    }

    /// Creates a key; the secret is in the answer once.
    pub async fn create_key(&self, req: KeyCreate) -> Outcome<KeyCreated> {
        match self {
            Self::Local(l) => {
                let draft = KeyDraft::try_from(req)?;
                let (record, secret) = keys::create(&l.rules(), &l.actor(), draft).await?;
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(KeyCreated {
                    key: secret.expose().to_owned(),
                    view: KeyView::of(&record, now_ms()).with_models(&models),
                })
            }
            Self::Remote(r) => r.send(Method::POST, "api/v1/keys", &req).await,
        }
    }

    /// Changes a key.
    pub async fn update_key(&self, id: i64, patch: KeyPatch) -> Outcome<KeyView> {
        match self {
            Self::Local(l) => {
                let change = KeyChange {
                    name: patch.name,
                    description: patch.description,
                    expires_at: patch.expires_at,
                    route_ids: patch.route_ids,
                    models: patch.models,
                };
                let record = keys::update(&l.rules(), &l.actor(), id, change).await?;
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(KeyView::of(&record, now_ms()).with_models(&models))
            }
            Self::Remote(r) => {
                r.send(Method::PATCH, &format!("api/v1/keys/{id}"), &patch)
                    .await
            }
        }
    }

    /// Revokes a key.
    pub async fn revoke_key(&self, id: i64) -> Outcome<KeyView> {
        match self {
            Self::Local(l) => {
                let record = keys::revoke(&l.rules(), &l.actor(), id).await?;
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(KeyView::of(&record, now_ms()).with_models(&models))
            }
            Self::Remote(r) => r.post_empty(&format!("api/v1/keys/{id}/revoke")).await,
        }
    }

    // ---- routes ------------------------------------------------------------------------------

    /// Routes visible to the actor.
    pub async fn routes(&self) -> Outcome<Vec<RouteView>> {
        match self {
            Self::Local(l) => Ok(l
                .store
                .list_routes()
                .await?
                .iter()
                .map(RouteView::from)
                .collect()),
            Self::Remote(r) => r.get("api/v1/routes").await,
        }
    }

    /// Creates a route.
    pub async fn create_route(&self, req: RouteCreate) -> Outcome<RouteView> {
        match self {
            Self::Local(l) => {
                let draft = RouteDraft::try_from(req)?;
                let route = routes::create(&l.rules(), &l.actor(), draft).await?;
                Ok(RouteView::from(&route))
            }
            Self::Remote(r) => r.send(Method::POST, "api/v1/routes", &req).await,
        }
    }

    /// Changes a route; it keeps its id, and the keys that list it keep it.
    pub async fn update_route(&self, id: i64, patch: RoutePatch) -> Outcome<RouteView> {
        match self {
            Self::Local(l) => {
                let change = RouteChange::try_from(patch)?;
                let updated = routes::update(&l.rules(), &l.actor(), id, change).await?;
                Ok(RouteView::from(&updated.route))
            }
            Self::Remote(r) => {
                r.send(Method::PATCH, &format!("api/v1/routes/{id}"), &patch)
                    .await
            }
        }
    }

    /// Deletes a route.
    pub async fn delete_route(&self, id: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => {
                routes::delete(&l.rules(), &l.actor(), id).await?;
                Ok(())
            }
            Self::Remote(r) => r.delete(&format!("api/v1/routes/{id}")).await,
        }
    }
}
