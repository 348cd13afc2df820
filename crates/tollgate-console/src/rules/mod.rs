//! The business rules of the control plane, once: validation, defaults, who may, and the audit
//! entry of every change to keys, routes, teams, members, users, tokens and counters. The console's
//! HTTP handlers and the command line both call these functions (parse → rule → map), so the two
//! front ends cannot drift apart. Nothing here knows about HTTP: errors are [`RuleError`]s, which
//! the console maps to statuses (`error.rs`) and the binary to one line naming the flag.

pub mod alerts;
pub mod counters;
pub mod edge;
pub mod keys;
pub mod limits;
pub mod members;
pub mod models;
pub mod prices;
pub mod routes;
pub mod teams;
pub mod tokens;
pub mod users;

#[cfg(test)]
mod tests;

use tollgate_core::Role;
use tollgate_core::crypto::MasterKey;
use tollgate_core::time::parse_duration;
use tollgate_core::upstream::UpstreamAllowlist;
use tollgate_store::{Store, StoreError};

use crate::audit::{self, Change};
use crate::auth::Caller;

/// Latest time accepted anywhere: 9999-12-31.
pub const MAX_TIME_MS: i64 = 253_402_300_799_000;

/// Why a rule refused a change (or the store failed under it). A refused change changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A field's value is not acceptable.
    #[error("{message}")]
    Invalid {
        /// The offending field, as the API names it.
        field: &'static str,
        /// One human line.
        message: String,
    },
    /// The actor may see the thing but not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not visible to the actor.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the current state (the default team, a member already in).
    #[error("{0}")]
    Conflict(String),
    /// A conflict with its own machine-readable code, e.g. `prefix_conflict`.
    #[error("{message}")]
    ConflictWith {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
    },
    /// The change needs configuration that is missing, e.g. a master key.
    #[error("{message}")]
    NotConfigured {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RuleError {
    /// A refused value of `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Result of a rule.
pub type RuleResult<T> = Result<T, RuleError>;

/// Who is acting, which decides what they may do and how the change is audited.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A console user, signed in with a session or a personal access token: their team roles
    /// apply (instance admins act as owners everywhere).
    Console(&'a Caller),
    /// The local operator at the command line: holds the store itself, so acts as an instance
    /// admin; audited as `cli:<os-user>`.
    Operator(&'a str),
}

impl Actor<'_> {
    /// The effective role in a team; `None` when the team is not visible to the actor.
    pub fn role_in(&self, team_id: i64) -> Option<Role> {
        match self {
            Actor::Console(caller) => caller.role_in(team_id),
            Actor::Operator(_) => Some(Role::Owner),
        }
    }

    /// Whether the actor is an instance admin.
    pub fn is_instance_admin(&self) -> bool {
        match self {
            Actor::Console(caller) => caller.user.is_admin,
            Actor::Operator(_) => true,
        }
    }

    /// Teams the actor belongs to; `None` for instance admins (all).
    pub fn visible_teams(&self) -> Option<Vec<i64>> {
        match self {
            Actor::Console(caller) => caller.visible_teams(),
            Actor::Operator(_) => None,
        }
    }

    /// The console user acting, if any.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Actor::Console(caller) => Some(caller.user.id),
            Actor::Operator(_) => None,
        }
    }

    /// Requires at least `role` in `team_id`; a team the actor cannot see at all is "not found".
    pub fn require(&self, team_id: i64, role: Role) -> RuleResult<Role> {
        match self.role_in(team_id) {
            Some(r) if r >= role => Ok(r),
            Some(_) => Err(RuleError::Forbidden(format!(
                "this needs the {role} role in team {team_id}"
            ))),
            None => Err(RuleError::NotFound(format!(
                "team {team_id} does not exist"
            ))),
        }
    }

    /// Requires an instance admin.
    pub fn require_admin(&self) -> RuleResult<()> {
        if self.is_instance_admin() {
            Ok(())
        } else {
            Err(RuleError::Forbidden("this needs an instance admin".into()))
        }
    }

    /// Who made a thing, as stored with keys and readings: `user:<email>` for a console user
    /// (whether by session or token, so a member manages the keys they made either way),
    /// `cli:<os-user>` for the operator.
    pub fn creator(&self) -> String {
        match self {
            Actor::Console(caller) => format!("user:{}", caller.user.email),
            Actor::Operator(name) => (*name).to_owned(),
        }
    }

    /// The audit log's actor string.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Console(caller) => caller.actor(),
            Actor::Operator(name) => (*name).to_owned(),
        }
    }

    /// Appends the audit entry of a change this actor made.
    pub async fn audit(&self, store: &dyn Store, change: Change) {
        match self {
            Actor::Console(caller) => audit::record(store, caller, change).await,
            Actor::Operator(name) => {
                audit::record_as(store, (*name).to_owned(), None, None, change).await;
            }
        }
    }
}

