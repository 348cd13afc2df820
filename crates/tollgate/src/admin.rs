//! Administrative commands: they open the configured store, do their work and exit. A running
//! server sees their changes through the store revision within a second.

use std::collections::HashMap;

use anyhow::Context;
use serde::Serialize;
use tollgate_console::rules::keys::{self, Expiry, KeyChange, KeyDraft};
use tollgate_console::rules::routes::{self, RouteChange, RouteDraft};
use tollgate_console::rules::{Actor, RuleError, Rules};
use tollgate_core::RouteKind;
use tollgate_core::time::{format_ms, now_ms, parse_duration};
use tollgate_store::{KeyRecord, RouteRecord, Store};

use crate::cli::{KeyCommand, RouteCommand};
use crate::config::Config;
use crate::{output, store};

/// `tollgate migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = store::open_or_create(config).await?;
    if let Some(master) = config.master_key() {
        let done = crate::reseal::reseal_legacy(store.as_ref(), &master).await?;
        if done != crate::reseal::Resealed::default() {
            output::line(&format!(
                "sealed again, bound to their rows: {} key copies, {} route credentials, {} settings",
                done.keys, done.routes, done.settings
            ));
        }
    }
    output::line(&format!("store {} is up to date", store.backend()));
    store.close().await;
    Ok(())
}

/// `tollgate key …`.
pub async fn key(config: &Config, command: KeyCommand) -> anyhow::Result<()> {
    let store = store::open(config).await?;
    let result = match command {
        KeyCommand::Create(args) => create_key(config, store.as_ref(), args).await,
        KeyCommand::List(args) => list_keys(store.as_ref(), &args).await,
        KeyCommand::Revoke(args) => revoke_key(store.as_ref(), args.id, args.json).await,
        KeyCommand::Update(args) => update_key(config, store.as_ref(), args).await,
    };
    store.close().await;
    result
}

/// `tollgate route …`.
pub async fn route(config: &Config, command: RouteCommand) -> anyhow::Result<()> {
    let store = store::open(config).await?;
    let result = match command {
        RouteCommand::Add(args) => add_route(config, store.as_ref(), args).await,
        RouteCommand::List(args) => list_routes(store.as_ref(), args.json).await,
        RouteCommand::Update(args) => update_route(config, store.as_ref(), args).await,
        RouteCommand::Remove(args) => remove_route(store.as_ref(), &args.name).await,
    };
    store.close().await;
    result
}

/// A refused change as one line, naming the flag behind the refused field (`flags` maps the
/// rule's field names to this command's flags).
pub fn cli_error(e: RuleError, flags: &[(&str, &str)]) -> anyhow::Error {
    match e {
        RuleError::Invalid { field, message } => {
            let flag = flags
                .iter()
                .find(|(f, _)| *f == field)
                .map_or(field, |(_, flag)| *flag);
            let message = message
                .strip_prefix(field)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&message);
            anyhow::anyhow!("{flag}: {message}")
        }
        RuleError::Store(e) => e.into(),
        other => anyhow::anyhow!("{other}"),
    }
}

/// The flags of `key create` behind the key rules' fields.
const KEY_FLAGS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("description", "--description"),
    ("expires_in", "--expires"),
    ("route_ids", "--routes"),
    ("team_id", "--team"),
    ("models", "--models"),
];

/// A `--models` value as patterns; an empty value is no allow-list.
fn split_models(text: &str) -> Vec<String> {
    text.split(',').map(|p| p.trim().to_owned()).collect()
}

async fn update_key(
    config: &Config,
    store: &dyn Store,
    args: crate::cli::KeyUpdateArgs,
) -> anyhow::Result<()> {
    let models = args.models.as_deref().map(|m| {
        if m.trim().is_empty() {
            None
        } else {
            Some(split_models(m))
        }
    });
    let change = KeyChange {
        name: args.name.clone(),
        description: args.description.clone(),
        models,
        ..KeyChange::default()
    };
    let master = config.master_key();
    let rules = Rules::new(store).with_master_key(master.as_ref());
    let operator = os_user();
    let record = match keys::update(&rules, &Actor::Operator(&operator), args.id, change).await {
        Err(RuleError::NotFound(_)) => anyhow::bail!("no key with id {}", args.id),
        other => other.map_err(|e| cli_error(e, KEY_FLAGS))?,
    };
    if args.json {
        let names = route_names(store).await?;
        let view = with_models(store, vec![key_view(&record, &names, now_ms())]).await?;
        output::json(&view.first())
    } else {
        output::line(&format!("Updated key {} \"{}\".", record.id, record.name));
        Ok(())
    }
}

