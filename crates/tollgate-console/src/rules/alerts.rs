//! Alert channels: validation, the signing secret (made here, shown once, sealed with the master
//! key), the webhook URL (a credential too: sealed, shown only in its display form), who may
//! (instance admins only) and the audit entry.
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

/// The row a channel's webhook URL is sealed for: bound to the channel's unique name, like its
/// secret, but distinct from it, so neither opens in the other's place.
pub fn url_row(name: &str) -> String {
    format!("alert-channel-url:{name}")
}

/// Seals a channel's webhook URL for the channel called `name`.
pub fn seal_url(master: &MasterKey, name: &str, url: &WebhookUrl) -> Vec<u8> {
    master.seal(url.expose().as_bytes(), SealedRow::Setting(&url_row(name)))
}

/// The webhook URL a channel is shown with: its stored display form, or, for a channel made
/// before URLs were sealed and not sealed yet, the display form of its plain URL.
pub fn shown_url(record: &AlertChannelRecord) -> String {
    match &record.legacy_url {
        Some(plain) if record.url_display.is_empty() => {
            WebhookUrl::parse(plain).map_or_else(|_| "(invalid URL)".to_owned(), |u| u.display())
        }
        _ => record.url_display.clone(),
    }
}

/// A stored channel, its URL and secret opened: what the dispatcher delivers to.
pub fn open_channel(record: &AlertChannelRecord, master: &MasterKey) -> Result<Channel, String> {
    let url = match (&record.sealed_url, &record.legacy_url) {
        (Some(sealed), _) => master
            .open_text(sealed, SealedRow::Setting(&url_row(&record.name)))
            .map_err(|e| format!("alert channel {}: url: {e}", record.id))?,
        // Written before URLs were sealed, by a store not yet started with a master key.
        (None, Some(plain)) => plain.clone(),
        (None, None) => return Err(format!("alert channel {} has no URL", record.id)),
    };
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
        &url,
        SecretString::from(secret),
    )
    .map_err(|e| format!("alert channel {}: {e}", record.id))
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
            sealed_url: seal_url(master, &channel.name, &channel.url),
            url_display: channel.url.display(),
            sealed_secret: seal_secret(master, &channel.name, &secret),
            created_by: actor.creator(),
        })
        .await?;
    let change = Change::new("alert_channel.create", "alert_channel", record.id).summary(format!(
        "alert channel {} ({}, {})",
        record.name,
        record.format,
        channel.url.display()
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