/// What the rules work against: the store, and the instance's configuration that rules read.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// The master key sealing key copies and upstream credentials, when configured.
    pub master_key: Option<&'a MasterKey>,
    /// Internal upstream hosts team admins may route to anyway.
    pub upstream_allowlist: &'a UpstreamAllowlist,
    /// This instance's own listeners, which no team route may target.
    pub own_listeners: &'a [std::net::SocketAddr],
}

impl std::fmt::Debug for Rules<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("master_key", &self.master_key.map(|_| "[redacted]"))
            .field("own_listeners", &self.own_listeners)
            .finish_non_exhaustive()
    }
}

impl<'a> Rules<'a> {
    /// Rules over `store` with no master key, no allowlist and no listeners of its own (the
    /// command line, and tests).
    pub fn new(store: &'a dyn Store) -> Self {
        static NO_ALLOWLIST: std::sync::LazyLock<UpstreamAllowlist> =
            std::sync::LazyLock::new(UpstreamAllowlist::default);
        Self {
            store,
            master_key: None,
            upstream_allowlist: &NO_ALLOWLIST,
            own_listeners: &[],
        }
    }

    /// The same rules with a master key.
    pub fn with_master_key(self, master_key: Option<&'a MasterKey>) -> Self {
        Self { master_key, ..self }
    }
}

impl crate::ConsoleState {
    /// The rules over this console's store, master key and upstream settings.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            store: self.store.as_ref(),
            master_key: self.master_key.as_ref(),
            upstream_allowlist: &self.settings.upstream_allowlist,
            own_listeners: &self.settings.own_listeners,
        }
    }
}

/// Whether `name` is 1 to 64 letters, digits, `-`, `_` or `.` (team and counter names).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A display name or key name: trimmed, 1 to 100 characters.
pub fn check_label(field: &'static str, text: &str) -> RuleResult<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 100 {
        return Err(RuleError::invalid(
            field,
            format!("the {field} must be 1 to 100 characters"),
        ));
    }
    Ok(text.to_owned())
}

/// An expiry `now + text` (`30d`, `12h`, …); `None` when no text. Zero and times past 9999 are
/// refused, naming `field`.
pub fn expiry_from(field: &'static str, text: Option<&str>, now: i64) -> RuleResult<Option<i64>> {
    let Some(text) = text else { return Ok(None) };
    let d = parse_duration(text).map_err(|e| RuleError::invalid(field, format!("{field}: {e}")))?;
    if d.is_zero() {
        return Err(RuleError::invalid(
            field,
            format!("{field} must be longer than zero"),
        ));
    }
    let at = i64::try_from(d.as_millis())
        .ok()
        .and_then(|ms| now.checked_add(ms))
        .filter(|t| *t < MAX_TIME_MS);
    at.map(Some)
        .ok_or_else(|| RuleError::invalid(field, format!("{field} is too far in the future")))
}
