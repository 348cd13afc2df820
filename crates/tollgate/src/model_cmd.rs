//! `tollgate target …` and `tollgate model …`, on the local store or a server.

use std::collections::BTreeMap;

use anyhow::Context;
use tollgate_console::api::models::{ModelCreate, ModelView, TargetCreate, TargetView};
use tollgate_core::llm::{CredentialHeader, PoolMember};

use crate::backend::Backend;
use crate::cli_routing::{ModelAddArgs, ModelCommand, TargetAddArgs, TargetCommand};
use crate::output;

/// The flags of `target add` behind the rules' fields.
const TARGET_FLAGS: &[(&str, &str)] = &[
    ("name", "NAME"),
    ("provider", "--provider"),
    ("base_url", "--base-url"),
    ("credential", "--key-env"),
    ("credential_header", "--credential-header"),
    ("credential_format", "--credential-header"),
    ("query", "--query"),
    ("deployment", "--deployment"),
    ("weight", "--weight"),
    ("rpm", "--rpm"),
];

/// The flags of `model add` behind the rules' fields.
const MODEL_FLAGS: &[(&str, &str)] = &[
    ("name", "NAME"),
    ("pool", "--target"),
    ("aliases", "--alias"),
    ("fallbacks", "--fallback"),
    ("strategy", "--strategy"),
];

/// `tollgate target …`.
pub async fn target(backend: Backend, command: TargetCommand) -> anyhow::Result<()> {
    let result = match command {
        TargetCommand::Add(args) => add_target(&backend, *args).await,
        TargetCommand::List(args) => list_targets(&backend, args.json).await,
        TargetCommand::Remove(args) => remove_target(&backend, &args.name).await,
    };
    backend.close().await;
    result
}

/// `tollgate model …`.
pub async fn model(backend: Backend, command: ModelCommand) -> anyhow::Result<()> {
    let result = match command {
        ModelCommand::Add(args) => add_model(&backend, args).await,
        ModelCommand::List(args) => list_models(&backend, args.json).await,
        ModelCommand::Remove(args) => remove_model(&backend, &args.name).await,
    };
    backend.close().await;
    result
}

async fn add_target(backend: &Backend, args: TargetAddArgs) -> anyhow::Result<()> {
    let provider = args
        .provider
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--provider: {e}"))?;
    let credential = args
        .key_env
        .as_deref()
        .map(|var| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("--key-env: environment variable {var} is not set"))
        })
        .transpose()?;
    let header = args
        .credential_header
        .as_deref()
        .map(CredentialHeader::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--credential-header: {e}"))?;
    let mut query = BTreeMap::new();
    for pair in &args.query {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--query: `{pair}` is not name=value"))?;
        query.insert(name.to_owned(), value.to_owned());
    }
    let request = TargetCreate {
        name: args.name,
        provider,
        base_url: args.base_url,
        credential,
        credential_header: header.as_ref().map(|h| h.name.clone()),
        credential_format: header.map(|h| h.format),
        query,
        deployment: args.deployment,
        weight: Some(args.weight),
        rpm: args.rpm,
    };
    let view = backend
        .create_target(request)
        .await
        .map_err(|e| e.cli(TARGET_FLAGS))?;
    if args.json {
        return output::json(&view);
    }
    output::line(&format!(
        "Added target {} \"{}\": {} at {} (credential {}).",
        view.id,
        view.name,
        view.provider,
        view.base_url,
        if view.has_credential {
            format!("sent as `{}`", view.credential_header.name)
        } else {
            "none".to_owned()
        }
    ));
    Ok(())
}

async fn list_targets(backend: &Backend, json: bool) -> anyhow::Result<()> {
    let targets = backend.targets().await.map_err(|e| e.cli(&[]))?;
    if json {
        return output::json(&targets);
    }
    let rows = targets
        .into_iter()
        .map(|t: TargetView| {
            vec![
                t.id.to_string(),
                t.name,
                t.provider.to_string(),
                t.base_url,
                t.deployment.unwrap_or_default(),
                t.weight.to_string(),
                t.rpm.map_or_else(|| "-".into(), |r| r.to_string()),
                if t.has_credential {
                    t.credential_header.name
                } else {
                    "none".into()
                },
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "NAME",
            "PROVIDER",
            "BASE URL",
            "DEPLOYMENT",
            "WEIGHT",
            "RPM",
            "CREDENTIAL",
        ],
        rows,
    );
    Ok(())
}

async fn remove_target(backend: &Backend, name: &str) -> anyhow::Result<()> {
    let target = backend
        .targets()
        .await
        .map_err(|e| e.cli(&[]))?
        .into_iter()
        .find(|t| t.name == name)
        .with_context(|| format!("no target named `{name}`"))?;
    backend
        .delete_target(target.id)
        .await
        .map_err(|e| e.cli(&[]))?;
    output::line(&format!("Removed target \"{name}\"."));
    Ok(())
}

fn pool_member(text: &str) -> PoolMember {
    match text.split_once('=') {
        Some((target, model)) => PoolMember {
            target: target.to_owned(),
            upstream_model: Some(model.to_owned()),
        },
        None => PoolMember {
            target: text.to_owned(),
            upstream_model: None,
        },
    }
}

async fn add_model(backend: &Backend, args: ModelAddArgs) -> anyhow::Result<()> {
    let strategy = args
        .strategy
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--strategy: {e}"))?;
    let request = ModelCreate {
        name: args.name,
        pool: args.targets.iter().map(|t| pool_member(t)).collect(),
        aliases: args.aliases,
        fallbacks: args.fallbacks,
        strategy: Some(strategy),
    };
    let view = backend
        .create_model(request)
        .await
        .map_err(|e| e.cli(MODEL_FLAGS))?;
    if args.json {
        return output::json(&view);
    }
    output::line(&format!(
        "Added model {} \"{}\" served by {}.",
        view.id,
        view.name,
        pool_text(&view)
    ));
    Ok(())
}

fn pool_text(view: &ModelView) -> String {
    view.pool
        .iter()
        .map(|m| match &m.upstream_model {
            Some(model) => format!("{}={model}", m.target),
            None => m.target.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn list_models(backend: &Backend, json: bool) -> anyhow::Result<()> {
    let models = backend.models().await.map_err(|e| e.cli(&[]))?;
    if json {
        return output::json(&models);
    }
    let rows = models
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.name.clone(),
                pool_text(m),
                m.strategy.as_str().to_owned(),
                m.aliases.join(","),
                m.fallbacks.join(","),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "POOL", "STRATEGY", "ALIASES", "FALLBACKS"],
        rows,
    );
    Ok(())
}

async fn remove_model(backend: &Backend, name: &str) -> anyhow::Result<()> {
    let model = backend
        .models()
        .await
        .map_err(|e| e.cli(&[]))?
        .into_iter()
        .find(|m| m.name == name)
        .with_context(|| format!("no model named `{name}`"))?;
    backend
        .delete_model(model.id)
        .await
        .map_err(|e| e.cli(&[]))?;
    output::line(&format!("Removed model \"{name}\"."));
    Ok(())
}
