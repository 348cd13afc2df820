//! Writing audit entries. Every change made through the console goes through [`record`].

use tollgate_store::{NewAuditEntry, Store};

use crate::auth::Caller;

/// What one audit entry says; the actor and address come from the caller.
#[derive(Debug, Clone)]
pub struct Change {
    /// e.g. `key.create`.
    pub action: &'static str,
    /// e.g. `key`.
    pub entity_type: &'static str,
    /// Id or name of the entity.
    pub entity_id: Option<String>,
    /// Team concerned.
    pub team_id: Option<i64>,
    /// One human line.
    pub summary: String,
}

impl Change {
    /// A change to `entity_type` `entity_id`.
    pub fn new(action: &'static str, entity_type: &'static str, entity_id: impl ToString) -> Self {
        Self {
            action,
            entity_type,
            entity_id: Some(entity_id.to_string()),
            team_id: None,
            summary: String::new(),
        }
    }

    /// Sets the team.
    pub fn team(mut self, team_id: Option<i64>) -> Self {
        self.team_id = team_id;
        self
    }

    /// Sets the summary.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }
}

/// Appends an entry for a change the caller made. The change already happened, so a failure to
/// write the entry is logged loudly rather than undoing it.
pub async fn record(store: &dyn Store, caller: &Caller, change: Change) {
    record_as(
        store,
        caller.actor(),
        Some(caller.user.id),
        caller.ip.clone(),
        change,
    )
    .await;
}

/// Appends an entry with an explicit actor (sign-in attempts, invitations, the CLI).
pub async fn record_as(
    store: &dyn Store,
    actor: String,
    actor_user_id: Option<i64>,
    ip: Option<String>,
    change: Change,
) {
    let entry = NewAuditEntry {
        actor,
        actor_user_id,
        action: change.action.to_owned(),
        entity_type: change.entity_type.to_owned(),
        entity_id: change.entity_id,
        summary: change.summary,
        ip,
        team_id: change.team_id,
    };
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(error = %e, action = change.action, "audit entry could not be written");
    }
}
