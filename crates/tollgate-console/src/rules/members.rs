//! Team members and invitations: who may give which role, who may add or remove whom, how long
//! an invitation lasts, and the audit entry of each change. Nobody joins a team without
//! consenting: team owners and admins add people by an invitation they accept; only instance
//! admins may add an existing user directly. A team always keeps one owner (enforced atomically
//! by the store).

use tollgate_core::Role;
use tollgate_core::time::now_ms;
use tollgate_store::{Invitation, Membership, NewInvitation};

use super::{Actor, RuleError, RuleResult, Rules, expiry_from};
use crate::audit::Change;
use crate::auth::{normalize_email, random_secret, secret_hash};

/// How long an invitation link works when no lifetime is given.
pub const DEFAULT_INVITATION_TTL: &str = "7d";
/// Longest life of an invitation, ms (30 days).
pub const MAX_INVITATION_TTL_MS: i64 = 30 * 86_400_000;

/// Gives `user_id` the role named `role` in team `team_id`. Admins manage members and viewers; only
/// owners make or unmake admins and owners; to team owners and admins a user who is not a member
/// is "not a member", whether or not that user exists. Audited.
pub async fn set_role(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: i64,
    user_id: i64,
    role: Role,
) -> RuleResult<Membership> {
    let store = rules.store;
    let my_role = actor.require(team_id, Role::Admin)?;
    let current = store
        .list_members(team_id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .map(|m| m.role);
    if current.is_none() && !actor.is_instance_admin() {
        return Err(RuleError::NotFound(format!(
            "user {user_id} is not a member of team {team_id}: people join a team by accepting an invitation"
        )));
    }
    if !my_role.may_assign(current, role) {
        return Err(RuleError::Forbidden(
            "only owners may make or change admins and owners".into(),
        ));
    }
    let user = store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| RuleError::NotFound(format!("user {user_id} does not exist")))?;
    let m = store.set_member(team_id, user_id, role).await?;
    let summary = match current {
        Some(old) => format!("{}: {old} → {role} in {}", user.email, m.team_name),
        None => format!("{} added to {} as {role}", user.email, m.team_name),
    };
    let change = Change::new("member.role_change", "member", user_id)
        .team(Some(team_id))
        .summary(summary);
    actor.audit(store, change).await;
    Ok(m)
}

/// Removes a member (admins for members and viewers, owners for anyone; never the last owner).
/// Audited.
pub async fn remove(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: i64,
    user_id: i64,
) -> RuleResult<()> {
    let store = rules.store;
    let my_role = actor.require(team_id, Role::Admin)?;
    let member = store
        .list_members(team_id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| {
            RuleError::NotFound(format!("user {user_id} is not a member of team {team_id}"))
        })?;
    if !my_role.may_assign(Some(member.role), Role::Viewer) {
        return Err(RuleError::Forbidden(
            "only owners may remove admins and owners".into(),
        ));
    }
    store.remove_member(team_id, user_id).await?;
    let change = Change::new("member.remove", "member", user_id)
        .team(Some(team_id))
        .summary(format!(
            "{} removed from {}",
            member.email, member.team_name
        ));
    actor.audit(store, change).await;
    Ok(())
}

/// Invites `email` to team `team_id` as `role` (default member) for `expires_in` (default 7d,
/// at most 30d). Admins invite members and viewers; only owners invite admins and owners.
/// Audited; returns the invitation and the secret of its link (shown this once).
pub async fn invite(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: i64,
    email: &str,
    role: Option<Role>,
    expires_in: Option<&str>,
) -> RuleResult<(Invitation, String)> {
    let store = rules.store;
    let my_role = actor.require(team_id, Role::Admin)?;
    let email = normalize_email(email).map_err(|e| RuleError::invalid("email", e.to_string()))?;
    let role = role.unwrap_or(Role::Member);
    if !my_role.may_assign(None, role) {
        return Err(RuleError::Forbidden(
            "only owners may invite admins and owners".into(),
        ));
    }
    let now = now_ms();
    let expires_at_ms = expiry_from(
        "expires_in",
        Some(expires_in.unwrap_or(DEFAULT_INVITATION_TTL)),
        now,
    )?
    .unwrap_or(now);
    if expires_at_ms - now > MAX_INVITATION_TTL_MS {
        return Err(RuleError::invalid(
            "expires_in",
            "an invitation lasts at most 30d",
        ));
    }
    if let Some(user) = store.user_by_email(&email).await?
        && store
            .list_members(team_id)
            .await?
            .iter()
            .any(|m| m.user_id == user.id)
    {
        return Err(RuleError::Conflict(format!(
            "{email} is already a member of team {team_id}"
        )));
    }
    let token = random_secret();
    let invitation = store
        .create_invitation(NewInvitation {
            token_hash: secret_hash(&token),
            email: email.clone(),
            team_id,
            role,
            invited_by: actor.user_id(),
            expires_at_ms,
        })
        .await?;
    let change = Change::new("invitation.create", "invitation", invitation.id)
        .team(Some(team_id))
        .summary(format!(
            "{email} invited to {} as {role}",
            invitation.team_name
        ));
    actor.audit(store, change).await;
    Ok((invitation, token))
}

/// Withdraws an invitation of team `team_id` (its owners and admins). Audited.
pub async fn withdraw(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team_id: i64,
    invitation_id: i64,
) -> RuleResult<()> {
    let store = rules.store;
    actor.require(team_id, Role::Admin)?;
    let exists = store
        .list_invitations(Some(team_id))
        .await?
        .into_iter()
        .any(|i| i.id == invitation_id);
    if !exists {
        return Err(RuleError::NotFound(format!(
            "invitation {invitation_id} does not exist in team {team_id}"
        )));
    }
    store.delete_invitation(invitation_id).await?;
    let change = Change::new("invitation.delete", "invitation", invitation_id)
        .team(Some(team_id))
        .summary("invitation withdrawn");
    actor.audit(store, change).await;
    Ok(())
}
