//! Signing in and out, the signed-in user, password changes, personal access tokens (their rules
//! in `rules::tokens`) and invitation acceptance.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_core::time::now_ms;
use tollgate_store::{AccessToken, NewUser, SessionRecord, Store, User};
use utoipa::ToSchema;

use super::views::{MembershipView, UserView};
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::{
    Caller, Origin, SESSION_TTL_MS, Via, check_password_strength, hash_password, random_secret,
    secret_hash, session_clear_cookie, session_cookie, session_set_cookie, verify_password,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::rules::{Actor, tokens};

/// Sign-in request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// The signed-in user, their teams, and the CSRF token for writes made with the session cookie.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// The user.
    pub user: UserView,
    /// Their teams and roles.
    pub memberships: Vec<MembershipView>,
    /// Send it as `X-CSRF-Token` on every write made with the session cookie (absent for tokens).
    pub csrf_token: Option<String>,
}

async fn session_view(
    store: &dyn Store,
    user: &User,
    csrf_token: Option<String>,
) -> ApiResult<SessionView> {
    let memberships = store
        .memberships_of(user.id)
        .await?
        .iter()
        .map(MembershipView::from)
        .collect();
    Ok(SessionView {
        user: UserView::from(user),
        memberships,
        csrf_token,
    })
}

/// Starts a session for `user` and answers with its cookie.
async fn start_session(
    state: &ConsoleState,
    user: &User,
    headers: &HeaderMap,
    origin: Origin,
    status: StatusCode,
) -> ApiResult<Response> {
    let secret = random_secret();
    let csrf = random_secret();
    let now = now_ms();
    state
        .store
        .create_session(SessionRecord {
            id_hash: secret_hash(&secret),
            user_id: user.id,
            csrf_token: csrf.clone(),
            created_at_ms: now,
            expires_at_ms: now + SESSION_TTL_MS,
            revoked_at_ms: None,
            ip: origin.ip_string(),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(300).collect()),
        })
        .await?;
    state.store.touch_login(user.id, now).await?;
    let body = session_view(state.store.as_ref(), user, Some(csrf)).await?;
    let cookie = session_set_cookie(&secret, origin.over_tls);
    Ok((status, [(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Signs in with e-mail and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<ConsoleState>,
    origin: Origin,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let email = req.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        return Err(ApiError::invalid(
            "email",
            "the e-mail address is missing or too long",
        ));
    }
    if req.password.len() > 1024 {
        return Err(ApiError::invalid("password", "the password is too long"));
    }
    state.throttle.check(&email, origin.ip)?;
    let ip = origin.ip_string();
    let user = state.store.user_by_email(&email).await?;
    let ok = verify_password(
        req.password,
        user.as_ref().and_then(|u| u.password_hash.clone()),
    )
    .await?;
    let refused =
        |reason: &str| Change::new("auth.login_failed", "user", &email).summary(reason.to_owned());
    let Some(user) = user.filter(|_| ok) else {
        audit::record_as(
            state.store.as_ref(),
            email.clone(),
            None,
            ip,
            refused("wrong e-mail or password"),
        )
        .await;
        return Err(ApiError::unauthenticated(
            "invalid_credentials",
            "the e-mail or password is wrong",
        ));
    };
    if user.disabled_at_ms.is_some() {
        audit::record_as(
            state.store.as_ref(),
            email.clone(),
            Some(user.id),
            ip,
            refused("account disabled"),
        )
        .await;
        return Err(ApiError::unauthenticated(
            "account_disabled",
            "the account is disabled",
        ));
    }
    let change =
        Change::new("auth.login", "user", user.id).summary(format!("{} signed in", user.email));
    audit::record_as(
        state.store.as_ref(),
        format!("user:{}", user.email),
        Some(user.id),
        ip.clone(),
        change,
    )
    .await;
    start_session(&state, &user, &headers, origin, StatusCode::OK).await
}

/// Signs out: the session stops working everywhere at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<ConsoleState>,
    caller: Caller,
    origin: Origin,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Via::Session { id_hash } = &caller.via {
        state.store.revoke_session(id_hash, now_ms()).await?;
    } else if session_cookie(&headers).is_none() {
        return Err(ApiError::bad_request(
            "not_a_session",
            "sign-out ends a session; revoke a token instead",
        ));
    }
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("auth.logout", "user", caller.user.id),
    )
    .await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_clear_cookie(origin.over_tls))],
    )
        .into_response())
}