/// The flags of `route add` / `route update` behind the route rules' fields.
const ROUTE_FLAGS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("prefix", "--prefix"),
    ("upstream_url", "--upstream"),
    ("kind", "--kind"),
    ("connect_timeout_ms", "--connect-timeout"),
    ("timeout_ms", "--timeout"),
    ("upstream_key", "--upstream-key-env"),
];

fn route_error(e: RuleError) -> anyhow::Error {
    match e {
        RuleError::NotConfigured { message, .. } => {
            anyhow::anyhow!("--upstream-key-env: {message}")
        }
        other => cli_error(other, ROUTE_FLAGS),
    }
}

/// The audit actor of CLI changes: `cli:<os-user>`, the name the user database gives the
/// process's user (so a cron job or a container without `$USER` is still named), `$USER` only
/// where the user database has no entry.
pub fn os_user() -> String {
    let user = whoami::fallible::username()
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|name| !name.is_empty()))
        .or_else(|| {
            std::env::var("USERNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

/// One key as scripts see it.
#[derive(Debug, Serialize)]
struct KeyView {
    id: i64,
    name: String,
    description: String,
    team: String,
    prefix: String,
    status: &'static str,
    created_by: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    routes: Option<Vec<String>>,
    models: Option<Vec<String>>,
}

fn key_status(key: &KeyRecord, now: i64) -> &'static str {
    if key.revoked_at_ms.is_some() {
        "revoked"
    } else if key.expires_at_ms.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    }
}

fn key_view(key: &KeyRecord, route_names: &HashMap<i64, String>, now: i64) -> KeyView {
    KeyView {
        id: key.id,
        name: key.name.clone(),
        description: key.description.clone(),
        team: key.team_name.clone(),
        prefix: key.prefix.clone(),
        status: key_status(key, now),
        created_by: key.created_by.clone(),
        created_at: format_ms(key.created_at_ms),
        expires_at: key.expires_at_ms.map(format_ms),
        revoked_at: key.revoked_at_ms.map(format_ms),
        last_used_at: key.last_used_at_ms.map(format_ms),
        routes: key.route_ids.as_ref().map(|ids| {
            ids.iter()
                .map(|id| {
                    route_names
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| format!("#{id}"))
                })
                .collect()
        }),
        models: None,
    }
}

async fn with_models(store: &dyn Store, mut views: Vec<KeyView>) -> anyhow::Result<Vec<KeyView>> {
    let models = tollgate_console::rules::limits::key_models(store)
        .await
        .map_err(|e| cli_error(e, &[]))?;
    for v in &mut views {
        v.models = models.get(&v.id).cloned();
    }
    Ok(views)
}

async fn create_key(
    config: &Config,
    store: &dyn Store,
    args: crate::cli::KeyCreateArgs,
) -> anyhow::Result<()> {
    let team = store
        .team_by_name(&args.team)
        .await?
        .with_context(|| format!("team `{}` does not exist", args.team))?;
    let route_ids = match &args.routes {
        Some(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                let route = store
                    .route_by_name(name)
                    .await?
                    .with_context(|| format!("--routes: no route named `{name}`"))?;
                ids.push(route.id);
            }
            Some(ids)
        }
        None => None,
    };
    let draft = KeyDraft {
        team_id: Some(team.id),
        name: args.name.clone(),
        description: args.description.clone(),
        expiry: args.expires.clone().map_or(Expiry::Never, Expiry::In),
        route_ids,
        models: args
            .models
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(split_models),
    };
    let master = config.master_key();
    let rules = Rules::new(store).with_master_key(master.as_ref());
    let operator = os_user();
    let (record, key) = keys::create(&rules, &Actor::Operator(&operator), draft)
        .await
        .map_err(|e| cli_error(e, KEY_FLAGS))?;
    if args.json {
        output::json(
            &serde_json::json!({"id": record.id, "key": key.expose(), "prefix": record.prefix}),
        )
    } else {
        // The key alone on standard output (`KEY=$(tollgate key create …)`), the words beside it
        // on standard error.
        output::note(&format!(
            "Created key {} \"{}\" in team {}.",
            record.id, record.name, record.team_name
        ));
        output::line(key.expose());
        output::note("Store it now: it is shown only once.");
        Ok(())
    }
}

async fn route_names(store: &dyn Store) -> anyhow::Result<HashMap<i64, String>> {
    Ok(store
        .list_routes()
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect())
}

