//! Teams, their members and roles, invitations, and (for instance admins) users. Team, member
//! and invitation changes go through `rules::teams` and `rules::members`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use utoipa::ToSchema;

use super::views::{MembershipView, TeamView, UserView};
use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::rules::Actor;
use crate::rules::{members, teams, users};

/// A team name.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamName {
    /// 1 to 64 letters, digits, `-`, `_` or `.`.
    pub name: String,
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
    let team = teams::create(&state.rules(), &Actor::Console(&caller), &req.name).await?;
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
    let (team, role) = teams::visible(&state.rules(), &Actor::Console(&caller), id).await?;
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
    let (team, role) =
        teams::rename(&state.rules(), &Actor::Console(&caller), id, &req.name).await?;
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
    teams::delete(&state.rules(), &Actor::Console(&caller), id).await?;
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
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// The role to give.
    pub role: Role,
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
    let m = members::set_role(
        &state.rules(),
        &Actor::Console(&caller),
        id,
        user_id,
        req.role,
    )
    .await?;
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
    members::remove(&state.rules(), &Actor::Console(&caller), id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An invitation to create.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationCreate {
    /// Address to invite.
    pub email: String,
    /// Role on joining (default `member`).
    pub role: Option<Role>,
    /// How long the link works (default `7d`, at most `30d`).
    pub expires_in: Option<String>,
}

/// An invitation as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    /// Id.
    pub id: i64,
    /// Invited address.
    pub email: String,
    /// Team id.
    pub team_id: i64,
    /// Team name.
    pub team: String,
    /// Role on joining.
    pub role: Role,
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
            role: i.role,
            created_at: i.created_at_ms,
            expires_at: i.expires_at_ms,
            accepted_at: i.accepted_at_ms,
        }
    }
}

/// A created invitation: the link is shown to the inviter this once (no mail server needed).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    let (inv, token) = members::invite(
        &state.rules(),
        &Actor::Console(&caller),
        id,
        &req.email,
        req.role,
        req.expires_in.as_deref(),
    )
    .await?;
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
    members::withdraw(&state.rules(), &Actor::Console(&caller), id, invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every user (instance admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = [UserView]), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserView>>> {
    let users = users::list(&state.rules(), &Actor::Console(&caller)).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// A change to a user (instance admins).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
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
    let change = users::UserChange {
        disabled: req.disabled,
        is_admin: req.is_admin,
        display_name: req.display_name,
    };
    let user = users::update(&state.rules(), &Actor::Console(&caller), id, change).await?;
    Ok(Json(UserView::from(&user)))
}
