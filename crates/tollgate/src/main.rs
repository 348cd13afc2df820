//! The `tollgate` binary: parses the command line, loads the configuration and runs one command.

use std::process::ExitCode;

use clap::Parser;

mod accounts;
mod admin;
mod alert_cmd;
mod alerts;
mod backend;
mod backup;
mod cli;
mod cli_prices;
mod cli_routing;
mod cli_team;
mod config;
mod config_toml;
mod demo;
mod estimate;
mod instance_lock;
mod limit;
mod limits;
mod master_key;
mod model_cmd;
mod output;
mod prices_cmd;
mod remote;
mod remote_cmd;
mod reseal;
mod retention;
mod serve;
mod store;
mod store_copy;
mod sync;
mod team_cmd;
mod tls;
mod token_cmd;
mod usage;

use backend::{Backend, Target};
use cli::{Cli, Command};
use config::{Config, FlagOverrides};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that print what the binary itself knows need no configuration: they work even
    // where the environment holds a broken setting.
    let standalone = match &cli.command {
        Command::Openapi => Some(output::print_openapi()),
        Command::Completions(args) => Some(output::print_completions(args.shell)),
        Command::Man => Some(output::print_man()),
        _ => None,
    };
    if let Some(result) = standalone {
        return finish(result);
    }
    // `--server` / `TOLLGATE_SERVER`: the command goes to a running console; no local
    // configuration is read and no store is opened.
    let remote = remote::from_flags(
        cli.server.as_deref(),
        cli.token.as_ref(),
        &[
            ("--config", cli.config.is_some()),
            ("--database-url", cli.database_url.is_some()),
            ("--data-dir", cli.data_dir.is_some()),
        ],
    );
    match remote {
        Err(e) => return finish(Err(e)),
        Ok(Some(remote)) => return finish(remote_cmd::run(cli.command, remote)),
        Ok(None) => {}
    }
    let serve_flags = match &cli.command {
        Command::Serve(args) => (args.gateway_listen, args.console_listen),
        _ => (None, None),
    };
    let flags = FlagOverrides {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        gateway_listen: serve_flags.0,
        console_listen: serve_flags.1,
    };
    let result = Config::load(cli.config.as_deref(), flags)
        .map_err(anyhow::Error::from)
        .and_then(|config| run(cli.command, config));
    finish(result)
}

/// The exit code of a command's result; a reader of standard output that went away early
/// (`| head`) is not a failure and prints nothing.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            output::error_line(&error);
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Serve(args) => serve::serve(config, args.ready_file).await,
            Command::Migrate => admin::migrate(&config).await,
            Command::Key(cmd) => admin::key(Backend::local(&config).await?, cmd).await,
            Command::Route(cmd) => admin::route(Backend::local(&config).await?, cmd).await,
            Command::Target(cmd) => model_cmd::target(Backend::local(&config).await?, cmd).await,
            Command::Model(cmd) => model_cmd::model(Backend::local(&config).await?, cmd).await,
            Command::Limit(cmd) => limit::run(Backend::local(&config).await?, cmd).await,
            Command::Config(args) => match args.format {
                cli::ConfigFormatArg::Json => output::print_config(&config),
                cli::ConfigFormatArg::Toml => {
                    config_toml::render(&config).map(|text| output::line(text.trim_end()))
                }
            },
            Command::Admin(cmd) => accounts::admin(&config, cmd).await,
            Command::Token(cmd) => accounts::token(&config, cmd).await,
            Command::Team(cmd) => team_cmd::team(Backend::local(&config).await?, cmd).await,
            Command::Member(cmd) => team_cmd::member(Backend::local(&config).await?, cmd).await,
            Command::Invitation(cmd) => {
                team_cmd::invitation(Backend::local(&config).await?, cmd).await
            }
            Command::User(cmd) => team_cmd::user(Backend::local(&config).await?, cmd).await,
            Command::Estimate(args) => estimate::run(&args),
            Command::Usage(cmd) => usage::run(Target::Local(&config), cmd).await,
            Command::Prices(cmd) => prices_cmd::run(Target::Local(&config), cmd).await,
            Command::Demo(args) => demo::run(&config, &args).await,
            Command::Sync(cmd) => sync::run(Target::Local(&config), cmd).await,
            Command::Alert(cmd) => alert_cmd::run(&config, cmd).await,
            Command::Backup(args) => backup::backup(&config, &args).await,
            Command::Restore(args) => backup::restore(&config, &args).await,
            Command::Store(cli::StoreCommand::Copy(args)) => store_copy::run(&config, &args).await,
            Command::MasterKey(cli::MasterKeyCommand::Rotate(args)) => {
                master_key::rotate(&config, &args).await
            }
            // Answered before the configuration is read; here for completeness only.
            Command::Openapi => output::print_openapi(),
            Command::Completions(args) => output::print_completions(args.shell),
            Command::Man => output::print_man(),
        }
    })
}
