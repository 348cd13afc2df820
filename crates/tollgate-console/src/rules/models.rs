//! Model routing: upstream targets (provider, base URL, write-only credential and how it is sent)
//! and models (name or wildcard, pool, aliases, fallbacks). Instance admins manage both; every
//! signed-in user may read the models (names, pools, aliases), only instance admins the targets.
//! The cross-checks (unique names and aliases, pools naming existing targets, fallbacks without
//! loops) are `tollgate_core::llm::check_model`; this file applies them and audits each change.

use std::collections::{BTreeMap, HashSet};

use tollgate_core::crypto::SealedRow;
use tollgate_core::llm::{
    self, CredentialHeader, ModelSettings, PoolMember, Provider, Strategy, TargetSettings,
};
use tollgate_core::route;
use tollgate_core::route_policy::{
    self, CredentialPlan, CredentialRequest, CurrentUpstream, UpstreamChange,
};
use tollgate_store::{ModelRecord, NewTarget, StoreError, TargetRecord, TargetUpdate};

use super::{Actor, RuleError, RuleResult, Rules};
use crate::audit::Change;

/// A target to create.
#[derive(Debug, Clone)]
pub struct TargetDraft {
    /// Unique name.
    pub name: String,
    /// Which API it speaks.
    pub provider: Provider,
    /// Base URL; `None`: the provider's public one (needed for azure and openai_compatible).
    pub base_url: Option<String>,
    /// The upstream credential (sealed; needs a master key).
    pub credential: Option<String>,
    /// Header name for the credential; `None`: the provider's.
    pub credential_header: Option<String>,
    /// Header value with `{key}`; `None`: `{key}` (or the provider's, without a header name).
    pub credential_format: Option<String>,
    /// Query parameters added to every call.
    pub query: BTreeMap<String, String>,
    /// Azure deployment.
    pub deployment: Option<String>,
    /// Weight in its pools (default 1).
    pub weight: Option<u32>,
    /// Requests per minute ceiling.
    pub rpm: Option<u32>,
}

/// A change to a target; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TargetChange {
    /// New base URL (another host drops the credential unless this change sets one).
    pub base_url: Option<String>,
    /// New credential; `Some(None)` removes it.
    pub credential: Option<Option<String>>,
    /// New credential header (name, format); `Some(None)`: back to the provider's.
    pub credential_header: Option<Option<(String, Option<String>)>>,
    /// New query parameters (replacing all).
    pub query: Option<BTreeMap<String, String>>,
    /// New deployment.
    pub deployment: Option<Option<String>>,
    /// New weight.
    pub weight: Option<u32>,
    /// New ceiling; `Some(None)` removes it.
    pub rpm: Option<Option<u32>>,
}

/// A model to create.
#[derive(Debug, Clone)]
pub struct ModelDraft {
    /// Unique name or wildcard.
    pub name: String,
    /// Pool, aliases, fallbacks, strategy.
    pub settings: ModelSettings,
}

/// A change to a model; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ModelChange {
    /// New pool.
    pub pool: Option<Vec<PoolMember>>,
    /// New aliases.
    pub aliases: Option<Vec<String>>,
    /// New fallbacks.
    pub fallbacks: Option<Vec<String>>,
    /// New strategy.
    pub strategy: Option<Strategy>,
}

/// A target's settings as stored; a row that does not parse is a store fault.
pub fn target_settings(record: &TargetRecord) -> RuleResult<TargetSettings> {
    serde_json::from_str(&record.settings).map_err(|e| {
        RuleError::Store(StoreError::Internal(format!(
            "target `{}` has unreadable settings: {e}",
            record.name
        )))
    })
}

