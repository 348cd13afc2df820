//! Data files are the service's alone: started with a umask of 000, the real binary still creates
//! its data folder and the SQLite folder 0700, the database and its -wal and -shm 0600, and the
//! spool folder 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Backend, TestDb, base_env};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn data_files_are_private_whatever_the_umask() {
    let db = TestDb::new(Backend::Sqlite).await;
    let root = db.dir.path();
    let store_dir = root.join("store/sqlite");
    let url = format!("sqlite://{}", store_dir.join("tollgate.db").display());
    let data_dir = root.join("data");
    let env = base_env(&db, &[("TOLLGATE_DATABASE_URL", &url)]);
    let ready = root.join("ready.json");
    let log = std::fs::File::create(root.join("serve.log")).expect("log");
    // Through `sh` for `umask 000`; `exec` keeps the process id, so the child is tollgate itself.
    let mut child = std::process::Command::new("sh")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root)
        .arg("-c")
        .arg("umask 000 && exec \"$0\" serve --ready-file \"$1\"")
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn tollgate serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "tollgate exited with {status}: {}",
                std::fs::read_to_string(root.join("serve.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let checks = [
        (data_dir.clone(), 0o700),
        (data_dir.join("spool"), 0o700),
        (root.join("store"), 0o700),
        (store_dir.clone(), 0o700),
        (store_dir.join("tollgate.db"), 0o600),
        (store_dir.join("tollgate.db-wal"), 0o600),
        (store_dir.join("tollgate.db-shm"), 0o600),
    ];
    let found: Vec<(String, u32)> = checks
        .iter()
        .map(|(path, _)| (path.display().to_string(), mode(path)))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let wanted: Vec<(String, u32)> = checks
        .iter()
        .map(|(path, m)| (path.display().to_string(), *m))
        .collect();
    assert_eq!(found, wanted);
}
