//! `tollgate master-key rotate`: every value sealed with the master key (revealable key copies,
//! route credentials, the rotated ingest secret, alert channel secrets and webhook URLs) is opened with the key in
//! force and sealed with the new one, in one transaction: either all of them move or none does.
//!
//! The master key is configuration, not stored data, so the command cannot switch it for the
//! running instances: it prints (or writes) the new key and says what to change. Until the
//! instances run with the new key they cannot open what it sealed, so on SQLite it refuses while
//! `serve` holds the store, and the operations guide says to stop every instance first.

use std::path::Path;

use anyhow::{Context, bail};
use rand::RngCore;
use serde::Serialize;
use sqlx::{ConnectOptions, Connection};
use tollgate_console::api::ingest::{INGEST_SECRET_SETTING, StoredSecret};
use tollgate_console::rules::alerts::{secret_row, url_row};
use tollgate_core::KeyHash;
use tollgate_core::crypto::{MasterKey, SealedRow};

use crate::cli::MasterKeyRotateArgs;
use crate::config::{Config, redact_url};
use crate::output;
use crate::store::is_postgres;

/// Where a sealed value lives; its row binding follows from it.
#[derive(Debug, Clone)]
enum Place {
    /// `api_keys.sealed_key`.
    Key { id: i64, hash: String },
    /// `routes.sealed_credential`.
    Route(i64),
    /// `llm_targets.sealed_credential`.
    Target(i64),
    /// The `ingest_secret` setting (JSON holding hex).
    IngestSecret,
    /// `alert_channels.sealed_secret`.
    AlertChannel { id: i64, name: String },
    /// `alert_channels.sealed_url`.
    AlertChannelUrl { id: i64, name: String },
}

impl Place {
    fn label(&self) -> String {
        match self {
            Self::Key { id, .. } => format!("key {id}"),
            Self::Route(id) => format!("route {id}'s credential"),
            Self::Target(id) => format!("target {id}'s credential"),
            Self::IngestSecret => "the ingest secret".to_owned(),
            Self::AlertChannel { id, .. } => format!("alert channel {id}'s secret"),
            Self::AlertChannelUrl { id, .. } => format!("alert channel {id}'s URL"),
        }
    }

    fn open(&self, master: &MasterKey, sealed: &[u8]) -> Option<Vec<u8>> {
        self.with_row(|row| master.open(sealed, row).ok().map(|o| o.plain))
            .flatten()
    }

    fn seal(&self, master: &MasterKey, plain: &[u8]) -> Option<Vec<u8>> {
        self.with_row(|row| master.seal(plain, row))
    }

