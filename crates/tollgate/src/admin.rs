//! Administrative commands: they open the configured store, do their work and exit. A running
//! server sees their changes through the store revision within a second.

use std::collections::HashMap;

use anyhow::{Context, bail};
use serde::Serialize;
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::route_policy::{
    self, CredentialPlan, CredentialRequest, CurrentUpstream, UpstreamChange,
};
use tollgate_core::time::{format_ms, now_ms, parse_duration};
use tollgate_core::{ApiKey, RouteKind, route};
use tollgate_store::{KeyRecord, NewKey, NewRoute, RouteRecord, RouteUpdate, Store, StoreError};

use tollgate_console::audit::{self, Change};

use crate::cli::{KeyCommand, RouteCommand};
use crate::config::Config;
use crate::{output, store};

/// `tollgate migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = store::open(config).await?;
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
        KeyCommand::List(args) => list_keys(store.as_ref(), args.team.as_deref(), args.json).await,
        KeyCommand::Revoke(args) => revoke_key(store.as_ref(), args.id, args.json).await,
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

/// Audits a change made from the command line.
async fn cli_audit(store: &dyn Store, change: Change) {
    audit::record_as(store, os_user(), None, None, change).await;
}

/// The audit actor of CLI changes: `cli:<os-user>`.
pub fn os_user() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
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
    }
}

async fn create_key(
    config: &Config,
    store: &dyn Store,
    args: crate::cli::KeyCreateArgs,
) -> anyhow::Result<()> {
    let name = args.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        bail!("--name must be 1 to 100 characters");
    }
    if args.description.chars().count() > 1000 {
        bail!("--description must be at most 1000 characters");
    }
    let now = now_ms();
    let expires_at_ms = match &args.expires {
        Some(text) => {
            let d = parse_duration(text).map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            let ms = i64::try_from(d.as_millis())
                .ok()
                .and_then(|ms| now.checked_add(ms));
            Some(
                ms.filter(|ms| *ms < 253_402_300_799_000)
                    .context("--expires is too far in the future")?,
            )
        }
        None => None,
    };
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
                if route.team_id.is_some_and(|t| t != team.id) {
                    bail!("--routes: route `{name}` belongs to another team");
                }
                ids.push(route.id);
            }
            if ids.is_empty() {
                bail!("--routes needs at least one route name");
            }
            Some(ids)
        }
        None => None,
    };
    let key = ApiKey::generate();
    let record = store
        .create_key(NewKey {
            team_id: team.id,
            name: name.to_owned(),
            description: args.description.clone(),
            key_hash: key.hash(),
            prefix: key.display_prefix(),
            sealed_key: config
                .master_key()
                .map(|m| m.seal(key.expose().as_bytes(), SealedRow::ApiKey(&key.hash()))),
            created_by: Some(os_user()),
            expires_at_ms,
            route_ids,
        })
        .await?;
    cli_audit(
        store,
        Change::new("key.create", "key", record.id)
            .team(Some(record.team_id))
            .summary(format!(
                "key `{}` ({}) created in {}",
                record.name, record.prefix, record.team_name
            )),
    )
    .await;
    if args.json {
        output::json(
            &serde_json::json!({"id": record.id, "key": key.expose(), "prefix": record.prefix}),
        )
    } else {
        output::line(&format!(
            "Created key {} \"{}\" in team {}.",
            record.id, record.name, record.team_name
        ));
        output::line(key.expose());
        output::line("Store it now: it is shown only once.");
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

async fn list_keys(store: &dyn Store, team: Option<&str>, json: bool) -> anyhow::Result<()> {
    let team_id = match team {
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
    let views: Vec<KeyView> = keys.iter().map(|k| key_view(k, &names, now)).collect();
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
        ],
        rows,
    );
    Ok(())
}

