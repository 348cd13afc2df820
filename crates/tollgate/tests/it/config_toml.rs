//! `tollgate config --format toml` prints a file `--config` reads back to the same effective
//! configuration, and the shipped `tollgate.example.toml` parses, holds the defaults and lists
//! every setting (so a new setting without its line there fails here).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::cli_env;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tollgate.example.toml")
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs `tollgate ARGS` in `dir` with exactly `vars`; its stdout, which must be there.
fn run(dir: &Path, vars: &[(String, String)], args: &[&str]) -> String {
    let out = cli_env(vars, dir, args);
    assert!(
        out.status.success(),
        "tollgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Every setting as (section, key); top-level settings have the section "".
fn settings(config: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (key, value) in config.as_object().expect("object") {
        match value {
            // `prices` is a table of models: the section itself is the setting.
            Value::Object(map) if key == "prices" => {
                let _ = map;
                out.insert((key.clone(), String::new()));
            }
            Value::Object(map) => {
                for inner in map.keys() {
                    out.insert((key.clone(), inner.clone()));
                }
            }
            _ => {
                out.insert((String::new(), key.clone()));
            }
        }
    }
    out
}

/// The settings a TOML file names, set or commented out (`# key = …`), by `[section]` header
/// (also `# [section]`).
fn named_in(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            if section == "prices" {
                out.insert((section.clone(), String::new()));
            }
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                out.insert((section.clone(), key.to_owned()));
            }
        }
    }
    out
}

#[test]
fn the_example_file_lists_every_setting_with_its_default() {
    let dir = tempfile::tempdir().expect("dir");
    let defaults = json(&run(dir.path(), &[], &["config"]));
    let text = std::fs::read_to_string(example()).expect("tollgate.example.toml at the repo root");
    let wanted = settings(&defaults);
    let named = named_in(&text);
    let missing: Vec<_> = wanted.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "settings missing from tollgate.example.toml: {missing:?}"
    );
    let unknown: Vec<_> = named.difference(&wanted).collect();
    assert!(
        unknown.is_empty(),
        "tollgate.example.toml names unknown settings: {unknown:?}"
    );
    // Every line ends in a comment's company: each setting has one right above it.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let bare = line.trim();
        if !bare.starts_with('#') && bare.contains('=') {
            assert!(
                i > 0 && lines[i - 1].trim_start().starts_with('#'),
                "`{bare}` has no comment above it"
            );
        }
    }
    // It parses, passes validation, and what it sets are the defaults.
    let example = example().display().to_string();
    let loaded = json(&run(dir.path(), &[], &["--config", &example, "config"]));
    assert_eq!(loaded, defaults);
}

#[test]
fn toml_output_reads_back_to_the_same_configuration() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("in.toml");
    std::fs::write(
        &file,
        "log_level = \"debug\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
         [alerts]\nkey_expiry_days = [14, 3]\nroute_error_rate_pct = 12.5\n\
         [prices]\n\"gpt-4o\" = { input = 2.5, output = 10.0, cached_input = 1.25 }\n\
         \"claude\" = { input = 3.0, output = 15.0 }\n",
    )
    .expect("write");
    let secrets = [
        (
            "TOLLGATE_MASTER_KEY",
            "a-master-key-of-at-least-32-characters!!",
        ),
        (
            "TOLLGATE_DATABASE_URL",
            "postgres://tollgate:dbsecret@127.0.0.1:5432/tg",
        ),
    ];
    let mut vars = env(&[
        ("TOLLGATE_RETENTION__DAYS", "90"),
        ("TOLLGATE_LOG_FORMAT", "json"),
    ]);
    vars.extend(env(&secrets));
    let path = file.display().to_string();
    let effective = run(dir.path(), &vars, &["--config", &path, "config"]);
    let toml = run(
        dir.path(),
        &vars,
        &["--config", &path, "config", "--format", "toml"],
    );
    assert!(
        !toml.contains("dbsecret") && !toml.contains("a-master-key"),
        "{toml}"
    );
    assert!(
        toml.contains("# master_key is set but not printed: give it again as TOLLGATE_MASTER_KEY"),
        "{toml}"
    );
    assert!(
        toml.contains("# database_url is set but not printed"),
        "{toml}"
    );
    assert!(
        toml.contains("days = 90") && toml.contains("[prices.gpt-4o]"),
        "{toml}"
    );

    // Read back with only the withheld secrets given again: the same effective configuration.
    let out = dir.path().join("out.toml");
    std::fs::write(&out, &toml).expect("write");
    let again = run(
        dir.path(),
        &env(&secrets),
        &["--config", &out.display().to_string(), "config"],
    );
    assert_eq!(json(&again), json(&effective));
    // And its TOML is the same file.
    let toml_again = run(
        dir.path(),
        &env(&secrets),
        &[
            "--config",
            &out.display().to_string(),
            "config",
            "--format",
            "toml",
        ],
    );
    assert_eq!(toml_again, toml);

    // A wrong format is refused by name.
    let bad = cli_env(&[], dir.path(), &["config", "--format", "yaml"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--format"));
}
