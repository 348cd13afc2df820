//! `tollgate alert …`: alert channels and test deliveries from the command line, through the
//! same rules as the console.

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;
use tollgate_alerts::Dispatcher;
use tollgate_console::rules::alerts::{self, ChannelDraft};
use tollgate_console::rules::{Actor, Rules};
use tollgate_core::time::format_ms;
use tollgate_store::Store;

use crate::admin::{cli_error, os_user};
use crate::alerts::{StoreAlerts, dispatcher_config};
use crate::cli::{AlertChannelCommand, AlertCommand};
use crate::config::Config;
use crate::{output, store};

/// The flags of `alert channel add` behind the rules' fields.
const CHANNEL_FLAGS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("url", "--webhook"),
    ("format", "--format"),
];

/// One channel as scripts see it.
#[derive(Debug, Serialize)]
struct ChannelLine {
    id: i64,
    name: String,
    format: String,
    url: String,
    created_by: String,
    created_at: String,
}

/// `tollgate alert …`.
pub async fn run(config: &Config, command: AlertCommand) -> anyhow::Result<()> {
    let store = store::open(config).await?;
    let result = match command {
        AlertCommand::Channel(AlertChannelCommand::Add(args)) => {
            let draft = ChannelDraft {
                name: args.name,
                url: args.webhook,
                format: Some(args.format.as_str().to_owned()),
            };
            add(config, store.as_ref(), draft, args.json).await
        }
        AlertCommand::Channel(AlertChannelCommand::List(args)) => {
            list(config, store.as_ref(), args.json).await
        }
        AlertCommand::Channel(AlertChannelCommand::Remove(args)) => {
            remove(config, store.as_ref(), args.id).await
        }
        AlertCommand::Test(args) => test(config, store.clone(), args.id, args.json).await,
    };
    store.close().await;
    result
}

async fn add(
    config: &Config,
    store: &dyn Store,
    draft: ChannelDraft,
    json: bool,
) -> anyhow::Result<()> {
    let master = config.master_key();
    let allowlist = config.upstream_allowlist();
    let rules = Rules {
        store,
        master_key: master.as_ref(),
        upstream_allowlist: &allowlist,
        own_listeners: &[],
    };
    let actor_name = os_user();
    let (record, secret) = alerts::create(&rules, &Actor::Operator(&actor_name), draft)
        .await
        .map_err(|e| cli_error(e, CHANNEL_FLAGS))?;
    if json {
        output::json(&json!({"id": record.id, "secret": secret.expose_secret()}))
    } else {
        output::note(&format!(
            "alert channel {} created (id {}). Its signing secret, shown once:",
            record.name, record.id,
        ));
        output::line(secret.expose_secret());
        Ok(())
    }
}

async fn list(config: &Config, store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let master = config.master_key();
    let rules = Rules::new(store).with_master_key(master.as_ref());
    let actor_name = os_user();
    let channels = alerts::list(&rules, &Actor::Operator(&actor_name))
        .await
        .map_err(|e| cli_error(e, &[]))?;
    let lines: Vec<ChannelLine> = channels
        .iter()
        .map(|c| ChannelLine {
            id: c.id,
            name: c.name.clone(),
            format: c.format.clone(),
            url: alerts::origin(&c.url),
            created_by: c.created_by.clone(),
            created_at: format_ms(c.created_at_ms),
        })
        .collect();
    if json {
        return output::json(&lines);
    }
    output::table(
        &["id", "name", "format", "url", "created by", "created at"],
        lines
            .into_iter()
            .map(|l| {
                vec![
                    l.id.to_string(),
                    l.name,
                    l.format,
                    l.url,
                    l.created_by,
                    l.created_at,
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn remove(config: &Config, store: &dyn Store, id: i64) -> anyhow::Result<()> {
    let master = config.master_key();
    let rules = Rules::new(store).with_master_key(master.as_ref());
    let actor_name = os_user();
    alerts::delete(&rules, &Actor::Operator(&actor_name), id)
        .await
        .map_err(|e| cli_error(e, &[]))?;
    output::line(&format!("alert channel {id} removed"));
    Ok(())
}

async fn test(config: &Config, store: Arc<dyn Store>, id: i64, json: bool) -> anyhow::Result<()> {
    let master = config.master_key();
    let rules = Rules::new(store.as_ref()).with_master_key(master.as_ref());
    let actor_name = os_user();
    let channel = alerts::openable(&rules, &Actor::Operator(&actor_name), id)
        .await
        .map_err(|e| cli_error(e, &[]))?;
    let dispatch = dispatcher_config(config, Vec::new());
    let storage = Arc::new(StoreAlerts::new(
        store.clone(),
        master,
        dispatch.instance.clone(),
    ));
    let dispatcher = Dispatcher::new(dispatch, storage.clone(), storage.clone(), storage)
        .map_err(anyhow::Error::msg)?;
    let attempt = dispatcher.send_test(&channel).await;
    let view = json!({
        "channel_id": attempt.channel_id,
        "dedup_key": attempt.dedup_key,
        "status": attempt.status.as_str(),
        "http_status": attempt.http_status,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
    });
    if json {
        output::json(&view)?;
    } else {
        output::line(&format!(
            "test alert to channel {id}: {}{}{}",
            attempt.status.as_str(),
            attempt
                .http_status
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default(),
            attempt
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
        ));
    }
    if attempt.status == tollgate_alerts::AttemptStatus::Delivered {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the test alert was not delivered"))
    }
}
