//! Changes to users by instance admins: disable or re-enable, grant or take admin, rename.

use tollgate_core::time::now_ms;
use tollgate_store::User;

use super::{Actor, RuleError, RuleResult, Rules};
use crate::audit::Change;

/// A change to a user; absent fields stay as they are.
#[derive(Debug, Default, Clone)]
pub struct UserChange {
    /// Disable (true) or re-enable (false): a disabled user's sessions and tokens stop at once.
    pub disabled: Option<bool>,
    /// Grant or take instance admin.
    pub is_admin: Option<bool>,
    /// New display name.
    pub display_name: Option<String>,
}

/// Every user (instance admins).
pub async fn list(rules: &Rules<'_>, actor: &Actor<'_>) -> RuleResult<Vec<User>> {
    actor.require_admin()?;
    Ok(rules.store.list_users().await?)
}

/// Changes a user (instance admins), audited. Nobody disables themselves or drops their own
/// admin rights, so an instance always keeps the admin who acts.
pub async fn update(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    change: UserChange,
) -> RuleResult<User> {
    actor.require_admin()?;
    let store = rules.store;
    let mut user = store
        .user_by_id(id)
        .await?
        .ok_or_else(|| RuleError::NotFound(format!("user {id} does not exist")))?;
    if actor.user_id() == Some(id)
        && (change.disabled == Some(true) || change.is_admin == Some(false))
    {
        return Err(RuleError::Conflict(
            "you cannot disable yourself or drop your own admin rights".into(),
        ));
    }
    let name = match &change.display_name {
        Some(name) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(RuleError::invalid(
                    "display_name",
                    "the display name must be 1 to 100 characters",
                ));
            }
            Some(name.to_owned())
        }
        None => None,
    };
    if let Some(name) = &name {
        user = store.set_display_name(id, name).await?;
    }
    if let Some(admin) = change.is_admin {
        user = store.set_user_admin(id, admin).await?;
    }
    if let Some(disabled) = change.disabled {
        let now = now_ms();
        user = store.set_user_disabled(id, disabled.then_some(now)).await?;
        if disabled {
            store.revoke_user_sessions(id, now).await?;
        }
    }
    let mut what = Vec::new();
    if let Some(d) = change.disabled {
        what.push(if d { "disabled" } else { "enabled" });
    }
    if let Some(a) = change.is_admin {
        what.push(if a { "made admin" } else { "admin removed" });
    }
    if name.is_some() {
        what.push("renamed");
    }
    actor
        .audit(
            store,
            Change::new("user.update", "user", id).summary(format!(
                "{}: {}",
                user.email,
                what.join(", ")
            )),
        )
        .await;
    Ok(user)
}
