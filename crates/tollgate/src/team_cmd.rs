//! `tollgate team|member|invitation|user …`: accounts and teams from the command line, on the local store (as the operator) or on a server (as the token's user).
//! Secrets (an invitation link's) alone on standard output, notes on standard error.

use anyhow::Context;
use serde::Serialize;
use tollgate_console::api::teams::{InvitationCreate, InvitationView, UserPatch};
use tollgate_console::api::views::{MembershipView, TeamView, UserView};
use tollgate_core::time::format_ms;

use crate::backend::Backend;
use crate::cli_team::{InvitationCommand, MemberCommand, TeamCommand, UserCommand};
use crate::output;

/// The flags behind the team and member rules' fields.
const TEAM_FLAGS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("email", "--email"),
    ("role", "--role"),
    ("expires_in", "--expires"),
    ("display_name", "--name"),
];

/// One team as scripts see it.
#[derive(Debug, Serialize)]
struct TeamLine {
    id: i64,
    name: String,
    role: Option<String>,
    created_at: String,
}

impl From<TeamView> for TeamLine {
    fn from(t: TeamView) -> Self {
        Self {
            id: t.id,
            name: t.name,
            role: t.role.map(|r| r.to_string()),
            created_at: format_ms(t.created_at),
        }
    }
}

fn print_teams(teams: Vec<TeamView>, json: bool) -> anyhow::Result<()> {
    let lines: Vec<TeamLine> = teams.into_iter().map(TeamLine::from).collect();
    if json {
        return output::json(&lines);
    }
    output::table(
        &["ID", "NAME", "ROLE", "CREATED"],
        lines
            .into_iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.name,
                    t.role.unwrap_or_default(),
                    t.created_at,
                ]
            })
            .collect(),
    );
    Ok(())
}

fn print_team(team: TeamView, json: bool, verb: &str) -> anyhow::Result<()> {
    let line = TeamLine::from(team);
    if json {
        return output::json(&line);
    }
    output::line(&format!("{verb} team {} \"{}\".", line.id, line.name));
    Ok(())
}

/// `tollgate team …`.
pub async fn team(backend: Backend, command: TeamCommand) -> anyhow::Result<()> {
    let result = async {
        match command {
            TeamCommand::Create(args) => {
                let team = backend
                    .create_team(&args.name)
                    .await
                    .map_err(|e| e.cli(TEAM_FLAGS))?;
                print_team(team, args.json, "Created")
            }
            TeamCommand::List(args) => {
                let teams = backend.teams().await.map_err(|e| e.cli(&[]))?;
                print_teams(teams, args.json)
            }
            TeamCommand::Show(args) => {
                let id = backend.team_id(&args.team).await?;
                let team = backend.team(id).await.map_err(|e| {
                    e.cli_or(&[], || format!("team `{}` does not exist", args.team))
                })?;
                print_teams(vec![team], args.json)
            }
            TeamCommand::Rename(args) => {
                let id = backend.team_id(&args.team).await?;
                let team = backend
                    .rename_team(id, &args.name)
                    .await
                    .map_err(|e| e.cli(TEAM_FLAGS))?;
                print_team(team, args.json, "Renamed")
            }
            TeamCommand::Delete(args) => {
                let id = backend.team_id(&args.team).await?;
                backend.delete_team(id).await.map_err(|e| e.cli(&[]))?;
                if args.json {
                    output::json(&serde_json::json!({"deleted": id}))
                } else {
                    output::line(&format!("Deleted team {id} \"{}\".", args.team));
                    Ok(())
                }
            }
        }
    }
    .await;
    backend.close().await;
    result
}

/// One membership as scripts see it.
#[derive(Debug, Serialize)]
struct MemberLine {
    user_id: i64,
    email: String,
    display_name: String,
    team: String,
    role: String,
    joined_at: String,
}

impl From<MembershipView> for MemberLine {
    fn from(m: MembershipView) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            display_name: m.display_name,
            team: m.team_name,
            role: m.role.to_string(),
            joined_at: format_ms(m.joined_at),
        }
    }
}

