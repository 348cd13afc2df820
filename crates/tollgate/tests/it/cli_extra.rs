//! The CLI as a shell sees it: a reader that hangs up early, flags whose words `--help` lists,
//! completion scripts and the manual page, secrets alone on standard output.

use std::io::{Read, Write};
use std::process::{Output, Stdio};

use crate::harness::{Backend, TestDb, base_env, cli, command};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `args`, reads `keep` bytes of its standard output and closes the pipe, as `| head` does.
fn run_into_closed_pipe(db: &TestDb, args: &[&str], keep: usize) -> (Vec<u8>, Output) {
    let mut child = command(&base_env(db, &[]), db.dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut head = vec![0u8; keep];
    stdout.read_exact(&mut head).expect("the first bytes");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    (head, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_hangs_up_ends_the_output_quietly() {
    let db = TestDb::new(Backend::Sqlite).await;
    for args in [&["openapi"][..], &["man"], &["completions", "zsh"]] {
        let full = cli(&db, args);
        assert!(full.status.success(), "{args:?}: {}", text(&full.stderr));
        assert!(
            full.stdout.len() > 128 * 1024 || args[0] != "openapi",
            "the document must outgrow a pipe's buffer for this test to mean anything"
        );
        let (head, out) = run_into_closed_pipe(&db, args, 16);
        assert_eq!(head, full.stdout[..16], "{args:?}");
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_words_are_listed_and_checked_by_the_parser() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (args, words) in [
        (
            &["usage", "top", "--help"][..],
            &[
                "key",
                "route",
                "model",
                "team",
                "status_class",
                "calls",
                "tokens",
            ][..],
        ),
        (&["usage", "export", "--help"], &["csv", "json", "ndjson"]),
        (
            &["route", "add", "--help"],
            &["http", "openai", "anthropic"],
        ),
        (
            &["route", "update", "--help"],
            &["http", "openai", "anthropic"],
        ),
        (
            &["limit", "set", "--help"],
            &["day", "week", "month", "total"],
        ),
        (
            &["alert", "channel", "add", "--help"],
            &["generic", "slack"],
        ),
        (&["estimate", "--help"], &["o200k_base", "cl100k_base"]),
        (&["completions", "--help"], &["bash", "zsh", "fish"]),
    ] {
        let out = cli(&db, args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        for word in words {
            assert!(help.contains(word), "{args:?} --help lacks {word}: {help}");
        }
    }
    let out = cli(&db, &["usage", "top", "--by", "colour"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = text(&out.stderr);
    assert!(
        err.contains("--by") && err.contains("colour") && err.contains("status_class"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_the_manual_page() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (shell, marker) in [
        ("bash", "complete -F _tollgate"),
        ("zsh", "#compdef tollgate"),
        ("fish", "complete -c tollgate"),
    ] {
        let out = cli(&db, &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and the fixed words of their flags are offered.
        assert!(
            script.contains("openapi") && script.contains("anthropic"),
            "{shell}"
        );
    }
    // bash itself reads the script without complaint (from a file: the script is larger than
    // one command-line argument may be).
    let out = cli(&db, &["completions", "bash"]);
    let script = db.dir.path().join("tollgate.bash");
    std::fs::write(&script, &out.stdout).expect("write the script");
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(check.status.success(), "{}", text(&check.stderr));

    let out = cli(&db, &["man"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH tollgate"),
        "{page}"
    );
    for sub in ["serve", "migrate", "key", "usage", "completions"] {
        assert!(page.contains(sub), "the page names {sub}");
    }
    // They work without any configuration, even a broken one.
    let mut env = base_env(&db, &[]);
    env.push(("TOLLGATE_RETENTION__DAYS".into(), "0".into()));
    let out = command(&env, db.dir.path())
        .arg("man")
        .stdin(Stdio::null())
        .output()
        .expect("man");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

async fn secrets_stand_alone_on_stdout(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = cli(&db, &["key", "create", "--name", "scripted"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key: {stdout:?}");
    assert!(lines[0].starts_with("ntk_"), "{stdout:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("Created key") && err.contains("shown only once"),
        "{err}"
    );
    assert!(
        !err.contains(lines[0]),
        "the secret is not repeated on stderr"
    );

    let mut admin = command(&base_env(&db, &[]), db.dir.path())
        .args(["admin", "create", "--email", "ops@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    admin
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"orange kettle harmonica 1987\n")
        .expect("password");
    let created = admin.wait_with_output().expect("admin");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = cli(
        &db,
        &[
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ci",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token: {stdout:?}");
    assert!(lines[0].starts_with("tgp_"), "{stdout:?}");
    assert!(text(&out.stderr).contains("shown once"));
}
crate::both_backends!(secrets_stand_alone_on_stdout);
