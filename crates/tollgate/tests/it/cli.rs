//! The key and route commands: JSON shapes, tables, and refusals that change nothing.

use crate::both_backends;
use crate::harness::{Backend, TestDb, add_key, add_route, cli, cli_json};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn key_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let created = cli_json(
        &db,
        &[
            "key",
            "create",
            "--name",
            "ci",
            "--description",
            "for CI",
            "--json",
        ],
    );
    let key = created["key"].as_str().expect("key");
    assert!(key.starts_with("ntk_") && key.len() == 40, "{key}");
    assert!(created["prefix"].as_str().expect("prefix").contains('…'));
    let id = created["id"].as_i64().expect("id");

    let list = cli_json(&db, &["key", "list", "--json"]);
    let listed = list.as_array().expect("array");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["team"], "default");
    assert_eq!(listed[0]["status"], "active");
    assert!(listed[0]["last_used_at"].is_null());
    assert!(
        !list.to_string().contains(&key[4..]),
        "the list must never show the secret"
    );

    let table = cli(&db, &["key", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("never used") && text.contains("ci"), "{text}");
    assert!(!text.contains(&key[4..]));

    let revoked = cli_json(&db, &["key", "revoke", &id.to_string(), "--json"]);
    assert_eq!(revoked["status"], "revoked");
    let missing = cli(&db, &["key", "revoke", "999999"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no key with id 999999"),
        "{}",
        stderr(&missing)
    );

    let (_, _) = add_key(&db, "short-lived", &["--expires", "30d"]);
    let list = cli_json(&db, &["key", "list", "--json"]);
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|k| k["expires_at"].is_string())
    );
}
both_backends!(key_lifecycle);

async fn bad_key_input_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["key", "create", "--name", "x", "--expires", "soon"],
            "--expires",
        ),
        (
            &["key", "create", "--name", "x", "--expires", "0s"],
            "--expires",
        ),
        (
            &["key", "create", "--name", "x", "--team", "nope"],
            "team `nope` does not exist",
        ),
        (
            &["key", "create", "--name", "x", "--routes", "ghost"],
            "no route named `ghost`",
        ),
        (&["key", "create", "--name", ""], "--name"),
        (&["key", "revoke", "abc"], "abc"),
    ];
    for (args, expected) in cases {
        let out = cli(&db, args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    let list = cli_json(&db, &["key", "list", "--json"]);
    assert_eq!(
        list.as_array().expect("array").len(),
        0,
        "no key may be created by a refused command"
    );
}
both_backends!(bad_key_input_changes_nothing);

async fn route_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let route = add_route(
        &db,
        "svc",
        "/svc",
        "http://127.0.0.1:9",
        &["--strip-prefix"],
    );
    assert_eq!(route["name"], "svc");
    assert_eq!(route["prefix"], "/svc");
    assert_eq!(route["kind"], "http");
    assert_eq!(route["strip_prefix"], true);
    assert_eq!(route["has_credential"], false);

    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "route",
                "add",
                "--name",
                "svc",
                "--prefix",
                "/other",
                "--upstream",
                "http://x",
            ],
            "svc",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "dup",
                "--prefix",
                "/svc",
                "--upstream",
                "http://x",
            ],
            "/svc",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "p",
                "--prefix",
                "nope",
                "--upstream",
                "http://x",
            ],
            "--prefix",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "u",
                "--prefix",
                "/u",
                "--upstream",
                "ftp://x",
            ],
            "--upstream",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "k",
                "--prefix",
                "/k",
                "--upstream",
                "http://x",
                "--kind",
                "grpc",
            ],
            "--kind",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "bad name",
                "--prefix",
                "/b",
                "--upstream",
                "http://x",
            ],
            "--name",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "t",
                "--prefix",
                "/t",
                "--upstream",
                "http://x",
                "--timeout",
                "2h",
            ],
            "--timeout",
        ),
        (
            &[
                "route",
                "add",
                "--name",
                "c",
                "--prefix",
                "/c",
                "--upstream",
                "http://x",
                "--upstream-key-env",
                "TOLLGATE_TEST_UNSET_VAR",
            ],
            "TOLLGATE_TEST_UNSET_VAR",
        ),
        (&["route", "remove", "ghost"], "no route named `ghost`"),
    ];
    for (args, expected) in cases {
        let out = cli(&db, args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let list = cli_json(&db, &["route", "list", "--json"]);
    assert_eq!(
        list.as_array().expect("array").len(),
        1,
        "refused commands add nothing: {list}"
    );

    let out = cli(&db, &["route", "remove", "svc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = cli_json(&db, &["route", "list", "--json"]);
    assert_eq!(list.as_array().expect("array").len(), 0);
}
both_backends!(route_lifecycle);

/// One rule for both front ends: a route timeout under 1 ms is refused by the API (as 0 ms) and
/// by the command line (which used to round it up to 1 ms), and neither adds a route.
async fn a_zero_timeout_is_refused_by_the_api_and_the_cli(backend: Backend) {
    use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
    use reqwest::Method;
    use serde_json::json;

    let db = TestDb::new(backend).await;
    for flag in ["--timeout", "--connect-timeout"] {
        let out = cli(
            &db,
            &[
                "route",
                "add",
                "--name",
                "t",
                "--prefix",
                "/t",
                "--upstream",
                "http://127.0.0.1:9",
                flag,
                "500us",
            ],
        );
        assert!(!out.status.success(), "{flag} 500us must be refused");
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
    add_route(&db, "svc", "/svc", "http://127.0.0.1:9", &[]);
    let out = cli(&db, &["route", "update", "svc", "--timeout", "1ns"]);
    assert!(!out.status.success(), "an update to 0 ms must be refused");
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));

    let server = crate::harness::Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for field in ["timeout_ms", "connect_timeout_ms"] {
        let mut body = json!({"name": "t", "prefix": "/t", "upstream_url": "http://127.0.0.1:9"});
        body[field] = json!(0);
        let (status, answer) = root.call(Method::POST, "/api/v1/routes", Some(body)).await;
        assert_eq!(status.as_u16(), 422, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let list = cli_json(&db, &["route", "list", "--json"]);
    let listed = list.as_array().expect("array");
    assert_eq!(listed.len(), 1, "refused commands add nothing: {list}");
    assert_eq!(
        listed[0]["timeout_ms"], 300_000,
        "the update changed nothing"
    );
}
both_backends!(a_zero_timeout_is_refused_by_the_api_and_the_cli);
