//! What an edge (a Cloudflare Worker, say) needs to validate keys itself, and the tokens it
//! reads it with (migration `0009_edge`).
//!
//! The change feed rides on the store revision: every change to a key, its route list, its model
//! list or a route takes the next revision under the revision row's lock and records it in
//! `edge_changes`, so revisions are committed in order and a reader who has seen revision R has
//! seen every change up to R. Changes older than `retention.edge_changes` are pruned (migration
//! `0010_edge_feed`); a reader behind the pruned revision takes a new snapshot.

use async_trait::async_trait;
use serde::Serialize;
use tollgate_core::KeyHash;

use crate::StoreResult;

/// An edge access token as stored: never the secret, only its hash and display prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeToken {
    /// Id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// SHA-256 hex of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// Display prefix, e.g. `tge_AbCd…wxyz`.
    pub prefix: String,
    /// Who created it (`cli:<user>`, a user's e-mail).
    pub created_by: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at_ms: Option<i64>,
    /// Last use, epoch ms.
    pub last_used_at_ms: Option<i64>,
}

/// What a new edge token is made of.
#[derive(Debug, Clone)]
pub struct NewEdgeToken {
    /// Name.
    pub name: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// Display prefix.
    pub prefix: String,
    /// Creator.
    pub created_by: String,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
}

/// A key as an edge sees it: what decides a call, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeKey {
    /// Id.
    pub id: i64,
    /// Owning team.
    pub team_id: i64,
    /// SHA-256 of the key.
    pub key_hash: KeyHash,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at_ms: Option<i64>,
    /// The routes it may call; `None` is every route of its team plus shared routes.
    pub route_ids: Option<Vec<i64>>,
    /// Its model allow-list as stored (comma-separated glob patterns); `None` allows every model.
    pub models: Option<String>,
}

/// What a change of the feed is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeEntity {
    /// A key, its route list or its model list.
    Key,
    /// A route.
    Route,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeChange {
    /// The store revision the change took.
    pub revision: i64,
    /// What changed.
    pub entity: EdgeEntity,
    /// The key's or route's id.
    pub entity_id: i64,
    /// For a key row's own change, its hash (kept so that a deleted key can be named).
    pub key_hash: Option<String>,
}

/// Edge tokens, and the key data and change feed they read.
#[async_trait]
pub trait EdgeQueries {
    /// Stores a new edge token; `Conflict` if the hash exists.
    async fn create_edge_token(&self, token: NewEdgeToken) -> StoreResult<EdgeToken>;
    /// The token with this hash, revoked and expired ones included.
    async fn edge_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<EdgeToken>>;
    /// Every edge token, newest first.
    async fn list_edge_tokens(&self) -> StoreResult<Vec<EdgeToken>>;
    /// Revokes a token (a second revocation keeps the first time); `NotFound` if there is none.
    async fn revoke_edge_token(&self, id: i64, at_ms: i64) -> StoreResult<EdgeToken>;
    /// Moves `last_used_at` forward (never back).
    async fn touch_edge_token(&self, id: i64, at_ms: i64) -> StoreResult<()>;
    /// Up to `limit` keys with an id above `after_id`, by id: a snapshot is read page by page.
    async fn edge_keys_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<EdgeKey>>;
    /// The keys among `ids` that exist, by id.
    async fn edge_keys_by_id(&self, ids: &[i64]) -> StoreResult<Vec<EdgeKey>>;
    /// Up to `limit` changes with a revision above `revision`, oldest first.
    async fn edge_changes_since(&self, revision: i64, limit: i64) -> StoreResult<Vec<EdgeChange>>;
    /// Drops the changes recorded before `before_ms` (up to the newest such revision), `batch`
    /// rows per delete, after moving [`EdgeQueries::edge_feed_pruned_through`] to that revision.
    /// Returns how many were dropped.
    async fn prune_edge_changes(&self, before_ms: i64, batch: i64) -> StoreResult<u64>;
    /// The highest revision whose changes may have been pruned (0 when none was): the feed cannot
    /// answer `since` below it.
    async fn edge_feed_pruned_through(&self) -> StoreResult<i64>;
}