/// The id of the user `email` names: a member of `team`, or (for instance admins) any user.
async fn user_id_of(
    backend: &Backend,
    team: i64,
    team_name: &str,
    email: &str,
) -> anyhow::Result<i64> {
    let email = email.trim();
    let members = backend.members(team).await.map_err(|e| e.cli(&[]))?;
    if let Some(m) = members.iter().find(|m| m.email.eq_ignore_ascii_case(email)) {
        return Ok(m.user_id);
    }
    match backend.users().await {
        Ok(users) => users
            .into_iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id)
            .with_context(|| format!("--email: no user {email}")),
        Err(_) => anyhow::bail!(
            "--email: {email} is not a member of team `{team_name}`; invite them with \
             `tollgate invitation create`"
        ),
    }
}

/// `tollgate member …`.
pub async fn member(backend: Backend, command: MemberCommand) -> anyhow::Result<()> {
    let result = async {
        match command {
            MemberCommand::List(args) => {
                let team = backend.team_id(&args.team).await?;
                let members = backend.members(team).await.map_err(|e| e.cli(&[]))?;
                let lines: Vec<MemberLine> = members.into_iter().map(MemberLine::from).collect();
                if args.json {
                    return output::json(&lines);
                }
                output::table(
                    &["USER", "EMAIL", "NAME", "ROLE", "JOINED"],
                    lines
                        .into_iter()
                        .map(|m| {
                            vec![
                                m.user_id.to_string(),
                                m.email,
                                m.display_name,
                                m.role,
                                m.joined_at,
                            ]
                        })
                        .collect(),
                );
                Ok(())
            }
            MemberCommand::Add(args) | MemberCommand::SetRole(args) => {
                let team = backend.team_id(&args.team).await?;
                let user = user_id_of(&backend, team, &args.team, &args.email).await?;
                let m = backend
                    .set_member(team, user, args.role.role())
                    .await
                    .map_err(|e| e.cli(TEAM_FLAGS))?;
                let line = MemberLine::from(m);
                if args.json {
                    return output::json(&line);
                }
                output::line(&format!(
                    "{} is {} of team `{}`.",
                    line.email, line.role, line.team
                ));
                Ok(())
            }
            MemberCommand::Remove(args) => {
                let team = backend.team_id(&args.team).await?;
                let user = user_id_of(&backend, team, &args.team, &args.email).await?;
                backend
                    .remove_member(team, user)
                    .await
                    .map_err(|e| e.cli(TEAM_FLAGS))?;
                output::line(&format!(
                    "{} removed from team `{}`.",
                    args.email.trim(),
                    args.team
                ));
                Ok(())
            }
        }
    }
    .await;
    backend.close().await;
    result
}

/// One invitation as scripts see it.
#[derive(Debug, Serialize)]
struct InvitationLine {
    id: i64,
    email: String,
    team: String,
    role: String,
    created_at: String,
    expires_at: String,
    accepted_at: Option<String>,
}

impl From<InvitationView> for InvitationLine {
    fn from(i: InvitationView) -> Self {
        Self {
            id: i.id,
            email: i.email,
            team: i.team,
            role: i.role.to_string(),
            created_at: format_ms(i.created_at),
            expires_at: format_ms(i.expires_at),
            accepted_at: i.accepted_at.map(format_ms),
        }
    }
}

/// `tollgate invitation …`.
pub async fn invitation(backend: Backend, command: InvitationCommand) -> anyhow::Result<()> {
    let result = async {
        match command {
            InvitationCommand::Create(args) => {
                let team = backend.team_id(&args.team).await?;
                let request = InvitationCreate {
                    email: args.email.clone(),
                    role: Some(args.role.role()),
                    expires_in: args.expires.clone(),
                };
                let created = backend
                    .invite(team, request)
                    .await
                    .map_err(|e| e.cli(TEAM_FLAGS))?;
                if args.json {
                    let line = InvitationLine::from(created.invitation);
                    return output::json(&serde_json::json!({
                        "invitation": line,
                        "token": created.token,
                        "link": created.link,
                    }));
                }
                output::note(&format!(
                    "Invited {} to team `{}` as {} until {}. The acceptance page is \
                     <console>{} — send it to them; it is shown only once:",
                    created.invitation.email,
                    created.invitation.team,
                    created.invitation.role,
                    format_ms(created.invitation.expires_at),
                    created.link,
                ));
                output::line(&created.token);
                Ok(())
            }
            InvitationCommand::List(args) => {
                let team = backend.team_id(&args.team).await?;
                let list = backend.invitations(team).await.map_err(|e| e.cli(&[]))?;
                let lines: Vec<InvitationLine> =
                    list.into_iter().map(InvitationLine::from).collect();
                if args.json {
                    return output::json(&lines);
                }
                output::table(
                    &["ID", "EMAIL", "ROLE", "CREATED", "EXPIRES", "ACCEPTED"],
                    lines
                        .into_iter()
                        .map(|i| {
                            vec![
                                i.id.to_string(),
                                i.email,
                                i.role,
                                i.created_at,
                                i.expires_at,
                                i.accepted_at.unwrap_or_else(|| "no".into()),
                            ]
                        })
                        .collect(),
                );
                Ok(())
            }
            InvitationCommand::Revoke(args) => {
                let team = backend.team_id(&args.team).await?;
                let id = args.id;
                backend
                    .withdraw(team, id)
                    .await
                    .map_err(|e| e.cli_or(&[], || format!("no invitation with id {id}")))?;
                output::line(&format!("Invitation {id} withdrawn."));
                Ok(())
            }
        }
    }
    .await;
    backend.close().await;
    result
}

