//! Seals again, in the current row-bound format, every value a master key sealed in the old
//! (v1, unbound) format: revealable key copies, route credentials and the rotated ingest secret;
//! and seals the webhook URL of every alert channel made before URLs were sealed (migration
//! 0013), clearing its plain copy. Runs at every start and `tollgate migrate` with a master key,
//! so an upgraded store holds no value that would still open after being copied to another row,
//! and no webhook URL in plaintext. Without a master key, [`warn_unsealed`] says what is left.

use anyhow::Context;
use tollgate_alerts::WebhookUrl;
use tollgate_console::api::ingest::{INGEST_SECRET_SETTING, StoredSecret};
use tollgate_console::rules::alerts::seal_url;
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_store::{KeyUpdate, RouteUpdate, Store};

/// How many values were sealed again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    pub keys: usize,
    pub routes: usize,
    pub settings: usize,
    /// Alert channel webhook URLs sealed for the first time.
    pub alert_channel_urls: usize,
}

impl Resealed {
    fn total(&self) -> usize {
        self.keys + self.routes + self.settings + self.alert_channel_urls
    }
}

/// Without a master key: warns (once, at start) about every alert channel whose webhook URL is
/// still stored in plaintext. Such a channel is listed by its display form but sends nothing
/// (its signing secret needs the master key too) until the instance starts with the key, which
/// seals the URL. Returns how many there are.
pub async fn warn_unsealed(store: &dyn Store) -> anyhow::Result<usize> {
    let plain = store
        .list_alert_channels()
        .await
        .context("listing alert channels")?
        .iter()
        .filter(|c| c.legacy_url.is_some())
        .count();
    if plain > 0 {
        tracing::warn!(
            channels = plain,
            "alert channel webhook URLs are stored in plaintext and cannot be sealed: no master \
             key is configured. Set TOLLGATE_MASTER_KEY (the key the channels' secrets were \
             sealed with) and restart to seal them; until then these channels send no alerts"
        );
    }
    Ok(plain)
}

/// Re-seals every v1 value. A value that does not open at all is left alone and named in the
/// log: it was sealed with another master key, and only its owner can replace it.
pub async fn reseal_legacy(store: &dyn Store, master: &MasterKey) -> anyhow::Result<Resealed> {
    let mut done = Resealed::default();
    for key in store
        .list_keys(None)
        .await
        .context("re-seal: listing keys")?
    {
        let Some(sealed) = &key.sealed_key else {
            continue;
        };
        let row = SealedRow::ApiKey(&key.key_hash);
        match master.open(sealed, row) {
            Ok(opened) if opened.legacy => {
                let update = KeyUpdate {
                    sealed_key: Some(master.seal(&opened.plain, row)),
                    ..KeyUpdate::default()
                };
                store
                    .update_key(key.id, update)
                    .await
                    .with_context(|| format!("re-seal: key {}", key.id))?;
                done.keys += 1;
            }
            Ok(_) => {}
            Err(_) => tracing::warn!(key = key.id, "a key's sealed copy does not open"),
        }
    }
    for route in store
        .list_routes()
        .await
        .context("re-seal: listing routes")?
    {
        let Some(sealed) = &route.sealed_credential else {
            continue;
        };
        let row = SealedRow::RouteCredential(route.id);
        match master.open(sealed, row) {
            Ok(opened) if opened.legacy => {
                let update = RouteUpdate {
                    sealed_credential: Some(Some(master.seal(&opened.plain, row))),
                    ..RouteUpdate::default()
                };
                store
                    .update_route(route.id, update)
                    .await
                    .with_context(|| format!("re-seal: route {}", route.id))?;
                done.routes += 1;
            }
            Ok(_) => {}
            Err(_) => tracing::warn!(route = route.id, "a route's credential does not open"),
        }
    }
    if let Some(text) = store.setting(INGEST_SECRET_SETTING).await?
        && let Ok(StoredSecret::Sealed(hexed)) = serde_json::from_str::<StoredSecret>(&text)
        && let Ok(sealed) = hex::decode(hexed)
    {
        let row = SealedRow::Setting(INGEST_SECRET_SETTING);
        match master.open(&sealed, row) {
            Ok(opened) if opened.legacy => {
                let fresh = StoredSecret::Sealed(hex::encode(master.seal(&opened.plain, row)));
                let text = serde_json::to_string(&fresh).context("re-seal: ingest secret")?;
                store.set_setting(INGEST_SECRET_SETTING, &text).await?;
                done.settings += 1;
            }
            Ok(_) => {}
            Err(_) => tracing::warn!("the sealed ingest secret does not open"),
        }
    }
    for channel in store
        .list_alert_channels()
        .await
        .context("re-seal: listing alert channels")?
    {
        let Some(plain) = &channel.legacy_url else {
            continue;
        };
        // The URL was validated when the channel was made; one that no longer parses is sealed
        // all the same (the plain copy must go) and shown as invalid.
        let (sealed, display) = match WebhookUrl::parse(plain) {
            Ok(url) => (seal_url(master, &channel.name, &url), url.display()),
            Err(_) => {
                tracing::warn!(
                    channel = channel.id,
                    "an alert channel's stored URL is not a valid webhook URL; sealed as it is"
                );
                let row = tollgate_console::rules::alerts::url_row(&channel.name);
                (
                    master.seal(plain.as_bytes(), SealedRow::Setting(&row)),
                    "(invalid URL)".to_owned(),
                )
            }
        };
        store
            .seal_alert_channel_url(channel.id, &sealed, &display)
            .await
            .with_context(|| format!("sealing alert channel {}'s URL", channel.id))?;
        done.alert_channel_urls += 1;
    }
    if done.total() > 0 {
        tracing::info!(
            keys = done.keys,
            routes = done.routes,
            settings = done.settings,
            alert_channel_urls = done.alert_channel_urls,
            "sealed values of the old format sealed again, bound to their rows"
        );
    }
    Ok(done)
}