async fn revoke_key(store: &dyn Store, id: i64, json: bool) -> anyhow::Result<()> {
    let record = match store.revoke_key(id, now_ms()).await {
        Err(StoreError::NotFound(_)) => bail!("no key with id {id}"),
        other => other?,
    };
    cli_audit(
        store,
        Change::new("key.revoke", "key", id)
            .team(Some(record.team_id))
            .summary(format!("key `{}` revoked", record.name)),
    )
    .await;
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

fn duration_ms(flag: &str, text: &str) -> anyhow::Result<i64> {
    let d = parse_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms > 3_600_000 {
        bail!("{flag}: at most 1h");
    }
    Ok(ms.max(1))
}

async fn add_route(
    config: &Config,
    store: &dyn Store,
    args: crate::cli::RouteAddArgs,
) -> anyhow::Result<()> {
    route::validate_name(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    route::validate_prefix(&args.prefix).map_err(|e| anyhow::anyhow!("--prefix: {e}"))?;
    route::validate_upstream(&args.upstream).map_err(|e| anyhow::anyhow!("--upstream: {e}"))?;
    let kind: RouteKind = args
        .kind
        .parse()
        .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
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
    // Read and checked before the route exists; sealed once it has the id it is bound to.
    let credential = args
        .upstream_key_env
        .as_deref()
        .map(|var| credential_from_env(config, var))
        .transpose()?;
    let mut record = store
        .create_route(NewRoute {
            team_id,
            name: args.name.clone(),
            prefix: args.prefix.clone(),
            upstream_url: args.upstream.trim_end_matches('/').to_owned(),
            kind,
            strip_prefix: args.strip_prefix,
            connect_timeout_ms,
            timeout_ms,
            sealed_credential: None,
        })
        .await?;
    if let Some((master, secret)) = credential {
        let sealed = master.seal(secret.as_bytes(), SealedRow::RouteCredential(record.id));
        record = store
            .update_route(
                record.id,
                RouteUpdate {
                    sealed_credential: Some(Some(sealed)),
                    ..RouteUpdate::default()
                },
            )
            .await?;
    }
    cli_audit(
        store,
        Change::new("route.create", "route", record.id)
            .team(record.team_id)
            .summary(format!(
                "route `{}` {} → {}",
                record.name, record.prefix, record.upstream_url
            )),
    )
    .await;
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

/// The upstream credential in environment variable `var`, with the master key that will seal it.
fn credential_from_env(config: &Config, var: &str) -> anyhow::Result<(MasterKey, String)> {
    let secret = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("--upstream-key-env: environment variable {var} is not set"))?;
    let master = config.master_key().context(
        "--upstream-key-env: upstream credentials are stored encrypted; set TOLLGATE_MASTER_KEY (32+ characters) first",
    )?;
    Ok((master, secret))
}

/// The credential in environment variable `var`, sealed for route `route_id`.
fn sealed_from_env(config: &Config, var: &str, route_id: i64) -> anyhow::Result<Vec<u8>> {
    let (master, secret) = credential_from_env(config, var)?;
    Ok(master.seal(secret.as_bytes(), SealedRow::RouteCredential(route_id)))
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
    if let Some(name) = &args.name {
        route::validate_name(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    }
    if let Some(prefix) = &args.prefix {
        route::validate_prefix(prefix).map_err(|e| anyhow::anyhow!("--prefix: {e}"))?;
    }
    let upstream = args
        .upstream
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned());
    if let Some(url) = &upstream {
        route::validate_upstream(url).map_err(|e| anyhow::anyhow!("--upstream: {e}"))?;
    }
    let kind = args
        .kind
        .as_deref()
        .map(str::parse::<RouteKind>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
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
        (Some(_), _) => CredentialRequest::Set,
        (None, true) => CredentialRequest::Remove,
        (None, false) => CredentialRequest::Unchanged,
    };
    // The command line acts for the operator of the instance: an instance admin.
    let plan = route_policy::plan_upstream_change(
        Some(CurrentUpstream {
            upstream_url: &current.upstream_url,
            has_credential: current.sealed_credential.is_some(),
        }),
        UpstreamChange {
            upstream_url: upstream.as_deref(),
            credential,
        },
        true,
    )
    .map_err(|e| anyhow::anyhow!("--upstream: {e}"))?;
    let sealed_credential = match plan.credential {
        CredentialPlan::Set => match &args.upstream_key_env {
            Some(var) => Some(Some(sealed_from_env(config, var, current.id)?)),
            None => None,
        },
        CredentialPlan::Clear => Some(None),
        CredentialPlan::Keep => None,
    };
    let record = store
        .update_route(
            current.id,
            RouteUpdate {
                name: args.name,
                prefix: args.prefix,
                upstream_url: upstream,
                kind,
                strip_prefix: args.strip_prefix,
                connect_timeout_ms,
                timeout_ms,
                enabled: args.enabled,
                sealed_credential,
                team_id: None,
            },
        )
        .await?;
    let mut summary = format!("route `{}` changed", record.name);
    if plan.credential_dropped_by_move {
        summary.push_str(
            "; its upstream credential was removed because the upstream moved to another host",
        );
    }
    cli_audit(
        store,
        Change::new("route.update", "route", record.id)
            .team(record.team_id)
            .summary(summary),
    )
    .await;
    let teams = team_names(store).await?;
    if args.json {
        return output::json(&route_view(&record, &teams));
    }
    output::line(&format!(
        "Updated route {} \"{}\": {} → {} ({}).",
        record.id, record.name, record.prefix, record.upstream_url, record.kind
    ));
    if plan.credential_dropped_by_move {
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
    let route = store.route_by_name(name).await?;
    match store.delete_route(name).await {
        Err(StoreError::NotFound(_)) => bail!("no route named `{name}`"),
        other => other?,
    }
    let (id, team) = route.map_or((name.to_owned(), None), |r| (r.id.to_string(), r.team_id));
    cli_audit(
        store,
        Change::new("route.delete", "route", id)
            .team(team)
            .summary(format!("route `{name}` deleted")),
    )
    .await;
    output::line(&format!("Removed route \"{name}\"."));
    Ok(())
}