/// A model's settings as stored.
pub fn model_settings(record: &ModelRecord) -> RuleResult<ModelSettings> {
    serde_json::from_str(&record.settings).map_err(|e| {
        RuleError::Store(StoreError::Internal(format!(
            "model `{}` has unreadable settings: {e}",
            record.name
        )))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> RuleResult<String> {
    serde_json::to_string(value)
        .map_err(|e| RuleError::Store(StoreError::Internal(format!("settings: {e}"))))
}

/// The base URL as stored: the given one (validated, without a trailing `/`) or the provider's.
fn check_base_url(provider: Provider, url: Option<&str>) -> RuleResult<String> {
    let url = match url {
        Some(url) => url.trim_end_matches('/'),
        None => provider.default_base_url().ok_or_else(|| {
            RuleError::invalid(
                "base_url",
                format!("a {provider} target needs its base_url"),
            )
        })?,
    };
    route::validate_upstream(url).map_err(|e| RuleError::invalid("base_url", e))?;
    Ok(url.to_owned())
}

fn credential_header(name: &str, format: Option<&str>) -> RuleResult<CredentialHeader> {
    CredentialHeader::new(name, format.unwrap_or(llm::KEY_PLACEHOLDER))
        .map_err(|e| RuleError::invalid("credential_header", e))
}

fn check_settings(provider: Provider, settings: &TargetSettings) -> RuleResult<()> {
    settings
        .check(provider)
        .map_err(|(field, message)| RuleError::invalid(field, message))
}

fn seal(rules: &Rules<'_>, id: i64, secret: &str) -> RuleResult<Vec<u8>> {
    Ok(sealer(rules, secret)?.seal(secret.as_bytes(), SealedRow::TargetCredential(id)))
}

fn sealer<'a>(rules: &Rules<'a>, secret: &str) -> RuleResult<&'a tollgate_core::crypto::MasterKey> {
    if secret.is_empty() || secret.len() > 4096 {
        return Err(RuleError::invalid(
            "credential",
            "the credential must be 1 to 4096 bytes",
        ));
    }
    rules.master_key.ok_or_else(|| RuleError::NotConfigured {
        code: "no_master_key",
        message: "storing an upstream credential needs a master key (TOLLGATE_MASTER_KEY)".into(),
    })
}

/// Every target (instance admins).
pub async fn list_targets(rules: &Rules<'_>, actor: &Actor<'_>) -> RuleResult<Vec<TargetRecord>> {
    actor.require_admin()?;
    Ok(rules.store.list_targets().await?)
}

/// The target with this id (instance admins).
pub async fn target(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<TargetRecord> {
    actor.require_admin()?;
    rules
        .store
        .list_targets()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| RuleError::NotFound(format!("target {id} does not exist")))
}

/// Creates a target (instance admins), audited.
pub async fn create_target(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: TargetDraft,
) -> RuleResult<TargetRecord> {
    actor.require_admin()?;
    route::validate_name(&draft.name).map_err(|e| RuleError::invalid("name", e))?;
    let base_url = check_base_url(draft.provider, draft.base_url.as_deref())?;
    let header = match (&draft.credential_header, &draft.credential_format) {
        (Some(name), format) => Some(credential_header(name, format.as_deref())?),
        (None, Some(_)) => {
            return Err(RuleError::invalid(
                "credential_format",
                "credential_format needs credential_header (the header it is sent in)",
            ));
        }
        (None, None) => None,
    };
    let settings = TargetSettings {
        credential_header: header,
        query: draft.query,
        deployment: draft.deployment,
        weight: draft.weight.unwrap_or(1),
        rpm: draft.rpm,
    };
    check_settings(draft.provider, &settings)?;
    if let Some(secret) = draft.credential.as_deref() {
        sealer(rules, secret)?;
    }
    let store = rules.store;
    let mut record = store
        .create_target(NewTarget {
            name: draft.name,
            provider: draft.provider,
            base_url,
            settings: to_json(&settings)?,
        })
        .await?;
    if let Some(secret) = draft.credential.as_deref() {
        let sealed = seal(rules, record.id, secret)?;
        record = store
            .update_target(
                record.id,
                TargetUpdate {
                    sealed_credential: Some(Some(sealed)),
                    ..TargetUpdate::default()
                },
            )
            .await?;
    }
    let change = Change::new("target.create", "target", record.id).summary(format!(
        "target `{}` ({}) → {}",
        record.name, record.provider, record.base_url
    ));
    actor.audit(store, change).await;
    Ok(record)
}

/// Changes a target (instance admins), audited. Moving it to another origin drops its credential
/// unless the same change sets one, as for routes.
pub async fn update_target(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    change: TargetChange,
) -> RuleResult<TargetRecord> {
    let current = target(rules, actor, id).await?;
    let mut settings = target_settings(&current)?;
    let base_url = change
        .base_url
        .as_deref()
        .map(|u| check_base_url(current.provider, Some(u)))
        .transpose()?;
    if let Some(header) = change.credential_header {
        settings.credential_header = header
            .map(|(name, format)| credential_header(&name, format.as_deref()))
            .transpose()?;
    }
    if let Some(query) = change.query {
        settings.query = query;
    }
    if let Some(deployment) = change.deployment {
        settings.deployment = deployment;
    }
    if let Some(weight) = change.weight {
        settings.weight = weight;
    }
    if let Some(rpm) = change.rpm {
        settings.rpm = rpm;
    }
    check_settings(current.provider, &settings)?;
    let request = match &change.credential {
        None => CredentialRequest::Unchanged,
        Some(Some(_)) => CredentialRequest::Set,
        Some(None) => CredentialRequest::Remove,
    };
    let plan = route_policy::plan_upstream_change(
        Some(CurrentUpstream {
            upstream_url: &current.base_url,
            has_credential: current.sealed_credential.is_some(),
        }),
        UpstreamChange {
            upstream_url: base_url.as_deref(),
            credential: request,
        },
        true,
    )
    .map_err(|e| RuleError::invalid("base_url", e.to_string()))?;
    let sealed_credential = match (plan.credential, &change.credential) {
        (CredentialPlan::Set, Some(Some(secret))) => Some(Some(seal(rules, id, secret)?)),
        (CredentialPlan::Clear, _) => Some(None),
        _ => None,
    };
    let store = rules.store;
    let updated = store
        .update_target(
            id,
            TargetUpdate {
                base_url,
                settings: Some(to_json(&settings)?),
                sealed_credential,
            },
        )
        .await?;
    let summary = if plan.credential_dropped_by_move {
        format!(
            "target `{}` changed; its credential was removed because the base URL moved to another host",
            updated.name
        )
    } else {
        format!("target `{}` changed", updated.name)
    };
    actor
        .audit(
            store,
            Change::new("target.update", "target", id).summary(summary),
        )
        .await;
    Ok(updated)
}

/// Deletes a target (instance admins) that no model's pool lists, audited.
pub async fn delete_target(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
) -> RuleResult<TargetRecord> {
    let current = target(rules, actor, id).await?;
    let store = rules.store;
    for model in store.list_models().await? {
        if model_settings(&model)?
            .pool
            .iter()
            .any(|m| m.target == current.name)
        {
            return Err(RuleError::ConflictWith {
                code: "target_in_use",
                message: format!(
                    "target `{}` serves model `{}`; take it out of that model's pool first",
                    current.name, model.name
                ),
            });
        }
    }
    store.delete_target(id).await?;
    actor
        .audit(
            store,
            Change::new("target.delete", "target", id)
                .summary(format!("target `{}` deleted", current.name)),
        )
        .await;
    Ok(current)
}

/// Every model (any signed-in user: names, pools and aliases hold no secret).
pub async fn list_models(rules: &Rules<'_>) -> RuleResult<Vec<ModelRecord>> {
    Ok(rules.store.list_models().await?)
}

/// The model with this id.
pub async fn model(rules: &Rules<'_>, id: i64) -> RuleResult<ModelRecord> {
    rules
        .store
        .list_models()
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| RuleError::NotFound(format!("model {id} does not exist")))
}

