//! One `serve` per SQLite store: an exclusive lock on a file in the data folder (and beside the
//! database file when it lives elsewhere), held until the process ends. A second `serve` on the
//! same files refuses to start instead of writing the same spool and database behind the first
//! one's back. PostgreSQL stores are shared by design and take no lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::store::is_postgres;

/// The locks held by this process; dropping it releases them.
#[derive(Debug)]
pub struct InstanceLock {
    _files: Vec<File>,
}

/// The lock file's name in the data folder.
const LOCK_NAME: &str = "tollgate.lock";

/// Takes the locks for a `serve` on `config`'s store, or says which process holds them.
pub fn acquire(config: &Config) -> anyhow::Result<InstanceLock> {
    let url = config.store_url();
    if is_postgres(&url) {
        return Ok(InstanceLock { _files: Vec::new() });
    }
    let mut paths = vec![config.data_dir.join(LOCK_NAME)];
    if let Ok(Some(db)) = tollgate_store_sqlite::SqliteStore::database_file(&url)
        && let Some(folder) = db.parent().filter(|p| !p.as_os_str().is_empty())
        && !same_folder(folder, &config.data_dir)
    {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        paths.push(folder.join(name));
    }
    let files = paths
        .iter()
        .map(|path| lock(path.as_path()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(InstanceLock { _files: files })
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn lock(path: &Path) -> anyhow::Result<File> {
    // `serve` may create its store: the folder and the file private, as the store's own files.
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tollgate_store::private::create_dir(folder)
            .with_context(|| format!("folder {} cannot be created", folder.display()))?;
    }
    tollgate_store::private::create_file(path)
        .with_context(|| format!("lock file {} cannot be created", path.display()))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("lock file {} cannot be opened", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another tollgate serve".to_owned()
            } else {
                format!("another tollgate serve (pid {holder})")
            };
            anyhow::bail!(
                "{who} already uses this SQLite store (lock {} is held): stop it first, or give \
                 this one its own --data-dir and --database-url",
                path.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e)
                .with_context(|| format!("lock file {} cannot be locked", path.display()));
        }
    }
    // The holder's pid, for the message a second start prints; the lock, not the text, decides.
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .with_context(|| format!("lock file {} cannot be written", path.display()))?;
    Ok(file)
}
