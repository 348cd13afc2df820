//! Where the CLI's data commands act: on the local store, as the operator (the shared rules,
//! audited as `cli:<os-user>`), or on a running console through its REST API, as the user of a
//! personal access token. Both answer with the console API's own response types, so a command
//! prints the same table or JSON whichever it talks to, and both refuse with the API's error
//! detail (code, field, message), printed alike.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use reqwest::Method;
use tollgate_console::api::counters::{
    CounterEstimate, CounterImport, CounterImported, CounterStatus, Figure, Moment,
    ReadingCorrection, ReadingCreate, ReadingRecorded, ReadingView, SessionImport,
};
use tollgate_console::api::keys::{KeyCreate, KeyCreated, KeyPatch};
use tollgate_console::api::limits::{LimitCreate, LimitList, LimitView, views as limit_views};
use tollgate_console::api::routes::{RouteCreate, RoutePatch};
use tollgate_console::api::session::{SessionView, TokenCreate, TokenCreated, TokenView};
use tollgate_console::api::teams::{
    InvitationCreate, InvitationCreated, InvitationView, RoleChange, TeamName, UserPatch,
};
use tollgate_console::api::usage::{self, ExportFormat, SummaryView, TopItem, UsageSummary};
use tollgate_console::api::views::{KeyView, MembershipView, RouteView, TeamView, UserView};
use tollgate_console::error::{ApiError, ErrorDetail};
use tollgate_console::rules::counters::{self, ReadingNote};
use tollgate_console::rules::keys::{self, Expiry, KeyChange, KeyDraft};
use tollgate_console::rules::limits::{self, LimitDraft, LimitFilter, StoreSeed};
use tollgate_console::rules::routes::{self, RouteChange, RouteDraft};
use tollgate_console::rules::users::{self, UserChange};
use tollgate_console::rules::{Actor, RuleError, Rules, members, teams, tokens};
use tollgate_core::Role;
use tollgate_core::crypto::MasterKey;
use tollgate_core::time::{HOUR_MS, now_ms};
use tollgate_limits::{Limit, LimitUsage, Limiter, LimiterConfig, LocalCounters};
use tollgate_store::{EventCursor, EventFilter, RollupFilter, Store, StoreError, User};

use crate::admin::os_user;
use crate::config::Config;
use crate::remote::{Remote, segment};
use crate::store;

/// Why a backend call failed: refused by a rule or the API (the same detail either way), or
/// something else (the store, the network) in one line.
#[derive(Debug)]
pub enum Failure {
    /// Refused, with the HTTP status the API gives such a refusal.
    Refused {
        /// 403, 404, 409, 422, …
        status: u16,
        /// Code, message and field.
        detail: ErrorDetail,
    },
    /// Anything else.
    Other(anyhow::Error),
}

/// Result of a backend call.
pub type Outcome<T> = Result<T, Failure>;

impl From<RuleError> for Failure {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Store(e) => Self::Other(e.into()),
            other => {
                let api = ApiError::from(other);
                Self::Refused {
                    status: api.status().as_u16(),
                    detail: api.detail(),
                }
            }
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Other(e.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl Failure {
    /// Whether the thing asked for does not exist (or is not visible).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }

    /// One CLI line: a refused field is named by this command's flag (`flags` maps the API's
    /// field names to flags).
    pub fn cli(self, flags: &[(&str, &str)]) -> anyhow::Error {
        match self {
            Self::Other(e) => e,
            Self::Refused { detail, .. } => match detail.field.as_deref() {
                Some(field) => {
                    let flag = flags
                        .iter()
                        .find(|(f, _)| *f == field)
                        .map_or(field, |(_, flag)| *flag);
                    let message = detail
                        .message
                        .strip_prefix(field)
                        .and_then(|m| m.strip_prefix(": "))
                        .unwrap_or(&detail.message);
                    anyhow::anyhow!("{flag}: {message}")
                }
                None => anyhow::anyhow!("{}", detail.message),
            },
        }
    }

    /// [`Failure::cli`], with `missing` as the line when the thing does not exist.
    pub fn cli_or(self, flags: &[(&str, &str)], missing: impl FnOnce() -> String) -> anyhow::Error {
        if self.is_not_found() {
            anyhow::anyhow!("{}", missing())
        } else {
            self.cli(flags)
        }
    }
}

/// The local store and what acting on it needs.
pub struct Local {
    /// The store, opened (never created) from the configuration.
    pub store: Arc<dyn Store>,
    master: Option<MasterKey>,
    operator: String,
}

/// Where a data command will act, before anything is opened: commands that check their input
/// first open it only once the input is good.
pub enum Target<'a> {
    /// The configured local store.
    Local(&'a Config),
    /// A running console.
    Remote(Remote),
}

impl Target<'_> {
    /// Opens the store, or takes the client.
    pub async fn open(self) -> anyhow::Result<Backend> {
        match self {
            Target::Local(config) => Backend::local(config).await,
            Target::Remote(remote) => Ok(Backend::Remote(remote)),
        }
    }
}

/// Where a data command acts.
pub enum Backend {
    /// The local store, as the operator.
    Local(Local),
    /// A running console, as the token's user.
    Remote(Remote),
}

impl Backend {
    /// The configured local store (which must exist).
    pub async fn local(config: &Config) -> anyhow::Result<Self> {
        Ok(Self::Local(Local {
            store: store::open(config).await?,
            master: config.master_key(),
            operator: os_user(),
        }))
    }