/// One user as scripts see it.
#[derive(Debug, Serialize)]
struct UserLine {
    id: i64,
    email: String,
    display_name: String,
    is_admin: bool,
    status: &'static str,
    created_at: String,
    last_login_at: Option<String>,
}

impl From<UserView> for UserLine {
    fn from(u: UserView) -> Self {
        Self {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            is_admin: u.is_admin,
            status: if u.disabled_at.is_some() {
                "disabled"
            } else if u.has_password {
                "active"
            } else {
                "invited"
            },
            created_at: format_ms(u.created_at),
            last_login_at: u.last_login_at.map(format_ms),
        }
    }
}

/// `tollgate user …`.
pub async fn user(backend: Backend, command: UserCommand) -> anyhow::Result<()> {
    let result = async {
        match command {
            UserCommand::List(args) => {
                let users = backend.users().await.map_err(|e| e.cli(&[]))?;
                let lines: Vec<UserLine> = users.into_iter().map(UserLine::from).collect();
                if args.json {
                    return output::json(&lines);
                }
                output::table(
                    &[
                        "ID",
                        "EMAIL",
                        "NAME",
                        "ADMIN",
                        "STATUS",
                        "CREATED",
                        "LAST SIGN-IN",
                    ],
                    lines
                        .into_iter()
                        .map(|u| {
                            vec![
                                u.id.to_string(),
                                u.email,
                                u.display_name,
                                if u.is_admin { "yes" } else { "no" }.into(),
                                u.status.into(),
                                u.created_at,
                                u.last_login_at.unwrap_or_else(|| "never".into()),
                            ]
                        })
                        .collect(),
                );
                Ok(())
            }
            UserCommand::Disable(args) => {
                let patch = UserPatch {
                    disabled: Some(true),
                    is_admin: None,
                    display_name: None,
                };
                change_user(&backend, &args.email, patch, args.json).await
            }
            UserCommand::Enable(args) => {
                let patch = UserPatch {
                    disabled: Some(false),
                    is_admin: None,
                    display_name: None,
                };
                change_user(&backend, &args.email, patch, args.json).await
            }
            UserCommand::Update(args) => {
                if args.name.is_none() && args.admin.is_none() {
                    anyhow::bail!("give --name or --admin");
                }
                let patch = UserPatch {
                    disabled: None,
                    is_admin: args.admin,
                    display_name: args.name,
                };
                change_user(&backend, &args.email, patch, args.json).await
            }
        }
    }
    .await;
    backend.close().await;
    result
}

async fn change_user(
    backend: &Backend,
    email: &str,
    patch: UserPatch,
    json: bool,
) -> anyhow::Result<()> {
    let email = email.trim();
    let users = backend.users().await.map_err(|e| e.cli(&[]))?;
    let user = users
        .into_iter()
        .find(|u| u.email.eq_ignore_ascii_case(email))
        .with_context(|| format!("--email: no user {email}"))?;
    let user = backend
        .update_user(user.id, patch)
        .await
        .map_err(|e| e.cli(TEAM_FLAGS))?;
    let line = UserLine::from(user);
    if json {
        return output::json(&line);
    }
    output::line(&format!(
        "User {} {} ({}{}) is {}.",
        line.id,
        line.email,
        line.display_name,
        if line.is_admin {
            ", instance admin"
        } else {
            ""
        },
        line.status
    ));
    Ok(())
}