/// The signed-in user, their teams and roles, and (for a session) the CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<ConsoleState>, caller: Caller) -> ApiResult<Json<SessionView>> {
    let csrf = match &caller.via {
        Via::Session { id_hash } => state
            .store
            .session_by_hash(id_hash)
            .await?
            .map(|s| s.csrf_token),
        Via::Token { .. } => None,
    };
    Ok(Json(
        session_view(state.store.as_ref(), &caller.user, csrf).await?,
    ))
}

/// Password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new password: at least 10 characters and not easy to guess.
    pub new_password: String,
}

/// Changes the caller's password; every session of theirs ends, this one included (sign in again).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    state.throttle.check(
        &caller.user.email,
        caller.ip.as_deref().and_then(|ip| ip.parse().ok()),
    )?;
    let current = state
        .store
        .user_by_id(caller.user.id)
        .await?
        .and_then(|u| u.password_hash);
    if !verify_password(req.current_password, current).await? {
        return Err(ApiError::invalid(
            "current_password",
            "the current password is wrong",
        ));
    }
    check_password_strength(&req.new_password, &caller.user.email)?;
    let hash = hash_password(req.new_password).await?;
    state.store.set_password(caller.user.id, &hash).await?;
    let ended = state
        .store
        .revoke_user_sessions(caller.user.id, now_ms())
        .await?;
    let change = Change::new("user.password_change", "user", caller.user.id)
        .summary(format!("password changed; {ended} session(s) ended"));
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A personal access token as listed (never the secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at: Option<i64>,
    /// Last use, epoch ms; null is "never used".
    pub last_used_at: Option<i64>,
}

impl From<&AccessToken> for TokenView {
    fn from(t: &AccessToken) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_at: t.created_at_ms,
            expires_at: t.expires_at_ms,
            revoked_at: t.revoked_at_ms,
            last_used_at: t.last_used_at_ms,
        }
    }
}

/// A new personal access token.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    /// Name, 1 to 100 characters.
    pub name: String,
    /// Lifetime such as `30d` or `12h`; none for no expiry.
    pub expires_in: Option<String>,
}

/// The created token: `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    /// Id.
    pub id: i64,
    /// The secret `tgp_…`; it cannot be shown again.
    pub token: String,
    /// The token as listed.
    #[serde(flatten)]
    pub view: TokenView,
}

/// Lists the caller's personal access tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = [TokenView]), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    Ok(Json(
        state
            .store
            .list_access_tokens(caller.user.id)
            .await?
            .iter()
            .map(TokenView::from)
            .collect(),
    ))
}

/// Creates a personal access token for the caller; the secret is in the answer once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreate,
    responses((status = 201, body = TokenCreated), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<TokenCreate>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let (token, secret) = tokens::create(
        &state.rules(),
        &Actor::Console(&caller),
        &caller.user,
        &req.name,
        req.expires_in.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: token.id,
            token: secret.expose().to_owned(),
            view: (&token).into(),
        }),
    ))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    tokens::revoke(&state.rules(), &Actor::Console(&caller), &caller.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an invitation link shows before it is accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    /// Invited address.
    pub email: String,
    /// Team name.
    pub team: String,
    /// Role on joining.
    pub role: Role,
    /// Expiry, epoch ms.
    pub expires_at: i64,
    /// Whether the address already has an account (then its password is asked for).
    pub existing_account: bool,
}