    /// Closes the store, if one is open.
    pub async fn close(self) {
        if let Self::Local(local) = self {
            local.store.close().await;
        }
    }

    // ---- teams -------------------------------------------------------------------------------

    /// Teams visible to the actor (all, for the operator and instance admins).
    pub async fn teams(&self) -> Outcome<Vec<TeamView>> {
        match self {
            Self::Local(l) => Ok(l
                .store
                .list_teams()
                .await?
                .iter()
                .map(|t| TeamView::of(t, Some(Role::Owner)))
                .collect()),
            Self::Remote(r) => r.get("api/v1/teams").await,
        }
    }

    /// The id of the team `name` names (by name, else by id), or "team `name` does not exist"
    /// (as the actor sees it: a team they are not in does not exist for them).
    pub async fn team_id(&self, name: &str) -> anyhow::Result<i64> {
        let teams = self.teams().await.map_err(|e| e.cli(&[]))?;
        let by_id = name.parse::<i64>().ok();
        teams
            .iter()
            .find(|t| t.name == name)
            .or_else(|| teams.iter().find(|t| Some(t.id) == by_id))
            .map(|t| t.id)
            .with_context(|| format!("team `{name}` does not exist"))
    }

    /// One team.
    pub async fn team(&self, id: i64) -> Outcome<TeamView> {
        match self {
            Self::Local(l) => {
                let (team, role) = teams::visible(&l.rules(), &l.actor(), id).await?;
                Ok(TeamView::of(&team, Some(role)))
            }
            Self::Remote(r) => r.get(&format!("api/v1/teams/{id}")).await,
        }
    }

    /// Creates a team.
    pub async fn create_team(&self, name: &str) -> Outcome<TeamView> {
        match self {
            Self::Local(l) => {
                let team = teams::create(&l.rules(), &l.actor(), name).await?;
                Ok(TeamView::of(&team, Some(Role::Owner)))
            }
            Self::Remote(r) => {
                let body = TeamName { name: name.into() };
                r.send(Method::POST, "api/v1/teams", &body).await
            }
        }
    }

    /// Renames a team.
    pub async fn rename_team(&self, id: i64, name: &str) -> Outcome<TeamView> {
        match self {
            Self::Local(l) => {
                let (team, role) = teams::rename(&l.rules(), &l.actor(), id, name).await?;
                Ok(TeamView::of(&team, Some(role)))
            }
            Self::Remote(r) => {
                let body = TeamName { name: name.into() };
                r.send(Method::PATCH, &format!("api/v1/teams/{id}"), &body)
                    .await
            }
        }
    }

    /// Deletes a team that owns no keys or routes.
    pub async fn delete_team(&self, id: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => Ok(teams::delete(&l.rules(), &l.actor(), id).await?),
            Self::Remote(r) => r.delete(&format!("api/v1/teams/{id}")).await,
        }
    }

    // ---- members and invitations ------------------------------------------------------------

    /// A team's members.
    pub async fn members(&self, team: i64) -> Outcome<Vec<MembershipView>> {
        match self {
            Self::Local(l) => {
                teams::visible(&l.rules(), &l.actor(), team).await?;
                Ok(l.store
                    .list_members(team)
                    .await?
                    .iter()
                    .map(MembershipView::from)
                    .collect())
            }
            Self::Remote(r) => r.get(&format!("api/v1/teams/{team}/members")).await,
        }
    }

    /// Gives `user` `role` in `team` (adds them, where the actor may).
    pub async fn set_member(&self, team: i64, user: i64, role: Role) -> Outcome<MembershipView> {
        match self {
            Self::Local(l) => {
                let m = members::set_role(&l.rules(), &l.actor(), team, user, role).await?;
                Ok(MembershipView::from(&m))
            }
            Self::Remote(r) => {
                let path = format!("api/v1/teams/{team}/members/{user}");
                r.send(Method::PUT, &path, &RoleChange { role }).await
            }
        }
    }

