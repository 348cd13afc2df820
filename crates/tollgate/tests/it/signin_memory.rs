//! Failed sign-ins must not grow the process: Argon2id needs 19 MiB per computation, so hashing
//! runs in a bounded pool whose memory is allocated once and reused. Measured on the real binary's
//! resident set (`VmRSS` in /proc/<pid>/status) over 200+ failed sign-ins, sequential and in
//! concurrent bursts, each from its own address behind a trusted proxy so the throttle stays out
//! of the way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::console::{ADMIN_EMAIL, console_env};
use crate::harness::{Backend, Server, TestDb, client};

/// Growth allowed above the warmed-up baseline: the pool's buffers exist after warm-up, so what
/// remains is allocator noise. The unbounded code grew by ~19 MiB per concurrent attempt.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

/// The resident set of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One failed sign-in from its own address: odd ones to the real account (a real hash is
/// checked), even ones to an unknown e-mail (the dummy hash is checked).
async fn fail_once(http: &reqwest::Client, server: &Server, i: u32) -> StatusCode {
    let email = if i % 2 == 1 {
        ADMIN_EMAIL.to_owned()
    } else {
        format!("nobody{i}@example.com")
    };
    let [_, a, b, c] = i.to_be_bytes();
    http.post(server.console_url("/api/v1/auth/login"))
        .header("x-forwarded-for", format!("10.{a}.{b}.{c}"))
        .json(&json!({"email": email, "password": "not the password at all"}))
        .send()
        .await
        .expect("sign-in request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_keep_memory_flat() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut env = console_env();
    env.push(("TOLLGATE_TRUSTED_PROXIES", "[\"127.0.0.1\", \"::1\"]"));
    let server = Server::start(&db, &env).await;
    let pid = server.pid();
    let http = client();
    let mut next = 0u32;
    let counted = |statuses: &[StatusCode], hashed: &mut usize| {
        for s in statuses {
            assert!(
                matches!(*s, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS),
                "a failed sign-in answers 401, or 429 when the hash pool is full: {s}"
            );
            *hashed += usize::from(*s == StatusCode::UNAUTHORIZED);
        }
    };
    let mut burst = |n: u32| {
        let ids: Vec<u32> = (next..next + n).collect();
        next += n;
        let http = http.clone();
        let server = &server;
        async move { join_all(ids.into_iter().map(|i| fail_once(&http, server, i))).await }
    };

    // Warm-up: every pool slot has used (and kept) its buffer.
    let mut hashed = 0usize;
    for _ in 0..2 {
        counted(&burst(8).await, &mut hashed);
    }
    let baseline = rss_kib(pid);

    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    hashed = 0;
    for _ in 0..80 {
        counted(&burst(1).await, &mut hashed);
    }
    let after_sequential = rss_kib(pid);
    let mut bursts = 0;
    while hashed < 200 && bursts < 12 {
        counted(&burst(32).await, &mut hashed);
        bursts += 1;
    }
    let after_bursts = rss_kib(pid);
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed).max(after_bursts);

    let figures = format!(
        "{hashed} failed sign-ins checked ({next} sent, {bursts} bursts of 32); RSS KiB: baseline \
         {baseline}, after 80 sequential {after_sequential}, after bursts {after_bursts}, peak {peak}"
    );
    assert!(hashed >= 200, "too few sign-ins were checked: {figures}");
    assert!(
        peak.saturating_sub(baseline) < MAX_GROWTH_KIB,
        "RSS grew by more than {} MiB: {figures}",
        MAX_GROWTH_KIB / 1024
    );
    // The server still answers a real sign-in afterwards.
    let ok = http
        .post(server.console_url("/api/v1/auth/login"))
        .header("x-forwarded-for", "192.0.2.1")
        .json(&json!({"email": ADMIN_EMAIL, "password": crate::console::ADMIN_PASSWORD}))
        .send()
        .await
        .expect("sign-in")
        .status();
    assert_eq!(ok, StatusCode::OK, "{figures}");
    eprintln!("signin_memory: {figures}");
}
