//! Teams, members, invitations, users and personal access tokens, on either side.

use super::*;

impl Backend {
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
}
