//! `tollgate alert …`: alert channels and test deliveries from the command line, through the
//! same rules as the console, or on a server through its API (`--server`).

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;
use tollgate_alerts::Dispatcher;
use tollgate_console::rules::alerts::{self, ChannelDraft};
use tollgate_console::rules::{Actor, Rules};
use tollgate_core::time::format_ms;
use tollgate_store::Store;

use reqwest::Method;
use tollgate_console::api::alerts::{ChannelCreate, ChannelCreated, ChannelList, TestDelivery};

use crate::admin::{cli_error, os_user};
use crate::alerts::{StoreAlerts, dispatcher_config};
use crate::cli::{AlertChannelCommand, AlertCommand};
use crate::config::Config;
use crate::remote::Remote;
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

/// The secret of a new channel alone on standard output (or JSON).
fn print_added(id: i64, name: &str, secret: &str, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&json!({"id": id, "secret": secret}))
    } else {
        output::note(&format!(
            "alert channel {name} created (id {id}). Its signing secret, shown once:"
        ));
        output::line(secret);
        Ok(())
    }
}

fn print_channels(lines: Vec<ChannelLine>, json: bool) -> anyhow::Result<()> {
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

/// One test attempt, as scripts and people see it; an undelivered one fails the command.
struct TestOutcome {
    channel_id: i64,
    dedup_key: String,
    status: String,
    http_status: Option<i32>,
    latency_ms: i64,
    error: Option<String>,
}

fn print_test(id: i64, t: &TestOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&json!({
            "channel_id": t.channel_id,
            "dedup_key": t.dedup_key,
            "status": t.status,
            "http_status": t.http_status,
            "latency_ms": t.latency_ms,
            "error": t.error,
        }))?;
    } else {
        output::line(&format!(
            "test alert to channel {id}: {}{}{}",
            t.status,
            t.http_status
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default(),
            t.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
        ));
    }
    if t.status == "delivered" {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the test alert was not delivered"))
    }
}

/// A serialised enum's word (`slack`, `gave_up`).
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `tollgate alert …` against a server (instance admins): its own delivery settings apply.
pub async fn run_remote(remote: Remote, command: AlertCommand) -> anyhow::Result<()> {
    match command {
        AlertCommand::Channel(AlertChannelCommand::Add(args)) => {
            let body = ChannelCreate {
                name: args.name,
                url: args.webhook,
                format: Some(args.format.as_str().to_owned()),
            };
            let created: ChannelCreated = remote
                .send(Method::POST, "api/v1/alerts/channels", &body)
                .await
                .map_err(|e| e.cli(CHANNEL_FLAGS))?;
            print_added(
                created.channel.id,
                &created.channel.name,
                &created.secret,
                args.json,
            )
        }
        AlertCommand::Channel(AlertChannelCommand::List(args)) => {
            let list: ChannelList = remote
                .get("api/v1/alerts/channels")
                .await
                .map_err(|e| e.cli(&[]))?;
            let lines = list
                .channels
                .into_iter()
                .map(|c| ChannelLine {
                    id: c.id,
                    format: word(&c.format),
                    name: c.name,
                    url: c.url,
                    created_by: c.created_by,
                    created_at: format_ms(c.created_at),
                })
                .collect();
            print_channels(lines, args.json)
        }
        AlertCommand::Channel(AlertChannelCommand::Remove(args)) => {
            let id = args.id;
            remote
                .delete(&format!("api/v1/alerts/channels/{id}"))
                .await
                .map_err(|e| e.cli(&[]))?;
            output::line(&format!("alert channel {id} removed"));
            Ok(())
        }
        AlertCommand::Test(args) => {
            let id = args.id;
            let done: TestDelivery = remote
                .post_empty(&format!("api/v1/alerts/channels/{id}/test"))
                .await
                .map_err(|e| e.cli(&[]))?;
            let d = done.delivery;
            let outcome = TestOutcome {
                channel_id: d.channel_id,
                dedup_key: d.dedup_key,
                status: word(&d.status),
                http_status: d.http_status,
                latency_ms: d.latency_ms,
                error: d.error,
            };
            print_test(id, &outcome, args.json)
        }
    }
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
    print_added(record.id, &record.name, secret.expose_secret(), json)
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
            url: alerts::shown_url(c),
            created_by: c.created_by.clone(),
            created_at: format_ms(c.created_at_ms),
        })
        .collect();
    print_channels(lines, json)
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
    let outcome = TestOutcome {
        channel_id: attempt.channel_id,
        dedup_key: attempt.dedup_key.clone(),
        status: attempt.status.as_str().to_owned(),
        http_status: attempt.http_status.map(i32::from),
        latency_ms: i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
        error: attempt.error.clone(),
    };
    print_test(id, &outcome, json)
}
