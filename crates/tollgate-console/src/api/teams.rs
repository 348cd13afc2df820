//! Teams, their members and roles, invitations, and (for instance admins) users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_core::time::now_ms;
use tollgate_store::NewInvitation;
use utoipa::ToSchema;

use super::views::{MembershipView, TeamView, UserView, expiry_from};
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::{Caller, normalize_email, random_secret, secret_hash};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};

/// A team name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamName {
    /// 1 to 64 letters, digits, `-`, `_` or `.`.
    pub name: String,
}

fn check_team_name(name: &str) -> ApiResult<String> {
    if super::views::is_plain_name(name) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::invalid(
            "name",
            format!("team name `{name}` must be 1 to 64 letters, digits, -, _ or ."),
        ))
    }
}

fn parse_role(text: &str) -> ApiResult<Role> {
    text.parse()
        .map_err(|e: String| ApiError::invalid("role", e))
}

/// Teams the caller belongs to (all, for instance admins).
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", responses((status = 200, body = [TeamView]), (status = 401, body = ErrorBody)))]
pub async fn list_teams(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TeamView>>> {
    let teams = state.store.list_teams().await?;
    Ok(Json(
        teams
            .iter()
            .filter_map(|t| caller.role_in(t.id).map(|r| TeamView::of(t, Some(r))))
            .collect(),
    ))
}

/// Creates a team (instance admins); the creator becomes its owner.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamName,
    responses((status = 201, body = TeamView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_team(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<TeamName>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    caller.require_admin()?;
    let name = check_team_name(req.name.trim())?;
    let team = state.store.create_team(&name).await?;
    state
        .store
        .set_member(team.id, caller.user.id, Role::Owner)
        .await?;
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("team.create", "team", team.id)
            .team(Some(team.id))
            .summary(format!("team `{name}` created")),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(TeamView::of(&team, Some(Role::Owner))),
    ))
}

/// One team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path, description = "Team id")),
    responses((status = 200, body = TeamView), (status = 404, body = ErrorBody)))]
pub async fn get_team(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TeamView>> {
    let role = caller.require(id, Role::Viewer)?;
    let team = state
        .store
        .team_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("team {id} does not exist")))?;
    Ok(Json(TeamView::of(&team, Some(role))))
}

/// Renames a team (owners and admins).
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", request_body = TeamName, params(("id" = i64, Path, description = "Team id")),
    responses((status = 200, body = TeamView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rename_team(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<TeamName>,
) -> ApiResult<Json<TeamView>> {
    let role = caller.require(id, Role::Admin)?;
    let name = check_team_name(req.name.trim())?;
    let old = state
        .store
        .team_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("team {id} does not exist")))?;
    if old.name == tollgate_store::DEFAULT_TEAM && name != old.name {
        return Err(ApiError::Conflict(
            "the default team cannot be renamed".into(),
        ));
    }
    let team = state.store.rename_team(id, &name).await?;
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("team.update", "team", id)
            .team(Some(id))
            .summary(format!("team `{}` renamed to `{name}`", old.name)),
    )
    .await;
    Ok(Json(TeamView::of(&team, Some(role))))
}

