//! Console accounts from the command line: the first admin (also from the environment at the
//! first start) and personal access tokens. Every change is audited as `cli:<os-user>`.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use reqwest::Method;
use secrecy::ExposeSecret;
use tollgate_console::api::edge::{EdgeTokenCreate, EdgeTokenCreated, EdgeTokenView};
use tollgate_console::audit::{self, Change};
use tollgate_console::auth::{check_password_strength, hash_password, normalize_email};
use tollgate_console::error::ApiError;
use tollgate_console::rules::{Actor, Rules, edge};
use tollgate_store::{NewUser, Store};

use crate::admin::{cli_error as rule_error, os_user};
use crate::backend::Backend;
use crate::cli::{AdminCommand, TokenCommand};
use crate::config::Config;
use crate::remote::Remote;
use crate::{output, store};

/// An API-layer error as one CLI line.
fn cli_error(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Creates an instance admin with an already-checked password, audited as `actor`.
async fn create_admin(
    store: &dyn Store,
    email: &str,
    name: Option<&str>,
    password: String,
    actor: String,
) -> anyhow::Result<i64> {
    let email = normalize_email(email).map_err(cli_error)?;
    check_password_strength(&password, &email).map_err(cli_error)?;
    if store.user_by_email(&email).await?.is_some() {
        bail!("a user {email} already exists");
    }
    let hash = hash_password(password).await.map_err(cli_error)?;
    let display_name = name.map_or_else(
        || email.split('@').next().unwrap_or_default().to_owned(),
        str::to_owned,
    );
    let user = store
        .create_user(NewUser {
            email: email.clone(),
            display_name,
            password_hash: Some(hash),
            is_admin: true,
        })
        .await?;
    // The first admin owns the default team, so that it has an owner from the start.
    if let Some(team) = store.team_by_name(tollgate_store::DEFAULT_TEAM).await?
        && store.list_members(team.id).await?.is_empty()
    {
        store
            .set_member(team.id, user.id, tollgate_core::Role::Owner)
            .await?;
    }
    let change = Change::new("user.create", "user", user.id)
        .summary(format!("instance admin {email} created"));
    audit::record_as(store, actor, None, None, change).await;
    Ok(user.id)
}

/// Creates the first admin from `TOLLGATE_ADMIN_EMAIL` / `TOLLGATE_ADMIN_PASSWORD` when the store has no user yet.
pub async fn bootstrap_admin(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) else {
        return Ok(());
    };
    if store.count_users().await? > 0 {
        return Ok(());
    }
    create_admin(
        store,
        email,
        None,
        password.expose_secret().to_owned(),
        "system".into(),
    )
    .await
    .context("admin_email / admin_password")?;
    tracing::info!("first admin created from the configuration");
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("no password given on standard input");
    }
    Ok(password)
}

/// `tollgate admin …`.
pub async fn admin(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create(args) => {
            // Validate before touching the store.
            let email = normalize_email(&args.email).map_err(cli_error)?;
            let password = read_password()?;
            check_password_strength(&password, &email).map_err(cli_error)?;
            let store = store::open(config).await?;
            let result = create_admin(
                store.as_ref(),
                &email,
                args.name.as_deref(),
                password,
                os_user(),
            )
            .await;
            store.close().await;
            let id = result?;
            output::line(&format!("admin {email} created (user {id})"));
            Ok(())
        }
    }
}

/// `tollgate token …`.
pub async fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => {
            if let Some(email) = &args.email {
                normalize_email(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            }
            if let Some(text) = &args.expires {
                tollgate_core::time::parse_duration(text)
                    .map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            }
            crate::token_cmd::create_token(Backend::local(config).await?, args).await
        }
        TokenCommand::List(args) => {
            crate::token_cmd::list_tokens(Backend::local(config).await?, args).await
        }
        TokenCommand::Revoke(args) => {
            crate::token_cmd::revoke_token(Backend::local(config).await?, args).await
        }
        TokenCommand::CreateEdge(args) => {
            if let Some(text) = &args.expires {
                tollgate_core::time::parse_duration(text)
                    .map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            }
            let store = store::open(config).await?;
            let operator = os_user();
            let result = edge::create(
                &Rules::new(store.as_ref()),
                &Actor::Operator(&operator),
                &args.name,
                args.expires.as_deref(),
            )
            .await
            .map_err(|e| rule_error(e, &[("name", "--name"), ("expires_in", "--expires")]));
            store.close().await;
            let (token, secret) = result?;
            print_edge_created(
                token.id,
                &token.name,
                &token.prefix,
                secret.expose(),
                args.json,
            )
        }
        TokenCommand::RevokeEdge(args) => {
            let store = store::open(config).await?;
            let operator = os_user();
            let result = edge::revoke(
                &Rules::new(store.as_ref()),
                &Actor::Operator(&operator),
                args.id,
            )
            .await
            .map_err(|e| rule_error(e, &[("id", "--id")]));
            store.close().await;
            let token = result?;
            output::line(&format!("edge token {} `{}` revoked", token.id, token.name));
            Ok(())
        }
    }
}

/// A new edge token: the secret alone on standard output (or JSON), the words on standard error.
fn print_edge_created(
    id: i64,
    name: &str,
    prefix: &str,
    secret: &str,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return output::json(&serde_json::json!({"id": id, "token": secret, "prefix": prefix}));
    }
    output::line(secret);
    output::note(&format!(
        "edge token {id} `{name}`: reads only the edge snapshot and change feed; shown once, keep it safe"
    ));
    Ok(())
}

/// `tollgate token create-edge | revoke-edge` against a server (instance admins).
pub async fn edge_remote(remote: &Remote, command: TokenCommand) -> anyhow::Result<()> {
    const FLAGS: &[(&str, &str)] = &[("name", "--name"), ("expires_in", "--expires")];
    match command {
        TokenCommand::CreateEdge(args) => {
            let body = EdgeTokenCreate {
                name: args.name,
                expires_in: args.expires,
            };
            let created: EdgeTokenCreated = remote
                .send(Method::POST, "api/v1/edge/tokens", &body)
                .await
                .map_err(|e| e.cli(FLAGS))?;
            print_edge_created(
                created.view.id,
                &created.view.name,
                &created.view.prefix,
                &created.token,
                args.json,
            )
        }
        TokenCommand::RevokeEdge(args) => {
            let id = args.id;
            let tokens: Vec<EdgeTokenView> = remote
                .get("api/v1/edge/tokens")
                .await
                .map_err(|e| e.cli(&[]))?;
            let name = tokens
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| t.name)
                .with_context(|| format!("--id: no edge token with id {id}"))?;
            remote
                .delete(&format!("api/v1/edge/tokens/{id}"))
                .await
                .map_err(|e| e.cli(&[("id", "--id")]))?;
            output::line(&format!("edge token {id} `{name}` revoked"));
            Ok(())
        }
        _ => anyhow::bail!("not an edge token command"),
    }
}
