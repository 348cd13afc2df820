//! The binary raises its open-file limit to the hard limit at start, and says so clearly when even
//! that is below what its connection caps need (it lowers them to fit).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Backend, TestDb, base_env};

/// The soft and hard `Max open files` of a running process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_file_limit_is_raised_to_the_hard_limit_and_a_short_one_is_reported() {
    std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .expect("prlimit (util-linux) is required to start the binary with a given limit");
    let db = TestDb::new(Backend::Sqlite).await;
    let (soft, hard) = (128_u64, 1024_u64);
    // Connection caps that need more than the hard limit: 2 × 1000 + 200 + the reserve.
    let env = base_env(
        &db,
        &[
            ("TOLLGATE_GATEWAY__MAX_CONNECTIONS", "1000"),
            ("TOLLGATE_CONSOLE__MAX_CONNECTIONS", "200"),
        ],
    );
    let ready = db.dir.path().join("ready.json");
    let log = db.dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut child = std::process::Command::new("prlimit")
        .arg(format!("--nofile={soft}:{hard}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--ready-file"])
        .arg(&ready)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(db.dir.path())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("spawn prlimit tollgate serve");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tollgate serve exited with {status}: {}", logs());
        }
        assert!(Instant::now() < deadline, "not ready in 30 s: {}", logs());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // prlimit execs the binary: the child's pid is tollgate's.
    let (now_soft, now_hard) = open_file_limits(child.id());
    assert_eq!(now_hard, hard, "the hard limit is the OS's to set");
    assert_eq!(now_soft, hard, "the soft limit is raised to the hard one");

    let text = logs();
    assert!(
        text.contains("WARN") && text.contains("below what the connection caps need"),
        "a clear warning names the shortfall: {text}"
    );
    let lowered: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("max_connections lowered to fit the open-file limit"))
        .collect();
    assert!(
        lowered.iter().any(|l| l.contains("listener=\"gateway\"")
            || l.contains("listener=gateway")
            || l.contains("\"listener\":\"gateway\"")),
        "the gateway cap is lowered and says to what: {text}"
    );
    // One descriptor per client connection: 1024 − 256 reserved − 192 for the console (a
    // quarter of the rest), not half of it as when every call held an upstream descriptor.
    assert!(
        lowered
            .iter()
            .any(|l| l.contains("gateway") && l.contains("576")),
        "the gateway cap is lowered to 576: {text}"
    );
    assert!(
        text.contains("http1_calls=288") || text.contains("\"http1_calls\":288"),
        "the warning says how many calls to HTTP/1.1 upstreams fit: {text}"
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "clean stop: {}", logs());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop: {}", logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
