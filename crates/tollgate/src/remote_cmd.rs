//! Runs one command against a running console (`--server`): the data commands go through its
//! REST API; commands that only make sense beside a store or on the server's machine refuse.

use crate::backend::{Backend, Target};
use crate::cli::{Command, TokenCommand};
use crate::remote::Remote;
use crate::{admin, output, sync, team_cmd};

/// Runs `command` against `remote`.
pub fn run(command: Command, remote: Remote) -> anyhow::Result<()> {
    // Answered here without a runtime: these act on this machine only.
    match &command {
        Command::Serve(_) => return refuse("serve", "it runs a server on this machine"),
        Command::Migrate => return refuse("migrate", "it migrates a store this machine opens"),
        Command::Demo(_) => return refuse("demo", "it writes demo usage straight into a store"),
        Command::Config(_) => {
            return refuse("config", "it prints this machine's configuration");
        }
        Command::Admin(_) => {
            return refuse(
                "admin create",
                "the first admin is created on the server's machine; invite others with \
                 `tollgate invitation create`",
            );
        }
        Command::Estimate(args) => return crate::estimate::run(args),
        Command::Openapi => return output::print_openapi(),
        Command::Completions(args) => return output::print_completions(args.shell),
        Command::Man => return output::print_man(),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Key(cmd) => admin::key(Backend::Remote(remote), cmd).await,
            Command::Route(cmd) => admin::route(Backend::Remote(remote), cmd).await,
            Command::Target(cmd) => crate::model_cmd::target(Backend::Remote(remote), cmd).await,
            Command::Model(cmd) => crate::model_cmd::model(Backend::Remote(remote), cmd).await,
            Command::Limit(cmd) => crate::limit::run(Backend::Remote(remote), cmd).await,
            Command::Sync(cmd) => sync::run(Target::Remote(remote), cmd).await,
            Command::Usage(cmd) => crate::usage::run(Target::Remote(remote), cmd).await,
            Command::Prices(cmd) => crate::prices_cmd::run(Target::Remote(remote), cmd).await,
            Command::Alert(cmd) => crate::alert_cmd::run_remote(remote, cmd).await,
            Command::Team(cmd) => team_cmd::team(Backend::Remote(remote), cmd).await,
            Command::Member(cmd) => team_cmd::member(Backend::Remote(remote), cmd).await,
            Command::Invitation(cmd) => team_cmd::invitation(Backend::Remote(remote), cmd).await,
            Command::User(cmd) => team_cmd::user(Backend::Remote(remote), cmd).await,
            Command::Token(TokenCommand::Create(args)) => {
                crate::token_cmd::create_token(Backend::Remote(remote), args).await
            }
            Command::Token(TokenCommand::List(args)) => {
                crate::token_cmd::list_tokens(Backend::Remote(remote), args).await
            }
            Command::Token(TokenCommand::Revoke(args)) => {
                crate::token_cmd::revoke_token(Backend::Remote(remote), args).await
            }
            Command::Token(cmd @ (TokenCommand::CreateEdge(_) | TokenCommand::RevokeEdge(_))) => {
                crate::accounts::edge_remote(&remote, cmd).await
            }
            _ => anyhow::bail!("this command does not take --server (TOLLGATE_SERVER)"),
        }
    })
}

fn refuse(what: &str, why: &str) -> anyhow::Result<()> {
    anyhow::bail!("`tollgate {what}` does not take --server (TOLLGATE_SERVER): {why}")
}
