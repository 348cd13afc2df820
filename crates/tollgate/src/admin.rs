//! Administrative commands: they open the configured store, do their work and exit. A running
//! server sees their changes through the store revision within a second.

use std::collections::HashMap;

use anyhow::Context;
use serde::Serialize;
use tollgate_console::api::keys::{KeyCreate, KeyPatch};
use tollgate_console::api::routes::{RouteCreate, RoutePatch};
use tollgate_console::api::views::{KeyView as ApiKeyView, RouteView as ApiRouteView};
use tollgate_console::rules::RuleError;
use tollgate_console::rules::routes;
use tollgate_core::RouteKind;
use tollgate_core::time::{format_ms, now_ms, parse_duration};

use crate::backend::{Backend, Failure};
use crate::cli::KeyCommand;
use crate::cli_routing::RouteCommand;
use crate::config::Config;
use crate::{output, store};

/// `tollgate migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = store::open_or_create(config).await?;
    if let Some(master) = config.master_key() {
        let done = crate::reseal::reseal_legacy(store.as_ref(), &master).await?;
        if done != crate::reseal::Resealed::default() {
            output::line(&format!(
                "sealed again, bound to their rows: {} key copies, {} route credentials, {} \
                 settings; sealed: {} alert channel URLs",
                done.keys, done.routes, done.settings, done.alert_channel_urls
            ));
        }
    } else {
        crate::reseal::warn_unsealed(store.as_ref()).await?;
    }
    output::line(&format!("store {} is up to date", store.backend()));
    store.close().await;
    Ok(())
}

/// `tollgate key …`, on the local store or a server.
pub async fn key(backend: Backend, command: KeyCommand) -> anyhow::Result<()> {
    let result = match command {
        KeyCommand::Create(args) => create_key(&backend, args).await,
        KeyCommand::List(args) => list_keys(&backend, &args).await,
        KeyCommand::Revoke(args) => revoke_key(&backend, args.id, args.json).await,
        KeyCommand::Update(args) => update_key(&backend, args).await,
    };
    backend.close().await;
    result
}

/// `tollgate route …`, on the local store or a server.
pub async fn route(backend: Backend, command: RouteCommand) -> anyhow::Result<()> {
    let result = match command {
        RouteCommand::Add(args) => add_route(&backend, args).await,
        RouteCommand::List(args) => list_routes(&backend, args.json).await,
        RouteCommand::Update(args) => update_route(&backend, args).await,
        RouteCommand::Remove(args) => remove_route(&backend, &args.name).await,
    };
    backend.close().await;
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
    ("expires_at", "--expires"),
    ("route_ids", "--routes"),
    ("team_id", "--team"),
    ("models", "--models"),
];

/// A `--models` value as patterns; an empty value is no allow-list.
fn split_models(text: &str) -> Vec<String> {
    text.split(',').map(|p| p.trim().to_owned()).collect()
}

async fn update_key(backend: &Backend, args: crate::cli::KeyUpdateArgs) -> anyhow::Result<()> {
    let models = args.models.as_deref().map(|m| {
        if m.trim().is_empty() {
            None
        } else {
            Some(split_models(m))
        }
    });
    let expires_at = match args.expires.as_deref().map(str::trim) {
        None => None,
        Some("never") => Some(None),
        Some(text) => Some(
            tollgate_console::rules::expiry_from("expires_in", Some(text), now_ms())
                .map_err(|e| Failure::from(e).cli(KEY_FLAGS))?,
        ),
    };
    let route_ids = match &args.routes {
        None => None,
        Some(names) if names.len() == 1 && names[0].trim() == "all" => Some(None),
        Some(names) => Some(Some(route_ids_of(backend, names).await?)),
    };
    let patch = KeyPatch {
        name: args.name.clone(),
        description: args.description.clone(),
        expires_at,
        route_ids,
        models,
    };
    let id = args.id;
    let view = backend
        .update_key(id, patch)
        .await
        .map_err(|e| e.cli_or(KEY_FLAGS, || format!("no key with id {id}")))?;
    if args.json {
        let names = route_names(backend).await?;
        output::json(&key_view(view, &names))
    } else {
        output::line(&format!("Updated key {} \"{}\".", view.id, view.name));
        Ok(())
    }
}

/// The ids of the routes `names` names (ids and names both accepted).
async fn route_ids_of(backend: &Backend, names: &[String]) -> anyhow::Result<Vec<i64>> {
    let routes = backend.routes().await.map_err(|e| e.cli(&[]))?;
    let mut ids = Vec::with_capacity(names.len());
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let route = routes
            .iter()
            .find(|r| r.name == name)
            .with_context(|| format!("--routes: no route named `{name}`"))?;
        ids.push(route.id);
    }
    Ok(ids)
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
    ("credential_header", "--credential-header"),
    ("credential_format", "--credential-header"),
];