/// Deletes a team that owns no keys or routes (owners).
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path, description = "Team id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_team(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require(id, Role::Owner)?;
    let team = state
        .store
        .team_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("team {id} does not exist")))?;
    state.store.delete_team(id).await?;
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("team.delete", "team", id).summary(format!("team `{}` deleted", team.name)),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The team's members.
#[utoipa::path(get, path = "/api/v1/teams/{id}/members", tag = "teams", params(("id" = i64, Path, description = "Team id")),
    responses((status = 200, body = [MembershipView]), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<MembershipView>>> {
    caller.require(id, Role::Viewer)?;
    Ok(Json(
        state
            .store
            .list_members(id)
            .await?
            .iter()
            .map(MembershipView::from)
            .collect(),
    ))
}

/// A role to give.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

/// Changes a member's role. Admins manage members and viewers; only owners make or unmake admins
/// and owners; a team always keeps one owner. Nobody joins a team without consenting: team
/// owners and admins add people by an invitation they accept, so to them a user who is not a
/// member is "not a member" here, whether or not that user exists. Instance admins (who see every
/// user anyway) may still add an existing user directly.
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", request_body = RoleChange,
    params(("id" = i64, Path, description = "Team id"), ("user_id" = i64, Path, description = "User id")),
    responses((status = 200, body = MembershipView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_member(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
    ApiJson(req): ApiJson<RoleChange>,
) -> ApiResult<Json<MembershipView>> {
    let my_role = caller.require(id, Role::Admin)?;
    let role = parse_role(&req.role)?;
    let current = state
        .store
        .list_members(id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .map(|m| m.role);
    if current.is_none() && !caller.user.is_admin {
        return Err(ApiError::NotFound(format!(
            "user {user_id} is not a member of team {id}: people join a team by accepting an invitation"
        )));
    }
    if !my_role.may_assign(current, role) {
        return Err(ApiError::Forbidden(
            "only owners may make or change admins and owners".into(),
        ));
    }
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id} does not exist")))?;
    let m = state.store.set_member(id, user_id, role).await?;
    let summary = match current {
        Some(old) => format!("{}: {old} → {role} in {}", user.email, m.team_name),
        None => format!("{} added to {} as {role}", user.email, m.team_name),
    };
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("member.role_change", "member", user_id)
            .team(Some(id))
            .summary(summary),
    )
    .await;
    Ok(Json(MembershipView::from(&m)))
}

/// Removes a member (admins for members and viewers, owners for anyone; never the last owner).
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    params(("id" = i64, Path, description = "Team id"), ("user_id" = i64, Path, description = "User id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let my_role = caller.require(id, Role::Admin)?;
    let member = state
        .store
        .list_members(id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!("user {user_id} is not a member of team {id}"))
        })?;
    if !my_role.may_assign(Some(member.role), Role::Viewer) {
        return Err(ApiError::Forbidden(
            "only owners may remove admins and owners".into(),
        ));
    }
    state.store.remove_member(id, user_id).await?;
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("member.remove", "member", user_id)
            .team(Some(id))
            .summary(format!(
                "{} removed from {}",
                member.email, member.team_name
            )),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An invitation to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationCreate {
    /// Address to invite.
    pub email: String,
    /// Role on joining (default `member`).
    pub role: Option<String>,
    /// How long the link works (default `7d`, at most `30d`).
    pub expires_in: Option<String>,
}

/// An invitation as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Id.
    pub id: i64,
    /// Invited address.
    pub email: String,
    /// Team id.
    pub team_id: i64,
    /// Team name.
    pub team: String,
    /// Role.
    pub role: String,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Expires, epoch ms.
    pub expires_at: i64,
    /// Accepted, epoch ms.
    pub accepted_at: Option<i64>,
}

impl From<&tollgate_store::Invitation> for InvitationView {
    fn from(i: &tollgate_store::Invitation) -> Self {
        Self {
            id: i.id,
            email: i.email.clone(),
            team_id: i.team_id,
            team: i.team_name.clone(),
            role: i.role.to_string(),
            created_at: i.created_at_ms,
            expires_at: i.expires_at_ms,
            accepted_at: i.accepted_at_ms,
        }
    }
}

/// A created invitation: the link is shown to the inviter this once (no mail server needed).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationCreated {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// The secret of the link.
    pub token: String,
    /// Path of the acceptance page, relative to the console: `/invite/<token>`.
    pub link: String,
}

