//! Model routing: upstream targets and the models they serve. The store keeps their settings as
//! opaque JSON (`settings`); `tollgate_core::llm` owns its meaning.

use async_trait::async_trait;
use serde::Serialize;
use tollgate_core::llm::Provider;

use crate::StoreResult;

/// An upstream target as stored; the credential only sealed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TargetRecord {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Which API it speaks.
    pub provider: Provider,
    /// Base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// `tollgate_core::llm::TargetSettings` as JSON.
    pub settings: String,
    /// The credential sealed with the master key; never returned by any API.
    #[serde(skip)]
    pub sealed_credential: Option<Vec<u8>>,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Last change, epoch ms.
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for TargetRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("settings", &self.settings)
            .field(
                "sealed_credential",
                &self.sealed_credential.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// A target to create (its credential is sealed once it has an id, by an update).
#[derive(Debug, Clone)]
pub struct NewTarget {
    /// Unique name.
    pub name: String,
    /// Which API it speaks.
    pub provider: Provider,
    /// Base URL.
    pub base_url: String,
    /// Settings as JSON.
    pub settings: String,
}

/// A change to a target; `None` fields stay as they are.
#[derive(Clone, Default)]
pub struct TargetUpdate {
    /// New base URL.
    pub base_url: Option<String>,
    /// New settings as JSON.
    pub settings: Option<String>,
    /// New sealed credential: `Some(None)` removes it.
    pub sealed_credential: Option<Option<Vec<u8>>>,
}

/// A model as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRecord {
    /// Id.
    pub id: i64,
    /// Unique name or wildcard, e.g. `gpt-4o` or `claude-*`.
    pub name: String,
    /// `tollgate_core::llm::ModelSettings` as JSON.
    pub settings: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Last change, epoch ms.
    pub updated_at_ms: i64,
}

/// Targets and models. Every change bumps the store revision, so gateways reload them.
#[async_trait]
pub trait ModelQueries {
    /// Stores a new target; `Conflict` if the name is taken.
    async fn create_target(&self, target: NewTarget) -> StoreResult<TargetRecord>;
    /// Every target, by name.
    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>>;
    /// Applies `update`; `NotFound` if no such target.
    async fn update_target(&self, id: i64, update: TargetUpdate) -> StoreResult<TargetRecord>;
    /// Deletes a target; `NotFound` if none.
    async fn delete_target(&self, id: i64) -> StoreResult<()>;
    /// Stores a new model; `Conflict` if the name is taken.
    async fn create_model(&self, name: &str, settings: &str) -> StoreResult<ModelRecord>;
    /// Every model, by name.
    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>>;
    /// Replaces a model's settings; `NotFound` if no such model.
    async fn update_model(&self, id: i64, settings: &str) -> StoreResult<ModelRecord>;
    /// Deletes a model; `NotFound` if none.
    async fn delete_model(&self, id: i64) -> StoreResult<()>;
}