async fn list_keys(store: &dyn Store, args: &crate::cli::KeyListArgs) -> anyhow::Result<()> {
    let by_use = keys::UseFilter::new(args.unused, args.idle_days)
        .map_err(|e| cli_error(e, &[("idle_days", "--idle-days")]))?;
    let json = args.json;
    let team_id = match args.team.as_deref() {
        Some(name) => Some(
            store
                .team_by_name(name)
                .await?
                .with_context(|| format!("team `{name}` does not exist"))?
                .id,
        ),
        None => None,
    };
    let keys = store.list_keys(team_id).await?;
    let names = route_names(store).await?;
    let now = now_ms();
    let views: Vec<KeyView> = keys
        .iter()
        .filter(|k| by_use.keeps(k, now))
        .map(|k| key_view(k, &names, now))
        .collect();
    let views = with_models(store, views).await?;
    if json {
        return output::json(&views);
    }
    let rows = views
        .into_iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.name,
                v.team,
                v.prefix,
                v.status.to_owned(),
                v.created_at,
                v.expires_at.unwrap_or_else(|| "never".into()),
                v.last_used_at.unwrap_or_else(|| "never used".into()),
                v.routes.map_or_else(|| "all".into(), |r| r.join(",")),
                v.models.map_or_else(|| "all".into(), |m| m.join(",")),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "NAME",
            "TEAM",
            "KEY",
            "STATUS",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "ROUTES",
            "MODELS",
        ],
        rows,
    );
    Ok(())
}

async fn revoke_key(store: &dyn Store, id: i64, json: bool) -> anyhow::Result<()> {
    let operator = os_user();
    let record = match keys::revoke(&Rules::new(store), &Actor::Operator(&operator), id).await {
        Err(RuleError::NotFound(_)) => anyhow::bail!("no key with id {id}"),
        other => other.map_err(|e| cli_error(e, &[]))?,
    };
    if json {
        let names = route_names(store).await?;
        output::json(&key_view(&record, &names, now_ms()))
    } else {
        output::line(&format!("Revoked key {} \"{}\".", record.id, record.name));
        Ok(())
    }
}

/// One route as scripts see it.
#[derive(Debug, Serialize)]
struct RouteView {
    id: i64,
    name: String,
    prefix: String,
    upstream: String,
    kind: RouteKind,
    strip_prefix: bool,
    team: Option<String>,
    has_credential: bool,
    enabled: bool,
    connect_timeout_ms: i64,
    timeout_ms: i64,
}

fn route_view(route: &RouteRecord, teams: &HashMap<i64, String>) -> RouteView {
    RouteView {
        id: route.id,
        name: route.name.clone(),
        prefix: route.prefix.clone(),
        upstream: route.upstream_url.clone(),
        kind: route.kind,
        strip_prefix: route.strip_prefix,
        team: route
            .team_id
            .map(|t| teams.get(&t).cloned().unwrap_or_else(|| format!("#{t}"))),
        has_credential: route.sealed_credential.is_some(),
        enabled: route.enabled,
        connect_timeout_ms: route.connect_timeout_ms,
        timeout_ms: route.timeout_ms,
    }
}

/// A duration flag in whole milliseconds, as the rules take it. Never rounded up: a duration
/// under 1 ms is 0 ms, which the route rules refuse as the API does.
fn duration_ms(flag: &str, text: &str) -> anyhow::Result<i64> {
    let d = parse_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The upstream credential in environment variable `var`.
fn credential_from_env(var: &str) -> anyhow::Result<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("--upstream-key-env: environment variable {var} is not set"))
}

async fn add_route(
    config: &Config,
    store: &dyn Store,
    args: crate::cli::RouteAddArgs,
) -> anyhow::Result<()> {
    let connect_timeout_ms = duration_ms("--connect-timeout", &args.connect_timeout)?;
    let timeout_ms = duration_ms("--timeout", &args.timeout)?;
    let team_id = match &args.team {
        Some(name) => Some(
            store
                .team_by_name(name)
                .await?
                .with_context(|| format!("team `{name}` does not exist"))?
                .id,
        ),
        None => None,
    };
    let credential = args
        .upstream_key_env
        .as_deref()
        .map(credential_from_env)
        .transpose()?;
    let draft = RouteDraft {
        team_id,
        name: args.name.clone(),
        prefix: args.prefix.clone(),
        upstream_url: args.upstream.clone(),
        kind: Some(routes::parse_kind(args.kind.as_str()).map_err(route_error)?),
        strip_prefix: args.strip_prefix,
        connect_timeout_ms: Some(connect_timeout_ms),
        timeout_ms: Some(timeout_ms),
        enabled: None,
        credential,
    };
    let master = config.master_key();
    let rules = Rules::new(store).with_master_key(master.as_ref());
    let operator = os_user();
    let record = routes::create(&rules, &Actor::Operator(&operator), draft)
        .await
        .map_err(route_error)?;
    let teams = team_names(store).await?;
    if args.json {
        output::json(&route_view(&record, &teams))
    } else {
        output::line(&format!(
            "Added route {} \"{}\": {} → {} ({}).",
            record.id, record.name, record.prefix, record.upstream_url, record.kind
        ));
        Ok(())
    }
}

