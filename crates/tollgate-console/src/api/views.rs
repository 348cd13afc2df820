//! What the API returns: views of stored records that never carry secrets, and small shared
//! parsing helpers. Times are epoch milliseconds.

use serde::{Deserialize, Serialize};
use tollgate_core::{Role, RouteKind};
use tollgate_store::{KeyRecord, Membership, RouteRecord, Team, User};
use utoipa::ToSchema;

pub use crate::rules::MAX_TIME_MS;

/// A user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// E-mail.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Instance admin.
    pub is_admin: bool,
    /// Disabled since, epoch ms.
    pub disabled_at: Option<i64>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Last sign-in, epoch ms.
    pub last_login_at: Option<i64>,
    /// Whether a password is set (false for invited users who have not accepted yet).
    pub has_password: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            is_admin: u.is_admin,
            disabled_at: u.disabled_at_ms,
            created_at: u.created_at_ms,
            last_login_at: u.last_login_at_ms,
            has_password: u.password_hash.is_some(),
        }
    }
}

/// A user's role in a team.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    /// Team id.
    pub team_id: i64,
    /// Team name.
    pub team_name: String,
    /// User id.
    pub user_id: i64,
    /// User e-mail.
    pub email: String,
    /// User display name.
    pub display_name: String,
    /// The role in the team.
    pub role: Role,
    /// Joined, epoch ms.
    pub joined_at: i64,
}

impl From<&Membership> for MembershipView {
    fn from(m: &Membership) -> Self {
        Self {
            team_id: m.team_id,
            team_name: m.team_name.clone(),
            user_id: m.user_id,
            email: m.email.clone(),
            display_name: m.display_name.clone(),
            role: m.role,
            joined_at: m.joined_at_ms,
        }
    }
}

/// A team.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TeamView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Created, epoch ms.
    pub created_at: i64,
    /// The caller's role in it (instance admins: `owner`).
    pub role: Option<Role>,
}

impl TeamView {
    /// The view of `team` for a caller with `role`.
    pub fn of(team: &Team, role: Option<Role>) -> Self {
        Self {
            id: team.id,
            name: team.name.clone(),
            created_at: team.created_at_ms,
            role,
        }
    }
}

/// An API key as listed: masked, never the secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Id.
    pub id: i64,
    /// Team id.
    pub team_id: i64,
    /// Team name.
    pub team: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Masked key, e.g. `ntk_AbCd…wxyz`.
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// Creator.
    pub created_by: Option<String>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Revoked, epoch ms.
    pub revoked_at: Option<i64>,
    /// Last use, epoch ms; null is "never used".
    pub last_used_at: Option<i64>,
    /// "never used" or the last use as an RFC 3339 time, for display.
    pub last_used: String,
    /// Allowed route ids; null for all of the team's and shared routes.
    pub route_ids: Option<Vec<i64>>,
    /// Whether a copy is kept that owners and admins may reveal.
    pub revealable: bool,
    /// Models the key may call on LLM routes (glob patterns); null for every model.
    pub models: Option<Vec<String>>,
}

/// `active`, `expired` or `revoked`.
pub fn key_status(key: &KeyRecord, now: i64) -> &'static str {
    if key.revoked_at_ms.is_some() {
        "revoked"
    } else if key.expires_at_ms.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    }
}

impl KeyView {
    /// The same view with the key's model allow-list.
    pub fn with_models(mut self, models: &std::collections::HashMap<i64, Vec<String>>) -> Self {
        self.models = models.get(&self.id).cloned();
        self
    }

    /// The view of `key` at time `now`.
    pub fn of(key: &KeyRecord, now: i64) -> Self {
        Self {
            id: key.id,
            team_id: key.team_id,
            team: key.team_name.clone(),
            name: key.name.clone(),
            description: key.description.clone(),
            prefix: key.prefix.clone(),
            status: key_status(key, now).to_owned(),
            created_by: key.created_by.clone(),
            created_at: key.created_at_ms,
            expires_at: key.expires_at_ms,
            revoked_at: key.revoked_at_ms,
            last_used_at: key.last_used_at_ms,
            last_used: key
                .last_used_at_ms
                .map_or_else(|| "never used".to_owned(), tollgate_core::time::format_ms),
            route_ids: key.route_ids.clone(),
            revealable: key.sealed_key.is_some(),
            models: None,
        }
    }
}

/// A route. The upstream credential is write-only: only whether one is set is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RouteView {
    /// Id.
    pub id: i64,
    /// Owning team; null when shared by every team.
    pub team_id: Option<i64>,
    /// Name.
    pub name: String,
    /// Path prefix.
    pub prefix: String,
    /// Upstream base URL.
    pub upstream_url: String,
    /// What the gateway understands of the route's traffic.
    pub kind: RouteKind,
    /// Whether the prefix is removed before forwarding.
    pub strip_prefix: bool,
    /// Connect timeout, ms.
    pub connect_timeout_ms: i64,
    /// Response and idle timeout, ms.
    pub timeout_ms: i64,
    /// Enabled.
    pub enabled: bool,
    /// Whether an upstream credential is stored.
    pub has_credential: bool,
    /// The header the credential is sent in, when not the kind's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_header: Option<tollgate_core::llm::CredentialHeader>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Updated, epoch ms.
    pub updated_at: i64,
}

impl From<&RouteRecord> for RouteView {
    fn from(r: &RouteRecord) -> Self {
        Self {
            id: r.id,
            team_id: r.team_id,
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            upstream_url: r.upstream_url.clone(),
            kind: r.kind,
            strip_prefix: r.strip_prefix,
            connect_timeout_ms: r.connect_timeout_ms,
            timeout_ms: r.timeout_ms,
            enabled: r.enabled,
            has_credential: r.sealed_credential.is_some(),
            credential_header: r.credential_header.clone(),
            created_at: r.created_at_ms,
            updated_at: r.updated_at_ms,
        }
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Matching items in all.
    pub total: i64,
    /// 1-based page number.
    pub page: i64,
    /// Items per page.
    pub per_page: i64,
}
