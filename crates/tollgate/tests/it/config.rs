//! Configuration layers and their one-line errors.

use crate::harness::{Backend, TestDb, base_env, cli_env};

fn run(db: &TestDb, extra: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = cli_env(&base_env(db, extra), db.dir.path(), args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn layers_apply_in_order_and_secrets_stay_hidden() {
    let db = TestDb::new(Backend::Sqlite).await;
    std::fs::write(
        db.dir.path().join("tollgate.toml"),
        "log_format = \"json\"\n[writer]\nbatch_size = 77\n",
    )
    .expect("write config");
    let (ok, stdout, stderr) = run(&db, &[("TOLLGATE_WRITER__BATCH_SIZE", "88")], &["config"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["log_format"], "json", "the file applies");
    assert_eq!(
        v["writer"]["batch_size"], 88,
        "the environment overrides the file"
    );
    assert_eq!(v["master_key"], "[redacted]");
    assert!(!stdout.contains(crate::harness::MASTER_KEY));
    let (ok, stdout, _) = run(&db, &[], &["--database-url", "sqlite://flag.db", "config"]);
    assert!(ok);
    assert!(
        stdout.contains("sqlite://flag.db"),
        "flags override the environment: {stdout}"
    );
}

#[tokio::test]
async fn bad_configuration_is_one_line_naming_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("TOLLGATE_BOGUS_SETTING", "1")], "bogus_setting"),
        (&[("TOLLGATE_GATEWAY_LISTEN", "nope")], "gateway_listen"),
        (&[("TOLLGATE_MASTER_KEY", "short")], "master_key"),
        (&[("TOLLGATE_DATABASE_URL", "mysql://x")], "database_url"),
        (&[("TOLLGATE_RETENTION__DAYS", "0")], "retention.days"),
        (
            &[("TOLLGATE_RETENTION__EDGE_CHANGES", "a week")],
            "retention.edge_changes",
        ),
        (
            &[("TOLLGATE_GATEWAY__REFRESH_INTERVAL_MS", "5000")],
            "refresh_interval_ms",
        ),
        (
            &[(
                "TOLLGATE_UPSTREAM_ALLOWLIST",
                r#"["10.0.0.0/8", "not a host"]"#,
            )],
            "upstream_allowlist: `not a host`",
        ),
    ];
    for (env, expected) in cases {
        let (ok, _, stderr) = run(&db, env, &["key", "list"]);
        assert!(!ok, "{env:?} should fail");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.to_lowercase().contains(expected),
            "{env:?}: {stderr}"
        );
    }
    std::fs::write(db.dir.path().join("tollgate.toml"), "colour = \"blue\"\n")
        .expect("write config");
    let (ok, _, stderr) = run(&db, &[], &["key", "list"]);
    assert!(!ok && stderr.contains("colour"), "{stderr}");
    std::fs::remove_file(db.dir.path().join("tollgate.toml")).expect("remove");
    let (ok, _, stderr) = run(
        &db,
        &[],
        &["--config", "/nonexistent/t.toml", "key", "list"],
    );
    assert!(!ok && stderr.contains("/nonexistent/t.toml"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_store_is_named_with_its_password_redacted() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (ok, _, stderr) = run(
        &db,
        &[(
            "TOLLGATE_DATABASE_URL",
            "postgres://tg:sup3rsecret@127.0.0.1:1/tollgate",
        )],
        &["key", "list"],
    );
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("postgres://tg:[redacted]@127.0.0.1:1/tollgate"),
        "{stderr}"
    );
    assert!(!stderr.contains("sup3rsecret"), "{stderr}");
}

#[tokio::test]
async fn config_output_redacts_the_database_password_and_every_secret() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (ok, stdout, stderr) = run(
        &db,
        &[
            (
                "TOLLGATE_DATABASE_URL",
                "postgres://tg:sup3rsecret@db.internal:5432/tollgate?sslmode=require&password=qu3rysecret",
            ),
            ("TOLLGATE_INGEST_SECRET", "ingest-s3cret-value-123"),
        ],
        &["config"],
    );
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        v["database_url"],
        "postgres://tg:[redacted]@db.internal:5432/tollgate?sslmode=require&password=[redacted]"
    );
    assert_eq!(v["ingest_secret"], "[redacted]");
    assert_eq!(v["master_key"], "[redacted]");
    for secret in [
        "sup3rsecret",
        "qu3rysecret",
        "ingest-s3cret-value-123",
        crate::harness::MASTER_KEY,
    ] {
        assert!(!stdout.contains(secret), "{secret} shown: {stdout}");
    }
}
