//! API keys: who may create, change, revoke, delete and reveal one; names, descriptions,
//! expiry and allowed routes; the audit entry of each.

use tollgate_core::crypto::SealedRow;
use tollgate_core::time::now_ms;
use tollgate_core::{ApiKey, KeyHash, Role};
use tollgate_store::{DEFAULT_TEAM, KeyRecord, KeyUpdate, NewKey, Store};

use super::limits::check_models;
use super::{Actor, MAX_TIME_MS, RuleError, RuleResult, Rules, check_label, expiry_from};
use crate::audit::Change;

/// Most routes a key may be limited to.
pub const MAX_ROUTES: usize = 1000;

/// When a new key stops working.
#[derive(Debug, Clone, Default)]
pub enum Expiry {
    /// Never.
    #[default]
    Never,
    /// After a lifetime such as `90d` (field `expires_in`).
    In(String),
    /// At a time, epoch ms (field `expires_at`), which must be in the future.
    At(i64),
}

/// A key to create.
#[derive(Debug, Clone, Default)]
pub struct KeyDraft {
    /// Owning team; default: the actor's only team, else the `default` team.
    pub team_id: Option<i64>,
    /// Name, 1 to 100 characters once trimmed.
    pub name: String,
    /// Free text, up to 1000 characters.
    pub description: String,
    /// When it stops working.
    pub expiry: Expiry,
    /// Allowed route ids; `None` for all of the team's and the shared routes.
    pub route_ids: Option<Vec<i64>>,
    /// Models the key may call on LLM routes (glob patterns); `None` for every model.
    pub models: Option<Vec<String>>,
}

/// A change to a key; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New expiry, epoch ms; `Some(None)` removes it.
    pub expires_at: Option<Option<i64>>,
    /// New allowed route ids; `Some(None)` for all of the team's.
    pub route_ids: Option<Option<Vec<i64>>>,
    /// New model allow-list (glob patterns); `Some(None)` for every model.
    pub models: Option<Option<Vec<String>>>,
}

fn check_description(text: &str) -> RuleResult<String> {
    if text.chars().count() > 1000 {
        return Err(RuleError::invalid(
            "description",
            "the description must be at most 1000 characters",
        ));
    }
    Ok(text.to_owned())
}

fn expiry_at(expiry: &Expiry, now: i64) -> RuleResult<Option<i64>> {
    match expiry {
        Expiry::Never => Ok(None),
        Expiry::In(text) => expiry_from("expires_in", Some(text), now),
        Expiry::At(at) if *at <= now || *at >= MAX_TIME_MS => Err(RuleError::invalid(
            "expires_at",
            "expires_at must be in the future (epoch ms)",
        )),
        Expiry::At(at) => Ok(Some(*at)),
    }
}

