//! The usage spool is private: its folder is created 0700, its files and the quarantine 0600.
#![cfg(unix)]
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tollgate_core::UsageEvent;
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::spool::Spool;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn spool_folder_and_files_are_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/spool");
    let spool = Spool::open(&dir, Metrics::new()).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("data")), 0o700);
    let event = UsageEvent::new(tollgate_core::time::now_ms(), "POST", "/v1/x", 200);
    spool.append(std::slice::from_ref(&event)).unwrap();
    let files = spool.seal_and_list().unwrap();
    assert!(!files.is_empty());
    for file in &files {
        assert_eq!(mode(&file.path), 0o600, "{}", file.path.display());
    }
    let quarantine = spool.quarantine(std::slice::from_ref(&event)).unwrap();
    assert_eq!(mode(&quarantine), 0o600);
    // A second quarantine appends to the same file.
    assert_eq!(spool.quarantine(&[event]).unwrap(), quarantine);
    assert_eq!(
        std::fs::read_to_string(&quarantine)
            .unwrap()
            .lines()
            .count(),
        2
    );
}