/// A refused route change; a missing master key is blamed on the credential's flag.
fn route_error(e: Failure) -> anyhow::Error {
    match e {
        Failure::Refused { detail, .. } if detail.code == "no_master_key" => {
            anyhow::anyhow!("--upstream-key-env: {}", detail.message)
        }
        other => other.cli(ROUTE_FLAGS),
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
    status: String,
    created_by: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    routes: Option<Vec<String>>,
    models: Option<Vec<String>>,
}

/// The CLI's view of a key the API (or the local rules) answered with: times as RFC 3339,
/// routes by name.
fn key_view(key: ApiKeyView, route_names: &HashMap<i64, String>) -> KeyView {
    KeyView {
        id: key.id,
        name: key.name,
        description: key.description,
        team: key.team,
        prefix: key.prefix,
        status: key.status,
        created_by: key.created_by,
        created_at: format_ms(key.created_at),
        expires_at: key.expires_at.map(format_ms),
        revoked_at: key.revoked_at.map(format_ms),
        last_used_at: key.last_used_at.map(format_ms),
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
        models: key.models,
    }
}

async fn create_key(backend: &Backend, args: crate::cli::KeyCreateArgs) -> anyhow::Result<()> {
    let team_id = backend.team_id(&args.team).await?;
    let route_ids = match &args.routes {
        Some(names) => Some(route_ids_of(backend, names).await?),
        None => None,
    };
    let request = KeyCreate {
        team_id: Some(team_id),
        name: args.name.clone(),
        description: args.description.clone(),
        expires_in: args.expires.clone(),
        expires_at: None,
        route_ids,
        models: args
            .models
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(split_models),
    };
    let created = backend
        .create_key(request)
        .await
        .map_err(|e| e.cli(KEY_FLAGS))?;
    if args.json {
        output::json(
            &serde_json::json!({"id": created.view.id, "key": created.key, "prefix": created.view.prefix}),
        )
    } else {
        // The key alone on standard output (`KEY=$(tollgate key create …)`), the words beside it
        // on standard error.
        output::note(&format!(
            "Created key {} \"{}\" in team {}.",
            created.view.id, created.view.name, created.view.team
        ));
        output::line(&created.key);
        output::note("Store it now: it is shown only once.");
        Ok(())
    }
}

async fn route_names(backend: &Backend) -> anyhow::Result<HashMap<i64, String>> {
    Ok(backend
        .routes()
        .await
        .map_err(|e| e.cli(&[]))?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect())
}

async fn list_keys(backend: &Backend, args: &crate::cli::KeyListArgs) -> anyhow::Result<()> {
    let team_id = match args.team.as_deref() {
        Some(name) => Some(backend.team_id(name).await?),
        None => None,
    };
    let keys = backend
        .keys(team_id, args.unused, args.idle_days)
        .await
        .map_err(|e| e.cli(&[("idle_days", "--idle-days"), ("unused", "--unused")]))?;
    let names = route_names(backend).await?;
    let views: Vec<KeyView> = keys.into_iter().map(|k| key_view(k, &names)).collect();
    if args.json {
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
                v.status,
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

async fn revoke_key(backend: &Backend, id: i64, json: bool) -> anyhow::Result<()> {
    let view = backend
        .revoke_key(id)
        .await
        .map_err(|e| e.cli_or(&[], || format!("no key with id {id}")))?;
    if json {
        let names = route_names(backend).await?;
        output::json(&key_view(view, &names))
    } else {
        output::line(&format!("Revoked key {} \"{}\".", view.id, view.name));
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

fn route_view(route: ApiRouteView, teams: &HashMap<i64, String>) -> RouteView {
    RouteView {
        id: route.id,
        name: route.name,
        prefix: route.prefix,
        upstream: route.upstream_url,
        kind: route.kind,
        strip_prefix: route.strip_prefix,
        team: route
            .team_id
            .map(|t| teams.get(&t).cloned().unwrap_or_else(|| format!("#{t}"))),
        has_credential: route.has_credential,
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

/// A `--credential-header` value, `Name: format` with `{key}` for the secret.
fn credential_header(text: &str) -> anyhow::Result<tollgate_core::llm::CredentialHeader> {
    tollgate_core::llm::CredentialHeader::parse(text)
        .map_err(|e| anyhow::anyhow!("--credential-header: {e}"))
}

fn route_kind(kind: crate::cli::RouteKindArg) -> anyhow::Result<RouteKind> {
    routes::parse_kind(kind.as_str()).map_err(|e| route_error(e.into()))
}

async fn add_route(
    backend: &Backend,
    args: crate::cli_routing::RouteAddArgs,
) -> anyhow::Result<()> {
    let connect_timeout_ms = duration_ms("--connect-timeout", &args.connect_timeout)?;
    let timeout_ms = duration_ms("--timeout", &args.timeout)?;
    let team_id = match &args.team {
        Some(name) => Some(backend.team_id(name).await?),
        None => None,
    };
    let credential = args
        .upstream_key_env
        .as_deref()
        .map(credential_from_env)
        .transpose()?;
    let header = args
        .credential_header
        .as_deref()
        .map(credential_header)
        .transpose()?;
    let request = RouteCreate {
        team_id,
        name: args.name.clone(),
        prefix: args.prefix.clone(),
        upstream_url: match (&args.upstream, args.kind) {
            (Some(url), _) => url.clone(),
            (None, crate::cli::RouteKindArg::Llm) => String::new(),
            (None, _) => anyhow::bail!("--upstream: needed by every route kind but llm"),
        },
        kind: Some(route_kind(args.kind)?),
        strip_prefix: args.strip_prefix,
        connect_timeout_ms: Some(connect_timeout_ms),
        timeout_ms: Some(timeout_ms),
        enabled: None,
        upstream_key: credential,
        credential_header: header.as_ref().map(|h| h.name.clone()),
        credential_format: header.map(|h| h.format),
    };
    let record = backend.create_route(request).await.map_err(route_error)?;
    if args.json {
        let teams = team_names(backend).await?;
        output::json(&route_view(record, &teams))
    } else {
        output::line(&format!(
            "Added route {} \"{}\": {} → {} ({}).",
            record.id, record.name, record.prefix, record.upstream_url, record.kind
        ));
        Ok(())
    }
}

/// The route a command names: by id, by prefix (starting with `/`), or by name.
async fn find_route(backend: &Backend, which: &str) -> anyhow::Result<ApiRouteView> {
    let mut routes = backend.routes().await.map_err(|e| e.cli(&[]))?;
    let by_id = which
        .parse::<i64>()
        .ok()
        .and_then(|id| routes.iter().position(|r| r.id == id));
    let found = if let Some(i) = by_id {
        Some(i)
    } else if which.starts_with('/') {
        Some(
            routes
                .iter()
                .position(|r| r.prefix == which)
                .with_context(|| format!("no route has the prefix `{which}`"))?,
        )
    } else {
        routes.iter().position(|r| r.name == which)
    };
    let index = found.with_context(|| format!("no route named `{which}`"))?;
    Ok(routes.swap_remove(index))
}

async fn update_route(
    backend: &Backend,
    args: crate::cli_routing::RouteUpdateArgs,
) -> anyhow::Result<()> {
    let current = find_route(backend, &args.route).await?;
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
    let credential_kept = credential.is_none();
    let header = match args.credential_header.as_deref() {
        None => None,
        Some("default") => Some(None),
        Some(text) => Some(Some(credential_header(text)?)),
    };
    let patch = RoutePatch {
        name: args.name,
        prefix: args.prefix,
        upstream_url: args.upstream,
        kind: args.kind.map(route_kind).transpose()?,
        strip_prefix: args.strip_prefix,
        connect_timeout_ms,
        timeout_ms,
        enabled: args.enabled,
        upstream_key: credential,
        credential_format: header
            .as_ref()
            .and_then(|h| h.as_ref().map(|h| h.format.clone())),
        credential_header: header.map(|h| h.map(|h| h.name)),
    };
    let record = backend
        .update_route(current.id, patch)
        .await
        .map_err(route_error)?;
    // The rules drop a credential when the route moves to another host and the same change sets
    // none: the only way one disappears while the command left it alone.
    let credential_dropped_by_move =
        credential_kept && current.has_credential && !record.has_credential;
    if args.json {
        let teams = team_names(backend).await?;
        return output::json(&route_view(record, &teams));
    }
    output::line(&format!(
        "Updated route {} \"{}\": {} → {} ({}).",
        record.id, record.name, record.prefix, record.upstream_url, record.kind
    ));
    if credential_dropped_by_move {
        output::line(
            "Its upstream credential was removed: the route now points at another host. Set one with --upstream-key-env.",
        );
    }
    Ok(())
}

async fn team_names(backend: &Backend) -> anyhow::Result<HashMap<i64, String>> {
    Ok(backend
        .teams()
        .await
        .map_err(|e| e.cli(&[]))?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

async fn list_routes(backend: &Backend, json: bool) -> anyhow::Result<()> {
    let routes = backend.routes().await.map_err(|e| e.cli(&[]))?;
    let teams = team_names(backend).await?;
    let views: Vec<RouteView> = routes.into_iter().map(|r| route_view(r, &teams)).collect();
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

async fn remove_route(backend: &Backend, name: &str) -> anyhow::Result<()> {
    let route = backend
        .routes()
        .await
        .map_err(|e| e.cli(&[]))?
        .into_iter()
        .find(|r| r.name == name)
        .with_context(|| format!("no route named `{name}`"))?;
    backend
        .delete_route(route.id)
        .await
        .map_err(|e| e.cli(&[]))?;
    output::line(&format!("Removed route \"{name}\"."));
    Ok(())
}
