//! Token-count sync (seed 003) through the real binary: the CLI's record / quick / status /
//! estimate / import, the seed's `POST /api/record_token_usage`, the v1 counters API, and
//! `tollgate estimate`.

use std::io::Write;
use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, base_env, cli, cli_json, command};

fn status(db: &TestDb, counter: &str) -> Value {
    cli_json(db, &["sync", "status", "--counter", counter, "--json"])
}

async fn the_cli_records_resets_estimates_and_imports(backend: Backend) {
    let db = TestDb::new(backend).await;
    let r = cli_json(
        &db,
        &["sync", "record", "350K", "finished the design", "--json"],
    );
    assert_eq!(
        (r["total_used"].as_i64(), r["increment"].as_i64()),
        (Some(350_000), Some(350_000))
    );
    let r = cli_json(&db, &["sync", "record", "35万", "--json"]);
    assert_eq!(
        (r["total_used"].as_i64(), r["increment"].as_i64()),
        (Some(350_000), Some(0))
    );
    let r = cli_json(
        &db,
        &["sync", "record", "１，２００，０００ tokens used", "--json"],
    );
    assert_eq!(
        (r["total_used"].as_i64(), r["increment"].as_i64()),
        (Some(1_200_000), Some(850_000))
    );
    // A reading below the previous one is a reset.
    let r = cli_json(&db, &["sync", "record", "1.5K", "new month", "--json"]);
    assert_eq!(
        (
            r["total_used"].as_i64(),
            r["increment"].as_i64(),
            r["reset"].as_bool()
        ),
        (Some(1_500), Some(1_500), Some(true))
    );
    let s = status(&db, "default");
    assert_eq!(
        (
            s["used"].as_i64(),
            s["quota"].as_i64(),
            s["sessions"].as_i64()
        ),
        (Some(1_500), Some(1_000_000), Some(4))
    );
    assert_eq!(
        (s["remaining"].as_i64(), s["percent"].as_f64()),
        (Some(998_500), Some(0.15))
    );

    // Bad input names the problem and records nothing.
    for bad in [
        &["sync", "record", "lots"][..],
        &["sync", "record", "-5"],
        &["sync", "record", "1,23,4"],
        &["sync", "record", "12", "--counter", "no spaces"],
    ] {
        let out = cli(&db, bad);
        assert!(!out.status.success(), "{bad:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        status(&db, "default")["sessions"],
        4,
        "refused readings recorded nothing"
    );

    // Estimate: both texts counted with the BPE tokenizer, added to a separate counter.
    let e = cli_json(
        &db,
        &[
            "sync",
            "estimate",
            "Hello there, how are you?",
            "I am fine, thanks.",
            "--counter",
            "cursor",
            "--json",
        ],
    );
    assert!(
        e["increment"].as_i64().is_some_and(|n| n > 5 && n < 30),
        "{e}"
    );
    assert_eq!(status(&db, "cursor")["used"], e["increment"]);

    // Import JSON and CSV sessions (unsorted: applied in time order).
    let dir = db.dir.path();
    std::fs::write(dir.join("s.json"), r#"[{"tokens": 1000, "event": "b", "timestamp": 1763900000000}, {"tokens": "2K", "event": "a", "timestamp": "2025-11-20T10:00:00Z"}]"#).expect("json");
    let i = cli_json(
        &db,
        &[
            "sync",
            "import",
            dir.join("s.json").to_str().expect("path"),
            "--counter",
            "imp",
            "--json",
        ],
    );
    assert_eq!(
        (i["imported"].as_i64(), i["tokens"].as_i64()),
        (Some(2), Some(3_000))
    );
    std::fs::write(
        dir.join("s.csv"),
        "tokens,event,timestamp\n500,first,1763900000000\n\"1,500\",second,\n",
    )
    .expect("csv");
    let i = cli_json(
        &db,
        &[
            "sync",
            "import",
            dir.join("s.csv").to_str().expect("path"),
            "--counter",
            "imp",
            "--json",
        ],
    );
    assert_eq!(i["tokens"], 2_000);
    assert_eq!(status(&db, "imp")["used"], 5_000);
    std::fs::write(dir.join("bad.csv"), "tokens,event\n100,ok\nnope,bad\n").expect("csv");
    let out = cli(
        &db,
        &[
            "sync",
            "import",
            dir.join("bad.csv").to_str().expect("path"),
            "--counter",
            "imp",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("session 2"),
        "the bad row is named"
    );
    assert_eq!(
        status(&db, "imp")["used"],
        5_000,
        "a file with a bad row imports nothing"
    );
}
both_backends!(the_cli_records_resets_estimates_and_imports);

#[tokio::test]
async fn quick_reads_the_clipboard() {
    let db = TestDb::new(Backend::Sqlite).await;
    // A stand-in clipboard tool first on PATH: the real tools need a display.
    let bin = db.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let tool = bin.join("xclip");
    std::fs::write(&tool, "#!/bin/sh\nprintf '%s' '2.5M tokens used'\n").expect("script");
    std::process::Command::new("chmod")
        .args(["+x", tool.to_str().expect("path")])
        .status()
        .expect("chmod");
    let mut env = base_env(&db, &[]);
    env.retain(|(k, _)| k != "PATH");
    env.push((
        "PATH".into(),
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    ));
    let mut cmd = command(&env, db.dir.path());
    let out = cmd
        .args(["sync", "quick", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["total_used"], 2_500_000);
}

async fn the_api_records_in_the_seed_shape(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = admin.ok(Method::POST, "/api/record_token_usage", Some(json!({"tokens": 350_000, "event": "design", "conversation_id": "c-1", "sync_type": "manual"})), 200).await;
    assert_eq!(
        (
            r["success"].as_bool(),
            r["total_used"].as_i64(),
            r["increment"].as_i64()
        ),
        (Some(true), Some(350_000), Some(350_000))
    );
    let r = admin
        .ok(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": "35万", "event": "same"})),
            200,
        )
        .await;
    assert_eq!(r["increment"], 0);
    let (s, err) = admin
        .call(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": "many"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "tokens");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("many")),
        "{err}"
    );
    let (s, err) = admin
        .call(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": 1, "sync_type": "guess"})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sync_type"))
    );

    let status = admin
        .ok(Method::GET, "/api/v1/counters/default", None, 200)
        .await;
    assert_eq!(
        (status["used"].as_i64(), status["sessions"].as_i64()),
        (Some(350_000), Some(2))
    );
    let rec = admin
        .ok(
            Method::POST,
            "/api/v1/counters/cursor/readings",
            Some(json!({"reading": "1.2M", "event": "v1"})),
            201,
        )
        .await;
    assert_eq!(rec["counter"]["used"], 1_200_000);
    admin
        .ok(
            Method::PUT,
            "/api/v1/counters/cursor/quota",
            Some(json!({"quota": "2M"})),
            200,
        )
        .await;
    let history = admin
        .ok(
            Method::GET,
            "/api/v1/counters/default/readings?limit=1",
            None,
            200,
        )
        .await;
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["event"], "same", "newest first");
    let parsed = admin
        .ok(
            Method::POST,
            "/api/v1/counters/parse",
            Some(json!({"text": "３５万"})),
            200,
        )
        .await;
    assert_eq!(parsed["tokens"], 350_000);
    let (s, _) = admin
        .call(
            Method::POST,
            "/api/v1/counters/parse",
            Some(json!({"text": "1,23,4"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Readings appear beside gateway usage, marked as reported: 350,000 + 1,200,000 today.
    let trend = admin
        .ok(Method::GET, "/api/console/usage-trend?days=7", None, 200)
        .await;
    let today = trend["data"]
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .expect("today");
    assert_eq!(today["reported_tokens"], 1_550_000, "{today}");
    assert_eq!(today["tokens"], 0, "no gateway tokens were recorded");
    // The same readings in the v1 summary, beside (not inside) the gateway totals; a filter the
    // counters have no part in (a model) leaves them out.
    let summary = admin
        .ok(Method::GET, "/api/v1/usage/summary?range=24h", None, 200)
        .await;
    assert_eq!(summary["reported_tokens"], 1_550_000, "{summary}");
    assert_eq!(summary["total_tokens"], 0, "{summary}");
    let by_model = admin
        .ok(
            Method::GET,
            "/api/v1/usage/summary?range=24h&model=gpt-4o",
            None,
            200,
        )
        .await;
    assert_eq!(by_model["reported_tokens"], 0, "{by_model}");
    // Day points of the series carry them per day; hourly points do not (readings are daily).
    let days = admin
        .ok(
            Method::GET,
            "/api/v1/usage/series?range=7d&bucket=day",
            None,
            200,
        )
        .await;
    let days = days.as_array().expect("points");
    let last = days.last().expect("today");
    assert_eq!(last["reported_tokens"], 1_550_000, "{last}");
    assert_eq!(last["total_tokens"], 0, "{last}");
    let earlier: i64 = days[..days.len() - 1]
        .iter()
        .map(|p| {
            p["reported_tokens"]
                .as_i64()
                .expect("a number on every day point")
        })
        .sum();
    assert_eq!(earlier, 0, "nothing was reported before today");
    let hours = admin
        .ok(
            Method::GET,
            "/api/v1/usage/series?range=24h&bucket=hour",
            None,
            200,
        )
        .await;
    assert!(
        hours
            .as_array()
            .expect("points")
            .iter()
            .all(|p| p.get("reported_tokens").is_none()),
        "{hours}"
    );
    let days_by_model = admin
        .ok(
            Method::GET,
            "/api/v1/usage/series?range=7d&bucket=day&model=gpt-4o",
            None,
            200,
        )
        .await;
    let today_by_model = days_by_model
        .as_array()
        .and_then(|d| d.last())
        .expect("today");
    assert_eq!(today_by_model["reported_tokens"], 0, "{today_by_model}");
    // Readings are audited.
    let audit = admin
        .ok(
            Method::GET,
            "/api/v1/audit?action=counter.record",
            None,
            200,
        )
        .await;
    assert_eq!(audit["total"], 3);
}
both_backends!(the_api_records_in_the_seed_shape);

#[tokio::test]
async fn estimate_counts_with_the_models_vocabulary() {
    let db = TestDb::new(Backend::Sqlite).await;
    let run = |args: &[&str], input: &str| {
        let mut child = command(&base_env(&db, &[]), db.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    // Known counts of the two vocabularies (tiktoken's reference encodings).
    let out = run(
        &["estimate", "--json", "--model", "gpt-4o", "-"],
        "Hello, world!",
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["tokens"].as_i64(), v["vocabulary"].as_str()),
        (Some(4), Some("o200k_base"))
    );
    let out = run(
        &["estimate", "--json", "--model", "gpt-4", "-"],
        "tiktoken is great!",
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["tokens"].as_i64(), v["vocabulary"].as_str()),
        (Some(6), Some("cl100k_base"))
    );
    let file = db.dir.path().join("t.txt");
    std::fs::write(&file, "你好，世界").expect("write");
    let v = cli_json(&db, &["estimate", "--json", file.to_str().expect("path")]);
    assert!(v["tokens"].as_i64().is_some_and(|n| n > 0));
    assert_eq!(v["characters"], 5);
    std::fs::write(&file, [0xff, 0xfe, 0x00]).expect("write");
    let out = cli(&db, &["estimate", file.to_str().expect("path")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
}
