//! Seals again, in the current row-bound format, every value a master key sealed in the old
//! (v1, unbound) format: revealable key copies, route credentials and the rotated ingest secret.
//! Runs at every start and `tollgate migrate`, so an upgraded store holds no value that would
//! still open after being copied to another row.

use anyhow::Context;
use tollgate_console::api::ingest::{INGEST_SECRET_SETTING, StoredSecret};
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_store::{KeyUpdate, RouteUpdate, Store};

/// How many values were sealed again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    pub keys: usize,
    pub routes: usize,
    pub settings: usize,
}

impl Resealed {
    fn total(&self) -> usize {
        self.keys + self.routes + self.settings
    }
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
    if done.total() > 0 {
        tracing::info!(
            keys = done.keys,
            routes = done.routes,
            settings = done.settings,
            "sealed values of the old format sealed again, bound to their rows"
        );
    }
    Ok(done)
}