/// The route a command names: by id, by prefix (starting with `/`), or by name.
async fn find_route(store: &dyn Store, which: &str) -> anyhow::Result<RouteRecord> {
    if let Ok(id) = which.parse::<i64>()
        && let Some(route) = store.route_by_id(id).await?
    {
        return Ok(route);
    }
    if which.starts_with('/') {
        return store
            .list_routes()
            .await?
            .into_iter()
            .find(|r| r.prefix == which)
            .with_context(|| format!("no route has the prefix `{which}`"));
    }
    store
        .route_by_name(which)
        .await?
        .with_context(|| format!("no route named `{which}`"))
}

async fn update_route(
    config: &Config,
    store: &dyn Store,
    args: crate::cli::RouteUpdateArgs,
) -> anyhow::Result<()> {
    let current = find_route(store, &args.route).await?;
    let connect_timeout_ms = args
        .connect_timeout
        .as_deref()
        .map(|t| duration_ms("--connect-timeout", t))
        .transpose()?;
    let timeout_ms = args
        .timeout
        .as_deref()
        .map(|t| duration_ms("--timeout", t))
        .transpose()?;
    let credential = match (&args.upstream_key_env, args.clear_credential) {
        (Some(var), _) => Some(Some(credential_from_env(var)?)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let change = RouteChange {
        name: args.name,
        prefix: args.prefix,
        upstream_url: args.upstream,
        kind: args
            .kind
            .map(|k| routes::parse_kind(k.as_str()))
            .transpose()
            .map_err(route_error)?,
        strip_prefix: args.strip_prefix,
        connect_timeout_ms,
        timeout_ms,
        enabled: args.enabled,
        credential,
    };
    let master = config.master_key();
    let rules = Rules::new(store).with_master_key(master.as_ref());
    let operator = os_user();
    let updated = routes::update(&rules, &Actor::Operator(&operator), current.id, change)
        .await
        .map_err(route_error)?;
    let record = updated.route;
    let teams = team_names(store).await?;
    if args.json {
        return output::json(&route_view(&record, &teams));
    }
    output::line(&format!(
        "Updated route {} \"{}\": {} → {} ({}).",
        record.id, record.name, record.prefix, record.upstream_url, record.kind
    ));
    if updated.credential_dropped_by_move {
        output::line(
            "Its upstream credential was removed: the route now points at another host. Set one with --upstream-key-env.",
        );
    }
    Ok(())
}

async fn team_names(store: &dyn Store) -> anyhow::Result<HashMap<i64, String>> {
    Ok(store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

async fn list_routes(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let routes = store.list_routes().await?;
    let teams = team_names(store).await?;
    let views: Vec<RouteView> = routes.iter().map(|r| route_view(r, &teams)).collect();
    if json {
        return output::json(&views);
    }
    let rows = views
        .into_iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.name,
                v.prefix,
                v.upstream,
                v.kind.to_string(),
                if v.strip_prefix { "yes" } else { "no" }.into(),
                v.team.unwrap_or_else(|| "shared".into()),
                if v.has_credential { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "NAME",
            "PREFIX",
            "UPSTREAM",
            "KIND",
            "STRIP",
            "TEAM",
            "CREDENTIAL",
        ],
        rows,
    );
    Ok(())
}

async fn remove_route(store: &dyn Store, name: &str) -> anyhow::Result<()> {
    let route = store
        .route_by_name(name)
        .await?
        .with_context(|| format!("no route named `{name}`"))?;
    let operator = os_user();
    routes::delete(&Rules::new(store), &Actor::Operator(&operator), route.id)
        .await
        .map_err(|e| cli_error(e, &[]))?;
    output::line(&format!("Removed route \"{name}\"."));
    Ok(())
}