async fn open_invitation(store: &dyn Store, token: &str) -> ApiResult<tollgate_store::Invitation> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("no such invitation".into()));
    }
    let invitation = store
        .invitation_by_hash(&secret_hash(token))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such invitation".into()))?;
    if invitation.accepted_at_ms.is_some() {
        return Err(ApiError::Gone("this invitation was already used".into()));
    }
    if invitation.expires_at_ms <= now_ms() {
        return Err(ApiError::Gone(
            "this invitation has expired: ask for a new one".into(),
        ));
    }
    Ok(invitation)
}

/// Shows an invitation (public: the link is the credential).
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "auth", params(("token" = String, Path, description = "The secret from the link")),
    responses((status = 200, body = InvitationPreview), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn show_invitation(
    State(state): State<ConsoleState>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<InvitationPreview>> {
    let inv = open_invitation(state.store.as_ref(), &token).await?;
    let existing_account = state
        .store
        .user_by_email(&inv.email)
        .await?
        .is_some_and(|u| u.password_hash.is_some());
    Ok(Json(InvitationPreview {
        email: inv.email,
        team: inv.team_name,
        role: inv.role,
        expires_at: inv.expires_at_ms,
        existing_account,
    }))
}

/// Accepting an invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationAccept {
    /// The new password (or the existing account's password).
    pub password: String,
    /// Name shown in the console (new accounts).
    pub display_name: Option<String>,
}

/// Accepts an invitation: sets the password (new account) and joins the team; signs in.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "auth", request_body = InvitationAccept,
    params(("token" = String, Path, description = "The secret from the link")),
    responses((status = 201, body = SessionView), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn accept_invitation(
    State(state): State<ConsoleState>,
    origin: Origin,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiJson(req): ApiJson<InvitationAccept>,
) -> ApiResult<Response> {
    let inv = open_invitation(state.store.as_ref(), &token).await?;
    let existing = state.store.user_by_email(&inv.email).await?;
    let display_name = req
        .display_name
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if display_name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "display_name",
            "the display name must be at most 100 characters",
        ));
    }
    // Validate everything before anything changes.
    match &existing {
        Some(user) if user.password_hash.is_some() => {
            state.throttle.check(&inv.email, origin.ip)?;
            if !verify_password(req.password.clone(), user.password_hash.clone()).await? {
                return Err(ApiError::invalid(
                    "password",
                    "this address has an account: give its password",
                ));
            }
        }
        _ => check_password_strength(&req.password, &inv.email)?,
    }
    if !state
        .store
        .mark_invitation_accepted(inv.id, now_ms())
        .await?
    {
        return Err(ApiError::Gone("this invitation was already used".into()));
    }
    let user = match existing {
        Some(user) if user.password_hash.is_some() => user,
        Some(user) => {
            state
                .store
                .set_password(user.id, &hash_password(req.password).await?)
                .await?;
            user
        }
        None => {
            let hash = hash_password(req.password).await?;
            let name = if display_name.is_empty() {
                inv.email.split('@').next().unwrap_or("").to_owned()
            } else {
                display_name
            };
            state
                .store
                .create_user(NewUser {
                    email: inv.email.clone(),
                    display_name: name,
                    password_hash: Some(hash),
                    is_admin: false,
                })
                .await?
        }
    };
    if user.disabled_at_ms.is_some() {
        return Err(ApiError::unauthenticated(
            "account_disabled",
            "the account is disabled",
        ));
    }
    state
        .store
        .set_member(inv.team_id, user.id, inv.role)
        .await?;
    let change = Change::new("invitation.accept", "invitation", inv.id)
        .team(Some(inv.team_id))
        .summary(format!(
            "{} joined {} as {}",
            user.email, inv.team_name, inv.role
        ));
    audit::record_as(
        state.store.as_ref(),
        format!("user:{}", user.email),
        Some(user.id),
        origin.ip_string(),
        change,
    )
    .await;
    start_session(&state, &user, &headers, origin, StatusCode::CREATED).await
}
