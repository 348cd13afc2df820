//! Alert channels: validation, the signing secret (made here, shown once, sealed with the master
//! key), who may (instance admins only: a webhook URL is itself a credential) and the audit entry.
//! The console's handlers, the command line and the server's dispatcher share these functions.

use secrecy::{ExposeSecret, SecretString};
use tollgate_alerts::{Attempt, Channel, ChannelFormat, WebhookUrl, new_secret};
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::upstream::{TargetHost, check_addresses};
use tollgate_store::{AlertChannelRecord, AlertDelivery, NewAlertChannel};

use super::{Actor, RuleError, RuleResult, Rules};
use crate::audit::Change;

/// A channel to create, as the API or the CLI received it.
#[derive(Debug, Clone)]
pub struct ChannelDraft {
    /// Unique name.
    pub name: String,
    /// Webhook URL.
    pub url: String,
    /// `generic` (default) or `slack`.
    pub format: Option<String>,
}

/// The setting-row name a channel's secret is sealed for: the secret is bound to the channel's
/// unique name, so a sealed value copied into another channel's row does not open.
pub fn secret_row(name: &str) -> String {
    format!("alert-channel:{name}")
}

/// Seals a channel secret for the channel called `name`.
pub fn seal_secret(master: &MasterKey, name: &str, secret: &SecretString) -> Vec<u8> {
    master.seal(
        secret.expose_secret().as_bytes(),
        SealedRow::Setting(&secret_row(name)),
    )
}

/// A stored channel, its secret opened: what the dispatcher delivers to.
pub fn open_channel(record: &AlertChannelRecord, master: &MasterKey) -> Result<Channel, String> {
    let secret = master
        .open_text(
            &record.sealed_secret,
            SealedRow::Setting(&secret_row(&record.name)),
        )
        .map_err(|e| format!("alert channel {}: {e}", record.id))?;
    let format: ChannelFormat = record
        .format
        .parse()
        .map_err(|e| format!("alert channel {}: {e}", record.id))?;
    Channel::new(
        record.id,
        &record.name,
        format,
        &record.url,
        SecretString::from(secret),
    )
    .map_err(|e| format!("alert channel {}: {e}", record.id))
}

/// The URL's origin (`https://hooks.slack.com/…`): what lists and logs show.
pub fn origin(url: &str) -> String {
    WebhookUrl::parse(url).map_or_else(|_| "(invalid URL)".to_owned(), |u| u.redacted())
}

/// An attempt as the store keeps it.
pub fn delivery_record(attempt: &Attempt) -> AlertDelivery {
    AlertDelivery {
        id: 0,
        channel_id: attempt.channel_id,
        dedup_key: attempt.dedup_key.clone(),
        kind: attempt.kind.as_str().to_owned(),
        summary: attempt.summary.clone(),
        attempt: i32::try_from(attempt.attempt_no).unwrap_or(i32::MAX),
        at_ms: attempt.at_ms,
        status: attempt.status.as_str().to_owned(),
        http_status: attempt.http_status.map(i32::from),
        latency_ms: i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
        error: attempt.error.clone(),
    }
}

/// Creates a channel; returns it and its secret (shown once, stored sealed).
pub async fn create(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: ChannelDraft,
) -> RuleResult<(AlertChannelRecord, SecretString)> {
    actor.require_admin()?;
    let format = match draft.format.as_deref().map(str::trim) {
        None | Some("") => ChannelFormat::Generic,
        Some(text) => text
            .parse::<ChannelFormat>()
            .map_err(|e| RuleError::invalid("format", e.to_string()))?,
    };
    let secret = new_secret();
    let channel = Channel::new(0, &draft.name, format, &draft.url, secret.clone())
        .map_err(|e| RuleError::invalid(e.field(), e.to_string()))?;
    // An address literal is checked now; a host name is checked each time it is resolved.
    let target = channel.url.target();
    if let TargetHost::Ip(ip) = &target.host {
        check_addresses(
            target,
            &[*ip],
            rules.upstream_allowlist,
            rules.own_listeners,
        )
        .map_err(|refused| {
            RuleError::invalid(
                "url",
                format!(
                    "url: {} is {}; list it in upstream_allowlist to send alerts there",
                    refused.addr,
                    refused.reason.describe()
                ),
            )
        })?;
    }
    let master = rules.master_key.ok_or_else(|| RuleError::NotConfigured {
        code: "no_master_key",
        message: "an alert channel's signing secret is stored sealed: this needs a master key \
                  (TOLLGATE_MASTER_KEY)"
            .into(),
    })?;
    let record = rules
        .store
        .create_alert_channel(NewAlertChannel {
            name: channel.name.clone(),
            format: format.as_str().to_owned(),
            url: channel.url.expose().to_owned(),
            sealed_secret: seal_secret(master, &channel.name, &secret),
            created_by: actor.creator(),
        })
        .await?;
    let change = Change::new("alert_channel.create", "alert_channel", record.id).summary(format!(
        "alert channel {} ({}, {})",
        record.name,
        record.format,
        channel.url.redacted()
    ));
    actor.audit(rules.store, change).await;
    Ok((record, secret))
}

/// Every channel (instance admins).
pub async fn list(rules: &Rules<'_>, actor: &Actor<'_>) -> RuleResult<Vec<AlertChannelRecord>> {
    actor.require_admin()?;
    Ok(rules.store.list_alert_channels().await?)
}

/// One channel (instance admins); `NotFound` if there is none.
pub async fn get(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<AlertChannelRecord> {
    actor.require_admin()?;
    rules
        .store
        .get_alert_channel(id)
        .await?
        .ok_or_else(|| RuleError::NotFound(format!("alert channel {id} does not exist")))
}

/// Deletes a channel and its deliveries (instance admins).
pub async fn delete(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<()> {
    let record = get(rules, actor, id).await?;
    rules.store.delete_alert_channel(id).await?;
    let change = Change::new("alert_channel.delete", "alert_channel", id)
        .summary(format!("alert channel {} removed", record.name));
    actor.audit(rules.store, change).await;
    Ok(())
}

/// The channel `id` ready to send to: its secret opened with the master key.
pub async fn openable(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<Channel> {
    let record = get(rules, actor, id).await?;
    let master = rules.master_key.ok_or_else(|| RuleError::NotConfigured {
        code: "no_master_key",
        message: "alert channels need the master key (TOLLGATE_MASTER_KEY) they were sealed with"
            .into(),
    })?;
    open_channel(&record, master).map_err(|e| RuleError::ConflictWith {
        code: "channel_unreadable",
        message: e,
    })
}