    /// Removes `user` from `team`.
    pub async fn remove_member(&self, team: i64, user: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => Ok(members::remove(&l.rules(), &l.actor(), team, user).await?),
            Self::Remote(r) => {
                r.delete(&format!("api/v1/teams/{team}/members/{user}"))
                    .await
            }
        }
    }

    /// Invites an address to `team`.
    pub async fn invite(&self, team: i64, req: InvitationCreate) -> Outcome<InvitationCreated> {
        match self {
            Self::Local(l) => {
                let (inv, token) = members::invite(
                    &l.rules(),
                    &l.actor(),
                    team,
                    &req.email,
                    req.role,
                    req.expires_in.as_deref(),
                )
                .await?;
                Ok(InvitationCreated {
                    invitation: InvitationView::from(&inv),
                    link: format!("/invite/{token}"),
                    token,
                })
            }
            Self::Remote(r) => {
                r.send(
                    Method::POST,
                    &format!("api/v1/teams/{team}/invitations"),
                    &req,
                )
                .await
            }
        }
    }

    /// A team's invitations, newest first.
    pub async fn invitations(&self, team: i64) -> Outcome<Vec<InvitationView>> {
        match self {
            Self::Local(l) => {
                teams::visible(&l.rules(), &l.actor(), team).await?;
                Ok(l.store
                    .list_invitations(Some(team))
                    .await?
                    .iter()
                    .map(InvitationView::from)
                    .collect())
            }
            Self::Remote(r) => r.get(&format!("api/v1/teams/{team}/invitations")).await,
        }
    }

    /// Withdraws an invitation.
    pub async fn withdraw(&self, team: i64, id: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => Ok(members::withdraw(&l.rules(), &l.actor(), team, id).await?),
            Self::Remote(r) => {
                r.delete(&format!("api/v1/teams/{team}/invitations/{id}"))
                    .await
            }
        }
    }

    // ---- users and tokens --------------------------------------------------------------------

    /// Every user (instance admins).
    pub async fn users(&self) -> Outcome<Vec<UserView>> {
        match self {
            Self::Local(l) => Ok(users::list(&l.rules(), &l.actor())
                .await?
                .iter()
                .map(UserView::from)
                .collect()),
            Self::Remote(r) => r.get("api/v1/users").await,
        }
    }

    /// Changes a user (instance admins).
    pub async fn update_user(&self, id: i64, patch: UserPatch) -> Outcome<UserView> {
        match self {
            Self::Local(l) => {
                let change = UserChange {
                    disabled: patch.disabled,
                    is_admin: patch.is_admin,
                    display_name: patch.display_name,
                };
                let user = users::update(&l.rules(), &l.actor(), id, change).await?;
                Ok(UserView::from(&user))
            }
            Self::Remote(r) => {
                r.send(Method::PATCH, &format!("api/v1/users/{id}"), &patch)
                    .await
            }
        }
    }

    /// The user whose tokens a `token` command manages: locally the one `email` names (which
    /// must be given); remotely the token's own user (`email`, if given, must be theirs).
    async fn token_user(&self, email: Option<&str>) -> anyhow::Result<Option<User>> {
        match self {
            Self::Local(l) => {
                let email = email.context(
                    "--email: name the user whose tokens these are (with --server, the token's own user is meant)",
                )?;
                let email = tollgate_console::auth::normalize_email(email)
                    .map_err(|e| anyhow::anyhow!("--email: {e}"))?;
                let user = l
                    .store
                    .user_by_email(&email)
                    .await?
                    .with_context(|| format!("no user {email}"))?;
                Ok(Some(user))
            }
            Self::Remote(r) => {
                if let Some(email) = email {
                    let me: SessionView = r.get("api/v1/auth/me").await.map_err(|e| e.cli(&[]))?;
                    if !me.user.email.eq_ignore_ascii_case(email.trim()) {
                        anyhow::bail!(
                            "--email: with --server a token manages only its own user's tokens \
                             ({}), not {email}'s",
                            me.user.email
                        );
                    }
                }
                Ok(None)
            }
        }
    }

    /// A user's personal access tokens.
    pub async fn tokens(&self, email: Option<&str>) -> anyhow::Result<Vec<TokenView>> {
        let user = self.token_user(email).await?;
        match (self, user) {
            (Self::Local(l), Some(user)) => Ok(l
                .store
                .list_access_tokens(user.id)
                .await?
                .iter()
                .map(TokenView::from)
                .collect()),
            (Self::Remote(r), _) => r.get("api/v1/tokens").await.map_err(|e| e.cli(&[])),
            (Self::Local(_), None) => anyhow::bail!("--email: no user named"),
        }
    }

    /// Creates a personal access token; the secret is in the answer once.
    pub async fn create_token(
        &self,
        email: Option<&str>,
        req: TokenCreate,
    ) -> anyhow::Result<(TokenCreated, String)> {
        const FLAGS: &[(&str, &str)] = &[("name", "--name"), ("expires_in", "--expires")];
        let user = self.token_user(email).await?;
        match (self, user) {
            (Self::Local(l), Some(user)) => {
                let (token, secret) = tokens::create(
                    &l.rules(),
                    &l.actor(),
                    &user,
                    &req.name,
                    req.expires_in.as_deref(),
                )
                .await
                .map_err(|e| Failure::from(e).cli(FLAGS))?;
                Ok((
                    TokenCreated {
                        id: token.id,
                        token: secret.expose().to_owned(),
                        view: (&token).into(),
                    },
                    user.email,
                ))
            }
            (Self::Remote(r), _) => {
                // The answer repeats `id` (the token's and its view's), so it is read as a map.
                let value: serde_json::Value = r
                    .send(Method::POST, "api/v1/tokens", &req)
                    .await
                    .map_err(|e| e.cli(FLAGS))?;
                let view: TokenView = serde_json::from_value(value.clone())
                    .context("the server's token answer is not understood")?;
                let token = value
                    .get("token")
                    .and_then(serde_json::Value::as_str)
                    .context("the server's token answer holds no token")?
                    .to_owned();
                let me: SessionView = r.get("api/v1/auth/me").await.map_err(|e| e.cli(&[]))?;
                Ok((
                    TokenCreated {
                        id: view.id,
                        token,
                        view,
                    },
                    me.user.email,
                ))
            }
            (Self::Local(_), None) => anyhow::bail!("--email: no user named"),
        }
    }

    /// Revokes a personal access token.
    pub async fn revoke_token(&self, email: Option<&str>, id: i64) -> anyhow::Result<()> {
        let user = self.token_user(email).await?;
        let missing = || format!("no token with id {id}");
        match (self, user) {
            (Self::Local(l), Some(user)) => {
                tokens::revoke(&l.rules(), &l.actor(), &user, id)
                    .await
                    .map_err(|e| Failure::from(e).cli_or(&[], missing))?;
                Ok(())
            }
            (Self::Remote(r), _) => r
                .delete(&format!("api/v1/tokens/{id}"))
                .await
                .map_err(|e| e.cli_or(&[], missing)),
            (Self::Local(_), None) => anyhow::bail!("--email: no user named"),
        }
    }

    // ---- keys --------------------------------------------------------------------------------

    /// Keys visible to the actor, masked.
    pub async fn keys(
        &self,
        team: Option<i64>,
        unused: bool,
        idle_days: Option<u32>,
    ) -> Outcome<Vec<KeyView>> {
        match self {
            Self::Local(l) => {
                let by_use = keys::UseFilter::new(unused, idle_days)?;
                let now = now_ms();
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(l.store
                    .list_keys(team)
                    .await?
                    .iter()
                    .filter(|k| by_use.keeps(k, now))
                    .map(|k| KeyView::of(k, now).with_models(&models))
                    .collect())
            }
            Self::Remote(r) => {
                let mut query = Vec::new();
                if let Some(team) = team {
                    query.push(format!("team_id={team}"));
                }
                if unused {
                    query.push("unused=true".into());
                }
                if let Some(days) = idle_days {
                    query.push(format!("idle_days={days}"));
                }
                let path = if query.is_empty() {
                    "api/v1/keys".to_owned()
                } else {
                    format!("api/v1/keys?{}", query.join("&"))
                };
                r.get(&path).await
            }
        }
    }

    /// Creates a key; the secret is in the answer once.
    pub async fn create_key(&self, req: KeyCreate) -> Outcome<KeyCreated> {
        match self {
            Self::Local(l) => {
                let expiry = match (req.expires_in, req.expires_at) {
                    (Some(text), _) => Expiry::In(text),
                    (None, Some(at)) => Expiry::At(at),
                    (None, None) => Expiry::Never,
                };
                let draft = KeyDraft {
                    team_id: req.team_id,
                    name: req.name,
                    description: req.description,
                    expiry,
                    route_ids: req.route_ids,
                    models: req.models,
                };
                let (record, secret) = keys::create(&l.rules(), &l.actor(), draft).await?;
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(KeyCreated {
                    key: secret.expose().to_owned(),
                    view: KeyView::of(&record, now_ms()).with_models(&models),
                })
            }
            Self::Remote(r) => r.send(Method::POST, "api/v1/keys", &req).await,
        }
    }

    /// Changes a key.
    pub async fn update_key(&self, id: i64, patch: KeyPatch) -> Outcome<KeyView> {
        match self {
            Self::Local(l) => {
                let change = KeyChange {
                    name: patch.name,
                    description: patch.description,
                    expires_at: patch.expires_at,
                    route_ids: patch.route_ids,
                    models: patch.models,
                };
                let record = keys::update(&l.rules(), &l.actor(), id, change).await?;
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(KeyView::of(&record, now_ms()).with_models(&models))
            }
            Self::Remote(r) => {
                r.send(Method::PATCH, &format!("api/v1/keys/{id}"), &patch)
                    .await
            }
        }
    }

    /// Revokes a key.
    pub async fn revoke_key(&self, id: i64) -> Outcome<KeyView> {
        match self {
            Self::Local(l) => {
                let record = keys::revoke(&l.rules(), &l.actor(), id).await?;
                let models = tollgate_console::rules::limits::key_models(l.store.as_ref()).await?;
                Ok(KeyView::of(&record, now_ms()).with_models(&models))
            }
            Self::Remote(r) => r.post_empty(&format!("api/v1/keys/{id}/revoke")).await,
        }
    }

    // ---- routes ------------------------------------------------------------------------------

    /// Routes visible to the actor.
    pub async fn routes(&self) -> Outcome<Vec<RouteView>> {
        match self {
            Self::Local(l) => Ok(l
                .store
                .list_routes()
                .await?
                .iter()
                .map(RouteView::from)
                .collect()),
            Self::Remote(r) => r.get("api/v1/routes").await,
        }
    }

    /// Creates a route.
    pub async fn create_route(&self, req: RouteCreate) -> Outcome<RouteView> {
        match self {
            Self::Local(l) => {
                let draft = RouteDraft {
                    team_id: req.team_id,
                    name: req.name,
                    prefix: req.prefix,
                    upstream_url: req.upstream_url,
                    kind: req.kind,
                    strip_prefix: req.strip_prefix,
                    connect_timeout_ms: req.connect_timeout_ms,
                    timeout_ms: req.timeout_ms,
                    enabled: req.enabled,
                    credential: req.upstream_key,
                };
                let route = routes::create(&l.rules(), &l.actor(), draft).await?;
                Ok(RouteView::from(&route))
            }
            Self::Remote(r) => r.send(Method::POST, "api/v1/routes", &req).await,
        }
    }

    /// Changes a route; it keeps its id, and the keys that list it keep it.
    pub async fn update_route(&self, id: i64, patch: RoutePatch) -> Outcome<RouteView> {
        match self {
            Self::Local(l) => {
                let change = RouteChange {
                    name: patch.name,
                    prefix: patch.prefix,
                    upstream_url: patch.upstream_url,
                    kind: patch.kind,
                    strip_prefix: patch.strip_prefix,
                    connect_timeout_ms: patch.connect_timeout_ms,
                    timeout_ms: patch.timeout_ms,
                    enabled: patch.enabled,
                    credential: patch.upstream_key,
                };
                let updated = routes::update(&l.rules(), &l.actor(), id, change).await?;
                Ok(RouteView::from(&updated.route))
            }
            Self::Remote(r) => {
                r.send(Method::PATCH, &format!("api/v1/routes/{id}"), &patch)
                    .await
            }
        }
    }

    /// Deletes a route.
    pub async fn delete_route(&self, id: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => {
                routes::delete(&l.rules(), &l.actor(), id).await?;
                Ok(())
            }
            Self::Remote(r) => r.delete(&format!("api/v1/routes/{id}")).await,
        }
    }

    // ---- token counters ----------------------------------------------------------------------

    /// Records a cumulative reading on counter `name` of `team`.
    pub async fn record_reading(
        &self,
        team: i64,
        name: &str,
        reading: i64,
        note: ReadingNote,
    ) -> Outcome<ReadingRecorded> {
        match self {
            Self::Local(l) => {
                let (c, r) =
                    counters::record(&l.rules(), &l.actor(), Some(team), name, reading, note)
                        .await?;
                Ok(ReadingRecorded {
                    counter: CounterStatus::from(&c),
                    reading: (&r).into(),
                })
            }
            Self::Remote(r) => {
                let body = ReadingCreate {
                    reading: Figure::Number(reading),
                    event: note.event,
                    conversation_id: note.conversation_id,
                    sync_type: Some(note.sync_type),
                };
                let path = format!("api/v1/counters/{}/readings?team_id={team}", segment(name));
                r.send(Method::POST, &path, &body).await
            }
        }
    }

    /// The status of counter `name` of `team`. Locally a missing counter is created with the
    /// default quota, as `sync status` always did.
    pub async fn counter_status(&self, team: i64, name: &str) -> Outcome<CounterStatus> {
        match self {
            Self::Local(l) => {
                let counter = match l.store.counter_by_name(team, name).await? {
                    Some(c) => c,
                    None => {
                        l.store
                            .ensure_counter(team, name, counters::DEFAULT_QUOTA)
                            .await?
                    }
                };
                Ok(CounterStatus::from(&counter))
            }
            Self::Remote(r) => {
                r.get(&format!("api/v1/counters/{}?team_id={team}", segment(name)))
                    .await
            }
        }
    }

    /// Adds `tokens` counted from two texts to counter `name` of `team` as an `estimate`
    /// reading. A server counts the texts itself, with the same vocabulary.
    pub async fn estimate_reading(
        &self,
        team: i64,
        name: &str,
        tokens: i64,
        texts: CounterEstimate,
    ) -> Outcome<ReadingRecorded> {
        match self {
            Self::Local(l) => {
                let note = ReadingNote {
                    event: texts.event.unwrap_or_default(),
                    conversation_id: None,
                    sync_type: "estimate".into(),
                };
                let (c, r) =
                    counters::add(&l.rules(), &l.actor(), Some(team), name, tokens, note).await?;
                Ok(ReadingRecorded {
                    counter: CounterStatus::from(&c),
                    reading: (&r).into(),
                })
            }
            Self::Remote(r) => {
                let path = format!("api/v1/counters/{}/estimate?team_id={team}", segment(name));
                r.send(Method::POST, &path, &texts).await
            }
        }
    }

    /// Adds sessions to counter `name` of `team` in time order; `progress` ticks per session
    /// (locally; a server adds them in one request).
    pub async fn import_sessions(
        &self,
        team: i64,
        name: &str,
        sessions: Vec<counters::ImportedSession>,
        progress: impl FnMut(),
    ) -> Outcome<CounterImported> {
        match self {
            Self::Local(l) => {
                let (c, added) = counters::import(
                    &l.rules(),
                    &l.actor(),
                    Some(team),
                    name,
                    &sessions,
                    progress,
                )
                .await?;
                Ok(CounterImported {
                    imported: sessions.len(),
                    tokens: added,
                    counter: CounterStatus::from(&c),
                })
            }
            Self::Remote(r) => {
                let body = CounterImport {
                    sessions: sessions
                        .into_iter()
                        .map(|s| SessionImport {
                            tokens: Figure::Number(s.tokens),
                            event: s.event,
                            timestamp: Some(Moment::Millis(s.ts_ms)),
                        })
                        .collect(),
                };
                let path = format!("api/v1/counters/{}/import?team_id={team}", segment(name));
                r.send(Method::POST, &path, &body).await
            }
        }
    }

    /// Corrects reading `id` to `figure`, or deletes it (`None`); the later readings are
    /// recomputed.
    pub async fn revise_reading(
        &self,
        team: i64,
        name: &str,
        id: i64,
        figure: Option<i64>,
    ) -> Outcome<(CounterStatus, Option<ReadingView>)> {
        match self {
            Self::Local(l) => {
                let (c, r) =
                    counters::revise(&l.rules(), &l.actor(), Some(team), name, id, figure).await?;
                Ok((CounterStatus::from(&c), r.as_ref().map(ReadingView::from)))
            }
            Self::Remote(r) => {
                let path = format!(
                    "api/v1/counters/{}/readings/{id}?team_id={team}",
                    segment(name)
                );
                match figure {
                    Some(figure) => {
                        let body = ReadingCorrection {
                            reading: Figure::Number(figure),
                        };
                        let done: ReadingRecorded = r.send(Method::PATCH, &path, &body).await?;
                        Ok((done.counter, Some(done.reading)))
                    }
                    None => Ok((r.delete_json(&path).await?, None)),
                }
            }
        }
    }

    // ---- limits ------------------------------------------------------------------------------

    /// Every limit the actor may see, with its use: a server's from its live limiter; locally
    /// computed from the store (budgets since their period began; rate windows and calls in
    /// flight live only in a running gateway and show as zero).
    pub async fn limits(&self) -> Outcome<Vec<LimitView>> {
        match self {
            Self::Local(l) => {
                let entries = limits::list(&l.rules(), &l.actor(), LimitFilter::default()).await?;
                let names = limits::scope_names(l.store.as_ref()).await?;
                let counters = Arc::new(LocalCounters::new(Arc::new(StoreSeed::new(Arc::clone(
                    &l.store,
                )))));
                let limiter = Limiter::new(
                    entries.iter().map(|e| e.limit.clone()).collect(),
                    counters,
                    LimiterConfig::default(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let usage: HashMap<i64, LimitUsage> = limiter
                    .usage()
                    .await
                    .map_err(|e| anyhow::anyhow!("reading the limits' use failed: {e}"))?
                    .into_iter()
                    .map(|u| (u.limit_id, u))
                    .collect();
                Ok(limit_views(entries, &names, Some(&usage)))
            }
            Self::Remote(r) => Ok(r.get::<LimitList>("api/v1/limits").await?.limits),
        }
    }

    /// Creates limits, all or none: on a refusal, the index of the refused draft. Locally every
    /// draft is checked before the first is stored; a server checks each as it is created, and
    /// the ones created before a refusal are removed again.
    pub async fn create_limits(
        &self,
        drafts: Vec<LimitDraft>,
    ) -> Result<Vec<LimitView>, (Failure, usize)> {
        match self {
            Self::Local(l) => {
                let (rules, actor) = (l.rules(), l.actor());
                for (i, draft) in drafts.iter().enumerate() {
                    limits::check_draft(&rules, &actor, draft)
                        .await
                        .map_err(|e| (Failure::from(e), i))?;
                }
                let mut entries = Vec::with_capacity(drafts.len());
                for (i, draft) in drafts.into_iter().enumerate() {
                    entries.push(
                        limits::create(&rules, &actor, draft, None)
                            .await
                            .map_err(|e| (Failure::from(e), i))?,
                    );
                }
                let names = limits::scope_names(l.store.as_ref())
                    .await
                    .map_err(|e| (Failure::from(e), 0))?;
                Ok(limit_views(entries, &names, None))
            }
            Self::Remote(r) => {
                let mut created: Vec<LimitView> = Vec::with_capacity(drafts.len());
                for (i, draft) in drafts.into_iter().enumerate() {
                    let body = LimitCreate {
                        scope: draft.scope,
                        kind: draft.kind,
                        enforcement: draft.enforcement,
                        alert_at: draft.alert_at,
                        include_reported: draft.include_reported,
                    };
                    match r.send(Method::POST, "api/v1/limits", &body).await {
                        Ok(view) => created.push(view),
                        Err(e) => {
                            for done in &created {
                                // Best effort: the refusal is what the caller must see.
                                let _ = r.delete(&format!("api/v1/limits/{}", done.id)).await;
                            }
                            return Err((e, i));
                        }
                    }
                }
                Ok(created)
            }
        }
    }

    /// Removes a limit and returns it as it was.
    pub async fn delete_limit(&self, id: i64) -> Outcome<Limit> {
        match self {
            Self::Local(l) => Ok(limits::delete(&l.rules(), &l.actor(), id).await?.limit),
            Self::Remote(r) => {
                let limit = r
                    .get::<LimitList>("api/v1/limits")
                    .await?
                    .limits
                    .into_iter()
                    .find(|v| v.id == id)
                    .map(|v| limit_of(&v))
                    .ok_or_else(|| Failure::Refused {
                        status: 404,
                        detail: ErrorDetail {
                            code: "not_found".into(),
                            message: format!("limit {id} does not exist"),
                            field: None,
                        },
                    })?;
                r.delete(&format!("api/v1/limits/{id}")).await?;
                Ok(limit)
            }
        }
    }
}

/// What a usage command asks about: a time range (epoch ms) and filters.
#[derive(Debug, Clone)]
pub struct UsageAsk {
    /// From, epoch ms.
    pub from_ms: i64,
    /// To, epoch ms.
    pub to_ms: i64,
    /// Only this key.
    pub key: Option<i64>,
    /// Only this route.
    pub route: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
}

impl UsageAsk {
    /// The roll-up filter of the range, in whole hours.
    fn rollups(&self) -> RollupFilter {
        RollupFilter {
            from_ms: self.from_ms - self.from_ms.rem_euclid(HOUR_MS),
            to_ms: self.to_ms - self.to_ms.rem_euclid(HOUR_MS) + HOUR_MS,
            team_ids: None,
            key_id: self.key,
            route_id: self.route,
            model: self.model.clone(),
            status_class: None,
        }
    }

    /// The query parameters of the usage endpoints.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("from", self.from_ms.to_string()),
            ("to", self.to_ms.to_string()),
        ];
        if let Some(key) = self.key {
            q.push(("key_id", key.to_string()));
        }
        if let Some(route) = self.route {
            q.push(("route_id", route.to_string()));
        }
        if let Some(model) = &self.model {
            q.push(("model", model.clone()));
        }
        q
    }
}