/// Checks `settings` for model `name` against every other model and the targets.
async fn check_against_catalogue(
    rules: &Rules<'_>,
    name: &str,
    settings: &ModelSettings,
    except: Option<i64>,
) -> RuleResult<()> {
    let models = rules.store.list_models().await?;
    let others = models
        .iter()
        .filter(|m| Some(m.id) != except)
        .map(|m| Ok((m.name.as_str(), model_settings(m)?)))
        .collect::<RuleResult<Vec<_>>>()?;
    let targets = rules.store.list_targets().await?;
    let target_names: HashSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    llm::check_model(
        name,
        settings,
        others.iter().map(|(n, s)| (*n, s)),
        &target_names,
    )
    .map_err(|e| RuleError::invalid(e.field, e.message))
}

/// Creates a model (instance admins), audited.
pub async fn create_model(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: ModelDraft,
) -> RuleResult<ModelRecord> {
    actor.require_admin()?;
    check_against_catalogue(rules, &draft.name, &draft.settings, None).await?;
    let store = rules.store;
    let record = store
        .create_model(&draft.name, &to_json(&draft.settings)?)
        .await?;
    let change = Change::new("model.create", "model", record.id).summary(format!(
        "model `{}` served by {}",
        record.name,
        draft
            .settings
            .pool
            .iter()
            .map(|m| m.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    actor.audit(store, change).await;
    Ok(record)
}

/// Changes a model (instance admins), audited.
pub async fn update_model(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    change: ModelChange,
) -> RuleResult<ModelRecord> {
    actor.require_admin()?;
    let current = model(rules, id).await?;
    let mut settings = model_settings(&current)?;
    if let Some(pool) = change.pool {
        settings.pool = pool;
    }
    if let Some(aliases) = change.aliases {
        settings.aliases = aliases;
    }
    if let Some(fallbacks) = change.fallbacks {
        settings.fallbacks = fallbacks;
    }
    if let Some(strategy) = change.strategy {
        settings.strategy = strategy;
    }
    check_against_catalogue(rules, &current.name, &settings, Some(id)).await?;
    let store = rules.store;
    let updated = store.update_model(id, &to_json(&settings)?).await?;
    actor
        .audit(
            store,
            Change::new("model.update", "model", id)
                .summary(format!("model `{}` changed", updated.name)),
        )
        .await;
    Ok(updated)
}

/// Deletes a model (instance admins) that no other model falls back to, audited.
pub async fn delete_model(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
) -> RuleResult<ModelRecord> {
    actor.require_admin()?;
    let current = model(rules, id).await?;
    let store = rules.store;
    for other in store.list_models().await? {
        if other.id != id && model_settings(&other)?.fallbacks.contains(&current.name) {
            return Err(RuleError::ConflictWith {
                code: "model_in_use",
                message: format!(
                    "model `{}` falls back to `{}`; remove it from that model's fallbacks first",
                    other.name, current.name
                ),
            });
        }
    }
    store.delete_model(id).await?;
    actor
        .audit(
            store,
            Change::new("model.delete", "model", id)
                .summary(format!("model `{}` deleted", current.name)),
        )
        .await;
    Ok(current)
}
