//! Teams: names, who may create, rename or delete one, the default team's name, and the audit
//! entry of each change.

use tollgate_core::Role;
use tollgate_store::{DEFAULT_TEAM, Team};

use super::{Actor, RuleError, RuleResult, Rules, is_plain_name};
use crate::audit::Change;

/// A team name: trimmed, 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_name(name: &str) -> RuleResult<String> {
    let name = name.trim();
    if is_plain_name(name) {
        Ok(name.to_owned())
    } else {
        Err(RuleError::invalid(
            "name",
            format!("team name `{name}` must be 1 to 64 letters, digits, -, _ or ."),
        ))
    }
}

/// The team if the actor may see it (a member of it, or an instance admin).
pub async fn visible(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<(Team, Role)> {
    let role = actor.require(id, Role::Viewer)?;
    let team = rules
        .store
        .team_by_id(id)
        .await?
        .ok_or_else(|| RuleError::NotFound(format!("team {id} does not exist")))?;
    Ok((team, role))
}

/// Creates a team (instance admins); a console user creating it becomes its owner. Audited.
pub async fn create(rules: &Rules<'_>, actor: &Actor<'_>, name: &str) -> RuleResult<Team> {
    actor.require_admin()?;
    let name = check_name(name)?;
    let store = rules.store;
    let team = store.create_team(&name).await?;
    if let Some(user_id) = actor.user_id() {
        store.set_member(team.id, user_id, Role::Owner).await?;
    }
    let change = Change::new("team.create", "team", team.id)
        .team(Some(team.id))
        .summary(format!("team `{name}` created"));
    actor.audit(store, change).await;
    Ok(team)
}

/// Renames a team (its owners and admins); the default team keeps its name. Audited.
pub async fn rename(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    name: &str,
) -> RuleResult<(Team, Role)> {
    let role = actor.require(id, Role::Admin)?;
    let name = check_name(name)?;
    let store = rules.store;
    let old = store
        .team_by_id(id)
        .await?
        .ok_or_else(|| RuleError::NotFound(format!("team {id} does not exist")))?;
    if old.name == DEFAULT_TEAM && name != old.name {
        return Err(RuleError::Conflict(
            "the default team cannot be renamed".into(),
        ));
    }
    let team = store.rename_team(id, &name).await?;
    let change = Change::new("team.update", "team", id)
        .team(Some(id))
        .summary(format!("team `{}` renamed to `{name}`", old.name));
    actor.audit(store, change).await;
    Ok((team, role))
}

/// Deletes a team that owns no keys or routes (its owners). Audited.
pub async fn delete(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<()> {
    actor.require(id, Role::Owner)?;
    let store = rules.store;
    let team = store
        .team_by_id(id)
        .await?
        .ok_or_else(|| RuleError::NotFound(format!("team {id} does not exist")))?;
    store.delete_team(id).await?;
    let change =
        Change::new("team.delete", "team", id).summary(format!("team `{}` deleted", team.name));
    actor.audit(store, change).await;
    Ok(())
}
