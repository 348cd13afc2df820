//! Command-line arguments of `team`, `member`, `invitation`, `user` and the `token list` /
//! `token revoke` commands. Definitions only: `team_cmd.rs` and `token_cmd.rs` do the work.

use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretString;

/// A secret flag value, kept out of `Debug`.
pub fn secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text.to_owned()))
}

/// A role in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Reads the team's keys, routes and usage.
    Viewer,
    /// Also creates keys and manages the keys they made.
    Member,
    /// Also manages every key, route, member and invitation of the team.
    Admin,
    /// Also makes admins and owners, and deletes the team.
    Owner,
}

impl RoleArg {
    /// The role.
    pub fn role(self) -> tollgate_core::Role {
        match self {
            Self::Viewer => tollgate_core::Role::Viewer,
            Self::Member => tollgate_core::Role::Member,
            Self::Admin => tollgate_core::Role::Admin,
            Self::Owner => tollgate_core::Role::Owner,
        }
    }
}

/// `tollgate team …`
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team (instance admins); a console user creating it becomes its owner.
    Create(TeamCreateArgs),
    /// List the teams (with --server: the token's user's teams, or all for an instance admin).
    List(JsonArgs),
    /// Show one team.
    Show(TeamShowArgs),
    /// Rename a team (its owners and admins).
    Rename(TeamRenameArgs),
    /// Delete a team that owns no keys or routes (its owners).
    Delete(TeamShowArgs),
}

/// Just `--json`.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `team create`.
#[derive(Debug, Args)]
pub struct TeamCreateArgs {
    /// 1 to 64 letters, digits, `-`, `_` or `.`.
    #[arg(long)]
    pub name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `team show` and `team delete`.
#[derive(Debug, Args)]
pub struct TeamShowArgs {
    /// The team: its name or id.
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `team rename`.
#[derive(Debug, Args)]
pub struct TeamRenameArgs {
    /// The team: its name or id.
    pub team: String,
    /// The new name.
    #[arg(long)]
    pub name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate member …`
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List a team's members and their roles.
    List(MemberListArgs),
    /// Add an existing user to a team (instance admins; others invite, see `invitation create`).
    Add(MemberSetArgs),
    /// Change a member's role (admins for members and viewers, owners for anyone).
    SetRole(MemberSetArgs),
    /// Remove a member (never the last owner).
    Remove(MemberRemoveArgs),
}

/// Flags of `member list`.
#[derive(Debug, Args)]
pub struct MemberListArgs {
    /// The team: its name or id.
    #[arg(long)]
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `member add` and `member set-role`.
#[derive(Debug, Args)]
pub struct MemberSetArgs {
    /// The team: its name or id.
    #[arg(long)]
    pub team: String,
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
    /// The role.
    #[arg(long, value_enum, default_value_t = RoleArg::Member)]
    pub role: RoleArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `member remove`.
#[derive(Debug, Args)]
pub struct MemberRemoveArgs {
    /// The team: its name or id.
    #[arg(long)]
    pub team: String,
    /// The member's e-mail address.
    #[arg(long)]
    pub email: String,
}

/// `tollgate invitation …`
#[derive(Debug, Subcommand)]
pub enum InvitationCommand {
    /// Invite an address to a team and print the link's secret once (team owners and admins).
    Create(InvitationCreateArgs),
    /// List a team's invitations.
    List(MemberListArgs),
    /// Withdraw an invitation: its link stops working.
    Revoke(InvitationRevokeArgs),
}

/// Flags of `invitation create`.
#[derive(Debug, Args)]
pub struct InvitationCreateArgs {
    /// The team: its name or id.
    #[arg(long)]
    pub team: String,
    /// The address to invite.
    #[arg(long)]
    pub email: String,
    /// The role on joining.
    #[arg(long, value_enum, default_value_t = RoleArg::Member)]
    pub role: RoleArg,
    /// How long the link works, e.g. 7d (the default), at most 30d.
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Print JSON (with the link's secret `token` and the console path `link`).
    #[arg(long)]
    pub json: bool,
}

/// Flags of `invitation revoke`.
#[derive(Debug, Args)]
pub struct InvitationRevokeArgs {
    /// The invitation's id.
    pub id: i64,
    /// The team: its name or id.
    #[arg(long)]
    pub team: String,
}

/// `tollgate user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List every user (instance admins).
    List(JsonArgs),
    /// Disable a user: their sessions and tokens stop at once.
    Disable(UserArgs),
    /// Enable a disabled user again.
    Enable(UserArgs),
    /// Rename a user, or grant or take instance admin.
    Update(UserUpdateArgs),
}

/// Flags of `user update`.
#[derive(Debug, Args)]
pub struct UserUpdateArgs {
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
    /// New display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Grant (true) or take (false) instance admin.
    #[arg(long, value_name = "BOOL")]
    pub admin: Option<bool>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `user disable` / `user enable`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// The user's e-mail address (with --server: the token's own user, the default).
    #[arg(long)]
    pub email: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (see `tollgate token list`).
    pub id: i64,
    /// The user's e-mail address (with --server: the token's own user, the default).
    #[arg(long)]
    pub email: Option<String>,
}