impl Backend {
    /// Usage totals over a range.
    pub async fn usage_totals(&self, ask: &UsageAsk) -> Outcome<UsageSummary> {
        match self {
            Self::Local(l) => Ok(usage::totals(l.store.as_ref(), &ask.rollups())
                .await
                .map_err(api_failure)?),
            Self::Remote(r) => Ok(r
                .get_query::<SummaryView>("api/v1/usage/summary", &ask.query())
                .await?
                .summary),
        }
    }

    /// The top `limit` groups `by` (an API word: key, route, model, team, status_class) in
    /// `order` (calls, tokens).
    pub async fn usage_top(
        &self,
        ask: &UsageAsk,
        by: &str,
        order: &str,
        limit: i64,
    ) -> Outcome<Vec<TopItem>> {
        match self {
            Self::Local(l) => {
                let grouping = usage::grouping_of(Some(by)).map_err(api_failure)?;
                let order = usage::order_of(Some(order)).map_err(api_failure)?;
                usage::top_items(l.store.as_ref(), &ask.rollups(), grouping, order, limit)
                    .await
                    .map_err(api_failure)
            }
            Self::Remote(r) => {
                let mut query = ask.query();
                query.push(("by", by.to_owned()));
                query.push(("order", order.to_owned()));
                query.push(("limit", limit.to_string()));
                r.get_query("api/v1/usage/top", &query).await
            }
        }
    }