/// Invites an address to the team.
#[utoipa::path(post, path = "/api/v1/teams/{id}/invitations", tag = "teams", request_body = InvitationCreate, params(("id" = i64, Path, description = "Team id")),
    responses((status = 201, body = InvitationCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_invitation(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<InvitationCreate>,
) -> ApiResult<(StatusCode, Json<InvitationCreated>)> {
    let my_role = caller.require(id, Role::Admin)?;
    let email = normalize_email(&req.email)?;
    let role = req
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::Member);
    if !my_role.may_assign(None, role) {
        return Err(ApiError::Forbidden(
            "only owners may invite admins and owners".into(),
        ));
    }
    let now = now_ms();
    let expires_at_ms = expiry_from(
        "expires_in",
        Some(req.expires_in.as_deref().unwrap_or("7d")),
        now,
    )?
    .unwrap_or(now);
    if expires_at_ms - now > 30 * 86_400_000 {
        return Err(ApiError::invalid(
            "expires_in",
            "an invitation lasts at most 30d",
        ));
    }
    if let Some(user) = state.store.user_by_email(&email).await?
        && state
            .store
            .list_members(id)
            .await?
            .iter()
            .any(|m| m.user_id == user.id)
    {
        return Err(ApiError::Conflict(format!(
            "{email} is already a member of team {id}"
        )));
    }
    let token = random_secret();
    let inv = state
        .store
        .create_invitation(NewInvitation {
            token_hash: secret_hash(&token),
            email: email.clone(),
            team_id: id,
            role,
            invited_by: Some(caller.user.id),
            expires_at_ms,
        })
        .await?;
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("invitation.create", "invitation", inv.id)
            .team(Some(id))
            .summary(format!("{email} invited to {} as {role}", inv.team_name)),
    )
    .await;
    let link = format!("/invite/{token}");
    Ok((
        StatusCode::CREATED,
        Json(InvitationCreated {
            invitation: InvitationView::from(&inv),
            token,
            link,
        }),
    ))
}

/// The team's invitations, newest first.
#[utoipa::path(get, path = "/api/v1/teams/{id}/invitations", tag = "teams", params(("id" = i64, Path, description = "Team id")),
    responses((status = 200, body = [InvitationView]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_invitations(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<InvitationView>>> {
    caller.require(id, Role::Admin)?;
    Ok(Json(
        state
            .store
            .list_invitations(Some(id))
            .await?
            .iter()
            .map(InvitationView::from)
            .collect(),
    ))
}

/// Withdraws an invitation.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/invitations/{invitation_id}", tag = "teams",
    params(("id" = i64, Path, description = "Team id"), ("invitation_id" = i64, Path, description = "Invitation id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_invitation(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath((id, invitation_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    caller.require(id, Role::Admin)?;
    let exists = state
        .store
        .list_invitations(Some(id))
        .await?
        .into_iter()
        .any(|i| i.id == invitation_id);
    if !exists {
        return Err(ApiError::NotFound(format!(
            "invitation {invitation_id} does not exist in team {id}"
        )));
    }
    state.store.delete_invitation(invitation_id).await?;
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("invitation.delete", "invitation", invitation_id)
            .team(Some(id))
            .summary("invitation withdrawn"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every user (instance admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = [UserView]), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserView>>> {
    caller.require_admin()?;
    Ok(Json(
        state
            .store
            .list_users()
            .await?
            .iter()
            .map(UserView::from)
            .collect(),
    ))
}

/// A change to a user (instance admins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Disable (true) or re-enable (false): a disabled user's sessions and tokens stop at once.
    pub disabled: Option<bool>,
    /// Grant or take instance admin.
    pub is_admin: Option<bool>,
    /// New display name.
    pub display_name: Option<String>,
}

/// Changes a user.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UserPatch, params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<UserPatch>,
) -> ApiResult<Json<UserView>> {
    caller.require_admin()?;
    let mut user = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} does not exist")))?;
    if id == caller.user.id && (req.disabled == Some(true) || req.is_admin == Some(false)) {
        return Err(ApiError::Conflict(
            "you cannot disable yourself or drop your own admin rights".into(),
        ));
    }
    if let Some(name) = &req.display_name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::invalid(
                "display_name",
                "the display name must be 1 to 100 characters",
            ));
        }
        user = state.store.set_display_name(id, name).await?;
    }
    if let Some(admin) = req.is_admin {
        user = state.store.set_user_admin(id, admin).await?;
    }
    if let Some(disabled) = req.disabled {
        let now = now_ms();
        user = state
            .store
            .set_user_disabled(id, disabled.then_some(now))
            .await?;
        if disabled {
            state.store.revoke_user_sessions(id, now).await?;
        }
    }
    let mut what = Vec::new();
    if let Some(d) = req.disabled {
        what.push(if d { "disabled" } else { "enabled" });
    }
    if let Some(a) = req.is_admin {
        what.push(if a { "made admin" } else { "admin removed" });
    }
    if req.display_name.is_some() {
        what.push("renamed");
    }
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("user.update", "user", id).summary(format!(
            "{}: {}",
            user.email,
            what.join(", ")
        )),
    )
    .await;
    Ok(Json(UserView::from(&user)))
}