    fn with_row<T>(&self, f: impl FnOnce(SealedRow<'_>) -> T) -> Option<T> {
        match self {
            Self::Key { hash, .. } => {
                let hash = KeyHash::try_from(hash.clone()).ok()?;
                Some(f(SealedRow::ApiKey(&hash)))
            }
            Self::Route(id) => Some(f(SealedRow::RouteCredential(*id))),
            Self::Target(id) => Some(f(SealedRow::TargetCredential(*id))),
            Self::IngestSecret => Some(f(SealedRow::Setting(INGEST_SECRET_SETTING))),
            Self::AlertChannel { name, .. } => Some(f(SealedRow::Setting(&secret_row(name)))),
            Self::AlertChannelUrl { name, .. } => Some(f(SealedRow::Setting(&url_row(name)))),
        }
    }
}

/// How many values were sealed with the new key.
#[derive(Debug, Default, Serialize)]
pub struct Rotated {
    keys: usize,
    routes: usize,
    targets: usize,
    settings: usize,
    alert_channels: usize,
    alert_channel_urls: usize,
    /// The generated key, only when it is printed as JSON (no `--out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    master_key: Option<String>,
}

impl Rotated {
    fn count(&mut self, place: &Place) {
        match place {
            Place::Key { .. } => self.keys += 1,
            Place::Route(_) => self.routes += 1,
            Place::Target(_) => self.targets += 1,
            Place::IngestSecret => self.settings += 1,
            Place::AlertChannel { .. } => self.alert_channels += 1,
            Place::AlertChannelUrl { .. } => self.alert_channel_urls += 1,
        }
    }
}

/// Reads every sealed value and, given a new key, writes each sealed again in the same
/// transaction. The SQL reads the same on both databases (`$N` placeholders, BLOB/BYTEA as bytes).
macro_rules! sealed_values {
    ($tx:expr) => {{
        let tx = $tx;
        let mut found: Vec<(Place, Vec<u8>)> = Vec::new();
        let keys: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, key_hash, sealed_key FROM api_keys WHERE sealed_key IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        found.extend(
            keys.into_iter()
                .map(|(id, hash, sealed)| (Place::Key { id, hash }, sealed)),
        );
        let routes: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, sealed_credential FROM routes WHERE sealed_credential IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        found.extend(routes.into_iter().map(|(id, s)| (Place::Route(id), s)));
        let targets: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, sealed_credential FROM llm_targets WHERE sealed_credential IS NOT NULL \
             ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        found.extend(targets.into_iter().map(|(id, s)| (Place::Target(id), s)));
        let setting: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(INGEST_SECRET_SETTING)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(text) = setting
            && let Ok(StoredSecret::Sealed(hexed)) = serde_json::from_str::<StoredSecret>(&text)
        {
            found.push((Place::IngestSecret, hex::decode(hexed).unwrap_or_default()));
        }
        let channels: Vec<(i64, String, Vec<u8>)> =
            sqlx::query_as("SELECT id, name, sealed_secret FROM alert_channels ORDER BY id")
                .fetch_all(&mut **tx)
                .await?;
        found.extend(
            channels
                .into_iter()
                .map(|(id, name, s)| (Place::AlertChannel { id, name }, s)),
        );
        let urls: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, name, sealed_url FROM alert_channels WHERE sealed_url IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        found.extend(
            urls.into_iter()
                .map(|(id, name, s)| (Place::AlertChannelUrl { id, name }, s)),
        );
        Ok::<_, anyhow::Error>(found)
    }};
}

macro_rules! write_sealed {
    ($tx:expr, $place:expr, $sealed:expr) => {{
        let tx = $tx;
        let sealed: Vec<u8> = $sealed;
        match $place {
            Place::Key { id, .. } => {
                sqlx::query("UPDATE api_keys SET sealed_key = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
            }
            Place::Route(id) => {
                sqlx::query("UPDATE routes SET sealed_credential = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
            }
            Place::Target(id) => {
                sqlx::query("UPDATE llm_targets SET sealed_credential = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
            }
            Place::IngestSecret => {
                let text = serde_json::to_string(&StoredSecret::Sealed(hex::encode(sealed)))?;
                sqlx::query("UPDATE settings SET value = $1, updated_at = $2 WHERE name = $3")
                    .bind(text)
                    .bind(tollgate_core::time::now_ms())
                    .bind(INGEST_SECRET_SETTING)
                    .execute(&mut **tx)
                    .await?;
            }
            Place::AlertChannel { id, .. } => {
                sqlx::query("UPDATE alert_channels SET sealed_secret = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
            }
            Place::AlertChannelUrl { id, .. } => {
                sqlx::query("UPDATE alert_channels SET sealed_url = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok::<(), anyhow::Error>(())
    }};
}

macro_rules! rotate_in {
    ($conn:expr, $old:expr, $new:expr) => {{
        let mut tx = $conn
            .begin()
            .await
            .context("starting the rotation's transaction")?;
        let found = sealed_values!(&mut tx)?;
        let mut rotated = Rotated::default();
        let mut resealed = Vec::with_capacity(found.len());
        let mut refused = Vec::new();
        for (place, sealed) in found {
            match place
                .open($old, &sealed)
                .and_then(|plain| place.seal($new, &plain))
            {
                Some(fresh) => resealed.push((place, fresh)),
                None => refused.push(place.label()),
            }
        }
        if !refused.is_empty() {
            bail!(
                "{} sealed values do not open with the master key in force ({}): nothing was \
                 changed; remove or set them again (they were sealed with another key), then \
                 rotate",
                refused.len(),
                refused.join(", ")
            );
        }
        for (place, fresh) in &resealed {
            write_sealed!(&mut tx, place, fresh.clone())?;
            rotated.count(place);
        }
        tx.commit().await.context("committing the rotation")?;
        Ok::<Rotated, anyhow::Error>(rotated)
    }};
}

macro_rules! unopenable_in {
    ($conn:expr, $master:expr) => {{
        let mut tx = $conn.begin().await?;
        let found = sealed_values!(&mut tx)?;
        tx.rollback().await.ok();
        Ok::<Vec<String>, anyhow::Error>(
            found
                .into_iter()
                .filter(|(place, sealed)| place.open($master, sealed).is_none())
                .map(|(place, _)| place.label())
                .collect(),
        )
    }};
}

async fn sqlite_connection(url: &str) -> anyhow::Result<sqlx::SqliteConnection> {
    use std::str::FromStr;
    sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("store {}: {e}", redact_url(url)))?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("store {} cannot be opened", redact_url(url)))
}

async fn pg_connection(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use std::str::FromStr;
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("store {}: {e}", redact_url(url)))?
        .connect()
        .await
        .with_context(|| format!("store {} is unreachable", redact_url(url)))
}

/// The sealed values of the store at `url` that `master` does not open (named for a person).
pub async fn unopenable(url: &str, master: &MasterKey) -> anyhow::Result<Vec<String>> {
    if is_postgres(url) {
        let mut conn = pg_connection(url).await?;
        unopenable_in!(conn, master)
    } else {
        let mut conn = sqlite_connection(url).await?;
        unopenable_in!(conn, master)
    }
}

/// The new master key's text, from the flags or made here.
fn new_secret(args: &MasterKeyRotateArgs) -> anyhow::Result<(String, bool)> {
    if let Some(path) = &args.new_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--new-key-file {} cannot be read", path.display()))?;
        return Ok((text.trim().to_owned(), false));
    }
    if let Some(var) = &args.new_key_env {
        let text = std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("--new-key-env {var}: the variable is not set"))?;
        return Ok((text.trim().to_owned(), false));
    }
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Ok((hex::encode(bytes), true))
}

/// Writes a generated key into a new private file.
fn write_key_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = tollgate_store::private::new_file(path, std::fs::OpenOptions::new().write(true))
        .with_context(|| {
            format!(
                "--out {} cannot be created (it must not exist yet)",
                path.display()
            )
        })?;
    writeln!(file, "{secret}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("--out {} cannot be written", path.display()))
}

/// `tollgate master-key rotate`.
pub async fn rotate(config: &Config, args: &MasterKeyRotateArgs) -> anyhow::Result<()> {
    let Some(old) = config.master_key() else {
        bail!(
            "no master key is configured (master_key, TOLLGATE_MASTER_KEY): nothing is sealed \
             with one; set one to start sealing"
        );
    };
    let (secret, generated) = new_secret(args)?;
    let flag = if args.new_key_file.is_some() {
        "--new-key-file"
    } else if args.new_key_env.is_some() {
        "--new-key-env"
    } else {
        "the generated key"
    };
    let new = MasterKey::new(&secret).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    let same = config
        .master_key
        .as_ref()
        .is_some_and(|k| secrecy::ExposeSecret::expose_secret(k) == secret);
    if same {
        bail!("{flag}: the new master key is the one in force; give another");
    }
    if let Some(out) = &args.out
        && out.exists()
    {
        bail!(
            "--out {}: the file exists; choose a new name",
            out.display()
        );
    }
    let url = config.store_url();
    // SQLite: no serve may hold the store (it would go on with the old key).
    let _lock = if is_postgres(&url) {
        None
    } else {
        Some(crate::instance_lock::acquire(config).context(
            "master-key rotate: stop `tollgate serve` first, then start it with the new key",
        )?)
    };
    // The store as this version expects it (migrations, v1 values sealed in the current format).
    let store = crate::store::open(config).await?;
    crate::reseal::reseal_legacy(store.as_ref(), &old).await?;
    store.close().await;
    let mut rotated = if is_postgres(&url) {
        let mut conn = pg_connection(&url).await?;
        rotate_in!(conn, &old, &new)?
    } else {
        let mut conn = sqlite_connection(&url).await?;
        rotate_in!(conn, &old, &new)?
    };
    if generated {
        match &args.out {
            Some(path) => write_key_file(path, &secret)?,
            None if args.json => rotated.master_key = Some(secret.clone()),
            None => output::line(&secret),
        }
    }
    if args.json {
        output::json(&rotated)?;
    }
    output::note(&format!(
        "sealed with the new master key: {} key copies, {} route credentials, {} target \
         credentials, {} settings, {} alert channel secrets, {} alert channel URLs",
        rotated.keys,
        rotated.routes,
        rotated.targets,
        rotated.settings,
        rotated.alert_channels,
        rotated.alert_channel_urls
    ));
    let place = match (&args.out, generated) {
        (Some(path), true) => format!("the key written to {}", path.display()),
        (None, true) => "the key printed above".to_owned(),
        (_, false) => format!("the key from {flag}"),
    };
    output::note(&format!(
        "Next: set master_key (or TOLLGATE_MASTER_KEY) to {place} on every instance, then start \
         them. Until then an instance with the old key cannot reveal keys or inject route \
         credentials. Keep the old key with the backups taken before now: they still need it."
    ));
    Ok(())
}