    /// Streams the raw events of a range into `out` in `format`; the events written locally
    /// (a server's stream is not counted: `None`).
    pub async fn usage_export(
        &self,
        ask: &UsageAsk,
        format: ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> Outcome<Option<u64>> {
        match self {
            Self::Local(l) => {
                let store = l.store.as_ref();
                let filter = EventFilter {
                    from_ms: Some(ask.from_ms),
                    to_ms: Some(ask.to_ms),
                    key_id: ask.key,
                    route_id: ask.route,
                    model: ask.model.clone(),
                    ..EventFilter::default()
                };
                let names = usage::key_names(store).await.map_err(api_failure)?;
                let mut encoder = usage::RowEncoder::new(format);
                let mut cursor: Option<EventCursor> = None;
                let mut rows = 0u64;
                let write = |out: &mut dyn std::io::Write, bytes: &[u8]| {
                    out.write_all(bytes).map_err(|e| {
                        Failure::Other(anyhow::Error::from(e).context("cannot write the export"))
                    })
                };
                loop {
                    let page = store.search_usage(&filter, cursor, 5_000).await?;
                    for e in &page {
                        write(
                            out,
                            &encoder.row(&usage::export_row(&usage::LogEntry::from(e), &names)),
                        )?;
                    }
                    rows += page.len() as u64;
                    match page.last() {
                        Some(last) if page.len() == 5_000 => {
                            cursor = Some(EventCursor {
                                ts_ms: last.event.ts_ms,
                                id: last.id,
                            });
                        }
                        _ => break,
                    }
                }
                write(out, &encoder.finish())?;
                Ok(Some(rows))
            }
            Self::Remote(r) => {
                let mut query = ask.query();
                query.push(("format", format.as_str().to_owned()));
                r.stream_to("api/v1/usage/export", &query, out).await?;
                Ok(None)
            }
        }
    }
}

/// A console-layer refusal as a backend one.
fn api_failure(e: ApiError) -> Failure {
    match e {
        ApiError::Internal(detail) => Failure::Other(anyhow::anyhow!("{detail}")),
        other => Failure::Refused {
            status: other.status().as_u16(),
            detail: other.detail(),
        },
    }
}

/// The limit a view shows.
pub fn limit_of(v: &LimitView) -> Limit {
    Limit {
        id: v.id,
        scope: v.scope,
        kind: v.kind,
        enforcement: v.enforcement,
        alert_at: v.alert_at.clone(),
        include_reported: v.include_reported,
    }
}

impl Local {
    /// The rules over the store, with the configured master key.
    pub fn rules(&self) -> Rules<'_> {
        Rules::new(self.store.as_ref()).with_master_key(self.master.as_ref())
    }

    /// The operator, audited as `cli:<os-user>`.
    pub fn actor(&self) -> Actor<'_> {
        Actor::Operator(&self.operator)
    }
}
