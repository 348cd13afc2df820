//! Users, sessions, personal access tokens, team membership, invitations, the audit log and
//! instance settings: what the console (control plane) stores.
//!
//! Secrets never reach the store in the clear: sessions, tokens and invitations are looked up by
//! the SHA-256 hex of their secret, passwords are Argon2id PHC strings made by the caller.

use async_trait::async_trait;
use serde::Serialize;
use tollgate_core::Role;

use crate::StoreResult;

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// E-mail address, stored lower-cased; unique.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Argon2id PHC string; `None` until an invited user sets a password.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Instance admin: every team, every setting.
    pub is_admin: bool,
    /// When an admin disabled the account; sessions and tokens stop working at once.
    pub disabled_at_ms: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Last successful sign-in, epoch ms.
    pub last_login_at_ms: Option<i64>,
}

/// What a new account is made of.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// E-mail address (the caller lower-cases and validates it).
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: Option<String>,
    /// Instance admin.
    pub is_admin: bool,
}

/// A sign-in session, found by the hash of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 hex of the cookie value.
    pub id_hash: String,
    /// The signed-in user.
    pub user_id: i64,
    /// The CSRF token the client must echo in `X-CSRF-Token` on writes (not a credential alone).
    pub csrf_token: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms.
    pub expires_at_ms: i64,
    /// Sign-out or revocation time, epoch ms.
    pub revoked_at_ms: Option<i64>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
}

/// A personal access token (`tgp_…`) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessToken {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Name given at creation.
    pub name: String,
    /// SHA-256 hex of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// Display prefix, e.g. `tgp_AbCd…wxyz`.
    pub prefix: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at_ms: Option<i64>,
    /// Last use, epoch ms.
    pub last_used_at_ms: Option<i64>,
}

/// What a new personal access token is made of.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    /// Owner.
    pub user_id: i64,
    /// Name.
    pub name: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// Display prefix.
    pub prefix: String,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
}

/// One user's role in one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// Team.
    pub team_id: i64,
    /// Team name.
    pub team_name: String,
    /// User.
    pub user_id: i64,
    /// User's e-mail.
    pub email: String,
    /// User's display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// When the user joined, epoch ms.
    pub joined_at_ms: i64,
}

/// An invitation to join a team, redeemed once through a link carrying its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    /// Id.
    pub id: i64,
    /// SHA-256 hex of the secret in the link.
    #[serde(skip)]
    pub token_hash: String,
    /// Invited address (lower-cased).
    pub email: String,
    /// Team to join.
    pub team_id: i64,
    /// Team name.
    pub team_name: String,
    /// Role on joining.
    pub role: Role,
    /// Inviting user.
    pub invited_by: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms.
    pub expires_at_ms: i64,
    /// When it was redeemed.
    pub accepted_at_ms: Option<i64>,
}

/// What a new invitation is made of.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    /// SHA-256 hex of the secret.
    pub token_hash: String,
    /// Invited address (lower-cased).
    pub email: String,
    /// Team.
    pub team_id: i64,
    /// Role.
    pub role: Role,
    /// Inviting user.
    pub invited_by: Option<i64>,
    /// Expiry, epoch ms.
    pub expires_at_ms: i64,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Id (grows with time).
    pub id: i64,
    /// When, epoch ms.
    pub ts_ms: i64,
    /// Who: `user:<email>`, `token:<id>`, `cli:<os-user>`, `system`, or the e-mail tried at a failed sign-in.
    pub actor: String,
    /// The acting user, when there was one.
    pub actor_user_id: Option<i64>,
    /// What happened, e.g. `key.create`, `auth.login_failed`.
    pub action: String,
    /// Kind of thing changed, e.g. `key`, `route`, `team`, `user`, `setting`.
    pub entity_type: String,
    /// Its id or name.
    pub entity_id: Option<String>,
    /// One human line.
    pub summary: String,
    /// Client address.
    pub ip: Option<String>,
    /// Team the entity belongs to, for team-scoped reading.
    pub team_id: Option<i64>,
}

/// What a new audit entry is made of; the store sets id and time.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Who.
    pub actor: String,
    /// The acting user.
    pub actor_user_id: Option<i64>,
    /// What happened.
    pub action: String,
    /// Kind of thing changed.
    pub entity_type: String,
    /// Its id or name.
    pub entity_id: Option<String>,
    /// One human line.
    pub summary: String,
    /// Client address.
    pub ip: Option<String>,
    /// Team concerned.
    pub team_id: Option<i64>,
}

/// Which audit entries to read. Every filter is optional; they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action.
    pub action: Option<String>,
    /// Exact entity type.
    pub entity_type: Option<String>,
    /// Exact actor.
    pub actor: Option<String>,
    /// `ts >= from_ms`.
    pub from_ms: Option<i64>,
    /// `ts < to_ms`.
    pub to_ms: Option<i64>,
    /// Only entries whose team is one of these, or whose acting user is `or_actor_user_id`;
    /// `None` for every entry (instance admins).
    pub team_ids: Option<Vec<i64>>,
    /// With `team_ids`: also the entries this user made.
    pub or_actor_user_id: Option<i64>,
}