/// Checks that every route exists and that the team may call it; sorted, without repeats.
async fn check_routes(store: &dyn Store, team_id: i64, ids: &[i64]) -> RuleResult<Vec<i64>> {
    if ids.is_empty() {
        return Err(RuleError::invalid(
            "route_ids",
            "name at least one route, or none at all for every route of the team",
        ));
    }
    if ids.len() > MAX_ROUTES {
        return Err(RuleError::invalid("route_ids", "at most 1000 routes"));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match store.route_by_id(*id).await? {
            Some(r) if r.team_id.is_none_or(|t| t == team_id) => out.push(*id),
            Some(_) => {
                return Err(RuleError::invalid(
                    "route_ids",
                    format!("route {id} belongs to another team"),
                ));
            }
            None => {
                return Err(RuleError::invalid(
                    "route_ids",
                    format!("route {id} does not exist"),
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The team a new key goes to when none is named: the actor's only team, else (for instance
/// admins and the operator) the `default` team.
async fn target_team(
    store: &dyn Store,
    actor: &Actor<'_>,
    team_id: Option<i64>,
) -> RuleResult<i64> {
    if let Some(id) = team_id {
        return Ok(id);
    }
    match actor.visible_teams() {
        Some(teams) if teams.len() == 1 => Ok(teams[0]),
        Some(_) => Err(RuleError::invalid(
            "team_id",
            "you belong to several teams (or none): give team_id",
        )),
        None => store
            .team_by_name(DEFAULT_TEAM)
            .await?
            .map(|t| t.id)
            .ok_or_else(|| RuleError::invalid("team_id", "give team_id")),
    }
}

/// The key if the actor may see it (viewer or more in its team); otherwise "not found".
pub async fn visible(store: &dyn Store, actor: &Actor<'_>, id: i64) -> RuleResult<KeyRecord> {
    match store.key_by_id(id).await? {
        Some(k) if actor.role_in(k.team_id).is_some() => Ok(k),
        _ => Err(RuleError::NotFound(format!("key {id} does not exist"))),
    }
}

/// The key if the actor may change it: admin or owner of its team, or the member who made it.
pub async fn managed(store: &dyn Store, actor: &Actor<'_>, id: i64) -> RuleResult<KeyRecord> {
    let key = visible(store, actor, id).await?;
    let role = actor.role_in(key.team_id).unwrap_or(Role::Viewer);
    let own = role == Role::Member && key.created_by.as_deref() == Some(actor.creator().as_str());
    if role.manages_team() || own {
        Ok(key)
    } else {
        Err(RuleError::Forbidden(format!(
            "key {id}: only its team's owners and admins, or the member who created it, may change it"
        )))
    }
}

/// Creates a key (members and up of its team), audited; the secret is returned this once.
pub async fn create(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: KeyDraft,
) -> RuleResult<(KeyRecord, ApiKey)> {
    let store = rules.store;
    let name = check_label("name", &draft.name)?;
    let description = check_description(&draft.description)?;
    let expires_at_ms = expiry_at(&draft.expiry, now_ms())?;
    let models = check_models(draft.models.as_deref())?;
    let team_id = target_team(store, actor, draft.team_id).await?;
    actor.require(team_id, Role::Member)?;
    let route_ids = match draft.route_ids {
        Some(ids) => Some(check_routes(store, team_id, &ids).await?),
        None => None,
    };
    let secret = ApiKey::generate();
    let key = store
        .create_key(NewKey {
            team_id,
            name,
            description,
            key_hash: secret.hash(),
            prefix: secret.display_prefix(),
            sealed_key: rules.master_key.map(|m| {
                m.seal(
                    secret.expose().as_bytes(),
                    SealedRow::ApiKey(&secret.hash()),
                )
            }),
            created_by: Some(actor.creator()),
            expires_at_ms,
            route_ids,
        })
        .await?;
    if let Some(models) = &models {
        store.set_key_models(key.id, Some(models.as_str())).await?;
    }
    let change = Change::new("key.create", "key", key.id)
        .team(Some(team_id))
        .summary(format!(
            "key `{}` ({}) created in {}{}",
            key.name,
            key.prefix,
            key.team_name,
            models
                .as_deref()
                .map(|m| format!(", models {m}"))
                .unwrap_or_default()
        ));
    actor.audit(store, change).await;
    Ok((key, secret))
}

/// Changes a key's name, description, expiry or allowed routes, audited.
pub async fn update(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    change: KeyChange,
) -> RuleResult<KeyRecord> {
    let store = rules.store;
    let key = managed(store, actor, id).await?;
    if let Some(Some(at)) = change.expires_at
        && !(0..MAX_TIME_MS).contains(&at)
    {
        return Err(RuleError::invalid(
            "expires_at",
            "expires_at must be an epoch ms time before 9999",
        ));
    }
    let route_ids = match change.route_ids {
        Some(Some(ids)) => Some(Some(check_routes(store, key.team_id, &ids).await?)),
        other => other,
    };
    let models = change
        .models
        .as_ref()
        .map(|m| check_models(m.as_deref()))
        .transpose()?;
    let update = KeyUpdate {
        name: change
            .name
            .as_deref()
            .map(|n| check_label("name", n))
            .transpose()?,
        description: change
            .description
            .as_deref()
            .map(check_description)
            .transpose()?,
        expires_at_ms: change.expires_at,
        route_ids,
        sealed_key: None,
    };
    let changed: Vec<&str> = [
        ("name", update.name.is_some()),
        ("description", update.description.is_some()),
        ("expiry", update.expires_at_ms.is_some()),
        ("routes", update.route_ids.is_some()),
        ("models", models.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let updated = store.update_key(id, update).await?;
    if let Some(models) = &models {
        store.set_key_models(id, models.as_deref()).await?;
    }
    let entry = Change::new("key.update", "key", id)
        .team(Some(key.team_id))
        .summary(format!(
            "key `{}` changed: {}",
            updated.name,
            if changed.is_empty() {
                "nothing".into()
            } else {
                changed.join(", ")
            }
        ));
    actor.audit(store, entry).await;
    Ok(updated)
}

/// Revokes a key: the gateway refuses it within a second. Audited.
pub async fn revoke(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<KeyRecord> {
    let store = rules.store;
    let key = managed(store, actor, id).await?;
    let revoked = store.revoke_key(id, now_ms()).await?;
    let change = Change::new("key.revoke", "key", id)
        .team(Some(key.team_id))
        .summary(format!("key `{}` revoked", key.name));
    actor.audit(store, change).await;
    Ok(revoked)
}

/// Deletes a key (its usage stays). Audited.
pub async fn delete(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<()> {
    let store = rules.store;
    let key = managed(store, actor, id).await?;
    store.delete_key(id).await?;
    let change = Change::new("key.delete", "key", id)
        .team(Some(key.team_id))
        .summary(format!("key `{}` deleted", key.name));
    actor.audit(store, change).await;
    Ok(())
}

/// A key's secret again: owners and admins of its team, with a master key configured. Audited.
pub async fn reveal(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<String> {
    let store = rules.store;
    let key = visible(store, actor, id).await?;
    actor.require(key.team_id, Role::Admin)?;
    let Some(master) = rules.master_key else {
        return Err(RuleError::NotConfigured {
            code: "no_master_key",
            message: "keys can only be revealed when a master key is configured".into(),
        });
    };
    let Some(sealed) = &key.sealed_key else {
        return Err(RuleError::NotConfigured {
            code: "not_revealable",
            message: format!("key {id} was created without a master key: no copy was kept"),
        });
    };
    // Bound to this key's hash: a copy moved here from another row does not open, and what
    // opens must be this key.
    let secret = master
        .open_text(sealed, SealedRow::ApiKey(&key.key_hash))
        .ok()
        .filter(|secret| KeyHash::of(secret) == key.key_hash)
        .ok_or_else(|| RuleError::NotConfigured {
            code: "not_revealable",
            message: format!(
                "key {id}'s copy was sealed with another master key or for another key"
            ),
        })?;
    let change = Change::new("key.reveal", "key", id)
        .team(Some(key.team_id))
        .summary(format!("key `{}` revealed", key.name));
    actor.audit(store, change).await;
    Ok(secret)
}

/// Most days `idle_days` may name (ten years).
pub const MAX_IDLE_DAYS: u32 = 3650;

/// Which keys a list keeps by their use: every key, those never used, or those unused for some
/// days (never-used ones included). Shared by `GET /api/v1/keys` and `tollgate key list`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UseFilter {
    /// Every key.
    #[default]
    Any,
    /// Keys that have never been used.
    NeverUsed,
    /// Keys not used in the last so many days (never-used keys included).
    IdleFor {
        /// Days, 1 to [`MAX_IDLE_DAYS`].
        days: u32,
    },
}

impl UseFilter {
    /// From the list's `unused` and `idle_days` filters (fields named as the API names them).
    pub fn new(unused: bool, idle_days: Option<u32>) -> RuleResult<Self> {
        match (unused, idle_days) {
            (true, Some(_)) => Err(RuleError::Invalid {
                field: "idle_days",
                message: "idle_days: give unused or idle_days, not both".into(),
            }),
            (true, None) => Ok(Self::NeverUsed),
            (false, Some(days)) if (1..=MAX_IDLE_DAYS).contains(&days) => {
                Ok(Self::IdleFor { days })
            }
            (false, Some(days)) => Err(RuleError::Invalid {
                field: "idle_days",
                message: format!("idle_days: must be 1 to {MAX_IDLE_DAYS} (got {days})"),
            }),
            (false, None) => Ok(Self::Any),
        }
    }

    /// Whether `key` passes, at `now_ms`.
    pub fn keeps(self, key: &KeyRecord, now_ms: i64) -> bool {
        match self {
            Self::Any => true,
            Self::NeverUsed => key.last_used_at_ms.is_none(),
            Self::IdleFor { days } => {
                let since = now_ms - i64::from(days) * tollgate_core::time::DAY_MS;
                key.last_used_at_ms.is_none_or(|used| used < since)
            }
        }
    }
}