/// Users.
#[async_trait]
pub trait UserQueries {
    /// Stores a new user; `Conflict` if the e-mail is taken.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// The user with this id.
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// The user with this (lower-cased) e-mail.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Every user, by e-mail.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Number of users.
    async fn count_users(&self) -> StoreResult<i64>;
    /// Replaces the password hash; `NotFound` if no such user.
    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()>;
    /// Disables (`Some(time)`) or re-enables (`None`) the user; `NotFound` if no such user.
    async fn set_user_disabled(
        &self,
        user_id: i64,
        disabled_at_ms: Option<i64>,
    ) -> StoreResult<User>;
    /// Grants or takes instance admin; `NotFound` if no such user.
    async fn set_user_admin(&self, user_id: i64, is_admin: bool) -> StoreResult<User>;
    /// Updates the display name; `NotFound` if no such user.
    async fn set_display_name(&self, user_id: i64, display_name: &str) -> StoreResult<User>;
    /// Records a successful sign-in.
    async fn touch_login(&self, user_id: i64, at_ms: i64) -> StoreResult<()>;
}

/// Sign-in sessions.
#[async_trait]
pub trait SessionQueries {
    /// Stores a new session.
    async fn create_session(&self, session: SessionRecord) -> StoreResult<()>;
    /// The session with this hash, revoked and expired ones included.
    async fn session_by_hash(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Revokes one session (sign-out). Revoking twice keeps the first time.
    async fn revoke_session(&self, id_hash: &str, at_ms: i64) -> StoreResult<()>;
    /// Revokes every open session of a user (password change, disabling); returns how many.
    async fn revoke_user_sessions(&self, user_id: i64, at_ms: i64) -> StoreResult<u64>;
    /// Deletes sessions that expired before `before_ms`; returns how many.
    async fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64>;
}

/// Personal access tokens.
#[async_trait]
pub trait AccessTokenQueries {
    /// Stores a new token; `Conflict` if the hash exists, `NotFound` if the user does not.
    async fn create_access_token(&self, token: NewAccessToken) -> StoreResult<AccessToken>;
    /// The token with this hash, revoked and expired ones included.
    async fn access_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<AccessToken>>;
    /// A user's tokens, newest first.
    async fn list_access_tokens(&self, user_id: i64) -> StoreResult<Vec<AccessToken>>;
    /// Revokes a token of this user; `NotFound` if the user has no such token.
    async fn revoke_access_token(
        &self,
        user_id: i64,
        id: i64,
        at_ms: i64,
    ) -> StoreResult<AccessToken>;
    /// Moves `last_used_at` forward (never back).
    async fn touch_access_token(&self, id: i64, at_ms: i64) -> StoreResult<()>;
}

/// Team membership.
#[async_trait]
pub trait MemberQueries {
    /// Adds the user to the team with `role`, or changes their role. `NotFound` if the team or user
    /// does not exist; `Conflict` if it would leave the team without an owner. Atomic.
    async fn set_member(&self, team_id: i64, user_id: i64, role: Role) -> StoreResult<Membership>;
    /// Removes the user from the team; `NotFound` if not a member; `Conflict` if they are its last owner. Atomic.
    async fn remove_member(&self, team_id: i64, user_id: i64) -> StoreResult<()>;
    /// The team's members, by e-mail.
    async fn list_members(&self, team_id: i64) -> StoreResult<Vec<Membership>>;
    /// The user's memberships, by team name.
    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>>;
}

/// Invitations.
#[async_trait]
pub trait InvitationQueries {
    /// Stores a new invitation; `NotFound` if the team does not exist.
    async fn create_invitation(&self, invitation: NewInvitation) -> StoreResult<Invitation>;
    /// The invitation with this hash, accepted and expired ones included.
    async fn invitation_by_hash(&self, token_hash: &str) -> StoreResult<Option<Invitation>>;
    /// Invitations of the team (all teams when `None`), newest first.
    async fn list_invitations(&self, team_id: Option<i64>) -> StoreResult<Vec<Invitation>>;
    /// Marks the invitation accepted if it is not yet; returns whether this call did (exactly one
    /// caller wins a race).
    async fn mark_invitation_accepted(&self, id: i64, at_ms: i64) -> StoreResult<bool>;
    /// Deletes an invitation; `NotFound` if none.
    async fn delete_invitation(&self, id: i64) -> StoreResult<()>;
}

/// The audit log: append-only.
#[async_trait]
pub trait AuditQueries {
    /// Appends one entry at the current time.
    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry>;
    /// Matching entries, newest first, `limit` from `offset`, and the number matching in all.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditEntry>, i64)>;
}

/// Instance settings: small named values (JSON text), e.g. the sealed ingest secret, quotas.
#[async_trait]
pub trait SettingQueries {
    /// The value of a setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Sets (or replaces) a setting.
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Deletes a setting; nothing happens when it is not set.
    async fn delete_setting(&self, name: &str) -> StoreResult<()>;
}
