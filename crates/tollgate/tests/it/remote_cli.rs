//! The CLI as a client of a running server: every data command with `--server` and a `tgp_`
//! token prints what the same command prints on the local store, acts as the token's user (a
//! member's token is refused where a member may not act), and never opens a local store.

use std::path::{Path, PathBuf};
use std::process::Output;

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, cli, cli_env, cli_json};

const MEMBER_EMAIL: &str = "dev@example.com";

/// Where remote commands run: a folder with no store and no configuration.
struct Laptop {
    home: tempfile::TempDir,
    server: String,
}

impl Laptop {
    fn new(server: &Server) -> Self {
        Self {
            home: tempfile::tempdir().expect("temp dir"),
            server: server.console_url(""),
        }
    }

    /// The data folder a local command would use here; a remote command must never create it.
    fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    fn env(&self, token: &str) -> Vec<(String, String)> {
        vec![
            ("TOLLGATE_SERVER".into(), self.server.clone()),
            ("TOLLGATE_TOKEN".into(), token.into()),
            (
                "TOLLGATE_DATA_DIR".into(),
                self.data_dir().display().to_string(),
            ),
        ]
    }

    /// Runs a command against the server with `token` (through the environment).
    fn run(&self, token: &str, args: &[&str]) -> Output {
        cli_env(&self.env(token), self.home.path(), args)
    }

    /// Runs with flags instead of the environment.
    fn run_flags(&self, token: &str, args: &[&str]) -> Output {
        let mut all = vec!["--server", self.server.as_str(), "--token", token];
        all.extend_from_slice(args);
        let env = vec![(
            "TOLLGATE_DATA_DIR".to_owned(),
            self.data_dir().display().to_string(),
        )];
        cli_env(&env, self.home.path(), &all)
    }

    fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.run(token, args);
        assert!(
            out.status.success(),
            "remote tollgate {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn json(&self, token: &str, args: &[&str]) -> Value {
        parse(&self.ok(token, args), args)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse(stdout: &str, args: &[&str]) -> Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("tollgate {args:?} printed no JSON ({e}): {stdout}"))
}

fn local_ok(db: &TestDb, args: &[&str]) -> String {
    let out = cli(db, args);
    assert!(
        out.status.success(),
        "local tollgate {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `value` without the members named `keys` (at any depth): what must differ between two
/// objects made one after the other (ids, names, times).
fn without(mut value: Value, keys: &[&str]) -> Value {
    fn strip(v: &mut Value, keys: &[&str]) {
        match v {
            Value::Object(map) => {
                for k in keys {
                    map.remove(*k);
                }
                for child in map.values_mut() {
                    strip(child, keys);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| strip(i, keys)),
            _ => {}
        }
    }
    strip(&mut value, keys);
    value
}

/// Asserts that a refused remote command exits non-zero with `needle` on stderr and nothing on
/// stdout.
fn refused(out: &Output, needle: &str, what: &str) {
    assert!(!out.status.success(), "{what}: must fail");
    let err = text(&out.stderr);
    assert!(err.contains(needle), "{what}: `{needle}` not in {err}");
    assert!(
        !err.contains("panicked"),
        "{what}: a refusal is no panic: {err}"
    );
    assert!(out.stdout.is_empty(), "{what}: {}", text(&out.stdout));
}

fn token_for(db: &TestDb, email: &str, name: &str) -> String {
    let v = cli_json(
        db,
        &[
            "token", "create", "--email", email, "--name", name, "--json",
        ],
    );
    v["token"].as_str().expect("token").to_owned()
}

async fn default_team(root: &Api) -> i64 {
    root.ok(Method::GET, "/api/v1/teams", None, 200)
        .await
        .as_array()
        .expect("teams")
        .iter()
        .find(|t| t["name"] == "default")
        .and_then(|t| t["id"].as_i64())
        .expect("default team")
}

async fn remote_commands_print_what_local_ones_do(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let default = default_team(&root).await;
    let _member = invite_user(&server, &root, default, MEMBER_EMAIL, "member").await;
    let admin = token_for(&db, ADMIN_EMAIL, "laptop");
    let laptop = Laptop::new(&server);

    // Routes: one added each way, the same answer but for what names it.
    let local_route = parse(
        &local_ok(
            &db,
            &[
                "route",
                "add",
                "--name",
                "l-api",
                "--prefix",
                "/l",
                "--upstream",
                "https://api.example.com",
                "--kind",
                "openai",
                "--json",
            ],
        ),
        &["route add"],
    );
    let remote_route = laptop.json(
        &admin,
        &[
            "route",
            "add",
            "--name",
            "r-api",
            "--prefix",
            "/r",
            "--upstream",
            "https://api.example.com",
            "--kind",
            "openai",
            "--json",
        ],
    );
    assert_eq!(
        without(local_route, &["id", "name", "prefix"]),
        without(remote_route.clone(), &["id", "name", "prefix"])
    );

    // Keys: created, updated (name, expiry, routes, models) and revoked each way.
    let mut key_ids = Vec::new();
    for (mode, name) in [("local", "l-key"), ("remote", "r-key")] {
        let args = [
            "key", "create", "--name", name, "--routes", "l-api", "--json",
        ];
        let v = if mode == "local" {
            parse(&local_ok(&db, &args), &args)
        } else {
            laptop.json(&admin, &args)
        };
        assert!(v["key"].as_str().expect("key").starts_with("ntk_"), "{v}");
        key_ids.push(v["id"].as_i64().expect("id"));
    }
    // The secret alone on standard output, also remotely.
    let plain = laptop.ok(&admin, &["key", "create", "--name", "plain"]);
    assert_eq!(plain.lines().count(), 1, "{plain}");
    assert!(plain.starts_with("ntk_"), "{plain}");

    let mut updated = Vec::new();
    for (mode, id) in [("local", key_ids[0]), ("remote", key_ids[1])] {
        let id = id.to_string();
        let args = [
            "key",
            "update",
            &id,
            "--name",
            "renamed",
            "--expires",
            "30d",
            "--routes",
            "l-api,r-api",
            "--models",
            "gpt-4o*",
            "--json",
        ];
        let v = if mode == "local" {
            parse(&local_ok(&db, &args), &args)
        } else {
            laptop.json(&admin, &args)
        };
        assert_eq!(v["routes"], serde_json::json!(["l-api", "r-api"]), "{v}");
        assert_eq!(v["models"], serde_json::json!(["gpt-4o*"]), "{v}");
        assert!(v["expires_at"].is_string(), "{v}");
        updated.push(without(
            v,
            &["id", "prefix", "created_by", "created_at", "expires_at"],
        ));
    }
    assert_eq!(updated[0], updated[1]);
    // `never` and `all` undo them.
    let id = key_ids[1].to_string();
    let v = laptop.json(
        &admin,
        &[
            "key",
            "update",
            &id,
            "--expires",
            "never",
            "--routes",
            "all",
            "--json",
        ],
    );
    assert!(v["expires_at"].is_null() && v["routes"].is_null(), "{v}");

    // Route update keeps the id and the keys' grants.
    let r_id = remote_route["id"].as_i64().expect("route id");
    let moved = laptop.json(
        &admin,
        &["route", "update", "r-api", "--timeout", "10s", "--json"],
    );
    assert_eq!(moved["id"], r_id);
    assert_eq!(moved["timeout_ms"], 10_000);
    let id = key_ids[0].to_string();
    let key = laptop.json(&admin, &["key", "update", &id, "--json"]);
    assert_eq!(
        key["routes"],
        serde_json::json!(["l-api", "r-api"]),
        "{key}"
    );

    // Teams, members, invitations.
    let t_local = parse(
        &local_ok(&db, &["team", "create", "--name", "red", "--json"]),
        &["team create"],
    );
    let t_remote = laptop.json(&admin, &["team", "create", "--name", "blue", "--json"]);
    assert_eq!(
        without(t_local, &["id", "name", "created_at"]),
        without(t_remote, &["id", "name", "created_at"])
    );
    laptop.ok(&admin, &["team", "rename", "blue", "--name", "navy"]);
    local_ok(&db, &["team", "rename", "red", "--name", "crimson"]);
    let inv = laptop.json(
        &admin,
        &[
            "invitation",
            "create",
            "--team",
            "navy",
            "--email",
            "new@example.com",
            "--role",
            "viewer",
            "--json",
        ],
    );
    assert!(
        inv["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{inv}"
    );
    let plain = laptop.ok(
        &admin,
        &[
            "invitation",
            "create",
            "--team",
            "crimson",
            "--email",
            "x@example.com",
        ],
    );
    assert_eq!(plain.lines().count(), 1, "the link's secret alone: {plain}");
    laptop.ok(
        &admin,
        &[
            "member",
            "add",
            "--team",
            "navy",
            "--email",
            MEMBER_EMAIL,
            "--role",
            "viewer",
        ],
    );
    local_ok(
        &db,
        &[
            "member",
            "set-role",
            "--team",
            "navy",
            "--email",
            MEMBER_EMAIL,
            "--role",
            "admin",
        ],
    );
    let user_id = root
        .ok(Method::GET, "/api/v1/users", None, 200)
        .await
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == MEMBER_EMAIL)
        .and_then(|u| u["id"].as_i64())
        .expect("member user");
    laptop.ok(&admin, &["user", "disable", "--email", MEMBER_EMAIL]);
    let users = laptop.json(&admin, &["user", "list", "--json"]);
    let dev = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == user_id)
        .cloned()
        .expect("listed");
    assert_eq!(dev["status"], "disabled");
    local_ok(&db, &["user", "enable", "--email", MEMBER_EMAIL]);
    let renamed = laptop.json(
        &admin,
        &[
            "user",
            "update",
            "--email",
            MEMBER_EMAIL,
            "--name",
            "Dev One",
            "--json",
        ],
    );
    assert_eq!(
        (renamed["display_name"].as_str(), renamed["status"].as_str()),
        (Some("Dev One"), Some("active")),
        "{renamed}"
    );
    let promoted = parse(
        &local_ok(
            &db,
            &[
                "user",
                "update",
                "--email",
                MEMBER_EMAIL,
                "--admin",
                "true",
                "--json",
            ],
        ),
        &["user update"],
    );
    assert_eq!(promoted["is_admin"], true);
    let demoted = laptop.json(
        &admin,
        &[
            "user",
            "update",
            "--email",
            MEMBER_EMAIL,
            "--admin",
            "false",
            "--json",
        ],
    );
    assert_eq!(demoted["is_admin"], false);
    // The token's user is an actor with a self: it cannot disable itself (the operator has none).
    refused(
        &laptop.run(&admin, &["user", "disable", "--email", ADMIN_EMAIL]),
        "cannot disable yourself",
        "an admin disabling themselves",
    );

    // The token count of seed 003, from a laptop: in the server's readings.
    let recorded = laptop.json(&admin, &["sync", "record", "350K", "coding", "--json"]);
    assert_eq!(recorded["total_used"], 350_000);
    let local = parse(
        &local_ok(&db, &["sync", "record", "360K", "more", "--json"]),
        &["sync record"],
    );
    assert_eq!(local["increment"], 10_000);
    let readings = root
        .ok(
            Method::GET,
            &format!("/api/v1/counters/default/readings?team_id={default}"),
            None,
            200,
        )
        .await;
    let figures: Vec<i64> = readings
        .as_array()
        .or_else(|| readings["items"].as_array())
        .expect("readings")
        .iter()
        .filter_map(|r| r["reading"].as_i64())
        .collect();
    assert!(figures.contains(&350_000), "{readings}");
    let remote_reading = recorded["reading_id"].as_i64().expect("reading id");
    let corrected = laptop.json(
        &admin,
        &[
            "sync",
            "correct",
            &remote_reading.to_string(),
            "340K",
            "--json",
        ],
    );
    assert_eq!(corrected["reading"]["reading"], 340_000, "{corrected}");
    let sessions = laptop.home.path().join("sessions.json");
    std::fs::write(
        &sessions,
        r#"[{"tokens": 1000, "event": "a", "timestamp": 1767225600000}]"#,
    )
    .expect("write sessions");
    let imported = laptop.json(
        &admin,
        &[
            "sync",
            "import",
            &sessions.display().to_string(),
            "--counter",
            "imports",
            "--json",
        ],
    );
    assert_eq!(imported["imported"], 1);
    let estimated = laptop.json(
        &admin,
        &[
            "sync",
            "estimate",
            "hello there",
            "general kenobi",
            "--counter",
            "est",
            "--json",
        ],
    );
    let local_est = parse(
        &local_ok(
            &db,
            &[
                "sync",
                "estimate",
                "hello there",
                "general kenobi",
                "--counter",
                "est2",
                "--json",
            ],
        ),
        &["sync estimate"],
    );
    assert_eq!(estimated["increment"], local_est["increment"]);

    // Limits: set each way; the list is the same but for the use, which a server counts live.
    let team = default.to_string();
    let l1 = parse(
        &local_ok(
            &db,
            &["limit", "set", "--team", &team, "--rpm", "100", "--json"],
        ),
        &["limit set"],
    );
    let l2 = laptop.json(
        &admin,
        &[
            "limit", "set", "--team", &team, "--tokens", "1000", "--period", "day", "--json",
        ],
    );
    let text_set = laptop.ok(
        &admin,
        &["limit", "set", "--route", "r-api", "--concurrency", "3"],
    );
    assert!(
        text_set.starts_with("Set limit ") && text_set.contains("3 calls in flight"),
        "{text_set}"
    );
    let remote_limits = laptop.json(&admin, &["limit", "list", "--json"]);
    let local_limits = parse(
        &local_ok(&db, &["limit", "list", "--json"]),
        &["limit list"],
    );
    assert_eq!(
        without(remote_limits.clone(), &["usage"]),
        without(local_limits, &["usage"])
    );
    assert_eq!(remote_limits["limits"].as_array().map(Vec::len), Some(3));
    // Several limits in one command are all set or none: the refused second one undoes the first.
    refused(
        &laptop.run(
            &admin,
            &[
                "limit",
                "set",
                "--team",
                &team,
                "--rps",
                "10",
                "--concurrency",
                "0",
            ],
        ),
        "--concurrency",
        "a refused second limit",
    );
    let after = laptop.json(&admin, &["limit", "list", "--json"]);
    assert_eq!(
        without(after, &["usage"]),
        without(remote_limits, &["usage"])
    );
    let gone = laptop.ok(&admin, &["limit", "remove", &l2["id"].to_string()]);
    assert!(gone.contains("1000 tokens per day"), "{gone}");
    local_ok(&db, &["limit", "remove", &l1["id"].to_string()]);
    refused(
        &laptop.run(&admin, &["limit", "remove", "999999"]),
        "no limit with id 999999",
        "a missing limit",
    );

    // Reads: the same bytes either way, tables and JSON.
    for args in [
        &["key", "list"][..],
        &["key", "list", "--json"],
        &["key", "list", "--team", "default", "--unused", "--json"],
        &["route", "list"],
        &["route", "list", "--json"],
        &["team", "list"],
        &["team", "list", "--json"],
        &["team", "show", "navy", "--json"],
        &["member", "list", "--team", "navy"],
        &["member", "list", "--team", "default", "--json"],
        &["invitation", "list", "--team", "navy", "--json"],
        &["user", "list"],
        &["user", "list", "--json"],
        &["sync", "status"],
        &["sync", "status", "--json"],
        &["sync", "status", "--counter", "imports", "--json"],
    ] {
        assert_eq!(
            laptop.ok(&admin, args),
            local_ok(&db, args),
            "tollgate {args:?}: remote and local differ"
        );
    }
    // Flags work as the environment does.
    let out = laptop.run_flags(&admin, &["route", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        local_ok(&db, &["route", "list", "--json"])
    );

    // Tokens: a remote token manages its own user's.
    let ci = laptop.json(&admin, &["token", "create", "--name", "ci", "--json"]);
    let tid = ci["id"].as_i64().expect("token id");
    let ci_token = ci["token"].as_str().expect("tgp");
    assert!(ci_token.starts_with("tgp_"), "{ci}");
    let mine = laptop.json(&admin, &["token", "list", "--json"]);
    let theirs = parse(
        &local_ok(&db, &["token", "list", "--email", ADMIN_EMAIL, "--json"]),
        &["token list"],
    );
    // Using a token marks it used: the one difference two listings may show.
    assert_eq!(
        without(mine, &["last_used_at"]),
        without(theirs, &["last_used_at"])
    );
    laptop.ok(&admin, &["token", "revoke", &tid.to_string()]);
    let out = laptop.run(ci_token, &["team", "list"]);
    refused(&out, "refused the token (401", "a revoked token");
    refused(
        &laptop.run(&admin, &["token", "list", "--email", MEMBER_EMAIL]),
        "--email",
        "another user's tokens",
    );

    // Removals.
    laptop.ok(
        &admin,
        &[
            "invitation",
            "revoke",
            "--team",
            "navy",
            &inv["invitation"]["id"].to_string(),
        ],
    );
    laptop.ok(
        &admin,
        &[
            "member",
            "remove",
            "--team",
            "navy",
            "--email",
            MEMBER_EMAIL,
        ],
    );
    laptop.ok(&admin, &["team", "delete", "navy"]);
    let revoked = laptop.json(
        &admin,
        &["key", "revoke", &key_ids[0].to_string(), "--json"],
    );
    assert_eq!(revoked["status"], "revoked");
    let local = parse(
        &local_ok(&db, &["key", "revoke", &key_ids[1].to_string(), "--json"]),
        &["key revoke"],
    );
    assert_eq!(
        without(
            revoked,
            &[
                "id",
                "prefix",
                "created_by",
                "created_at",
                "revoked_at",
                "expires_at",
                "routes",
                "models"
            ]
        ),
        without(
            local,
            &[
                "id",
                "prefix",
                "created_by",
                "created_at",
                "revoked_at",
                "expires_at",
                "routes",
                "models"
            ]
        )
    );
    laptop.ok(&admin, &["route", "remove", "r-api"]);
    refused(
        &laptop.run(&admin, &["key", "revoke", "999999"]),
        "no key with id 999999",
        "a missing key",
    );
    refused(
        &laptop.run(&admin, &["route", "remove", "ghost"]),
        "no route named `ghost`",
        "a missing route",
    );
    refused(
        &laptop.run(&admin, &["key", "create", "--name", "", "--json"]),
        "--name",
        "an empty key name names its flag",
    );

    assert!(
        !laptop.data_dir().exists() && !laptop.home.path().join("tollgate.db").exists(),
        "a remote command never creates a local store"
    );
}
both_backends!(remote_commands_print_what_local_ones_do);

async fn a_members_token_has_a_members_rights(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let default = default_team(&root).await;
    let _member = invite_user(&server, &root, default, MEMBER_EMAIL, "member").await;
    let admin = token_for(&db, ADMIN_EMAIL, "ops");
    let dev = token_for(&db, MEMBER_EMAIL, "laptop");
    let laptop = Laptop::new(&server);
    let (admins_key, _) = crate::harness::add_key(&db, "ops-key", &[]);

    // What a member may do: record readings, create and manage their own keys.
    let r = laptop.json(&dev, &["sync", "record", "12K", "--json"]);
    assert_eq!(r["total_used"], 12_000);
    let own = laptop.json(&dev, &["key", "create", "--name", "mine", "--json"]);
    let own_id = own["id"].as_i64().expect("id").to_string();
    laptop.ok(&dev, &["key", "update", &own_id, "--name", "still-mine"]);
    let readings = root
        .ok(
            Method::GET,
            &format!("/api/v1/counters/default/readings?team_id={default}"),
            None,
            200,
        )
        .await;
    assert!(
        readings.to_string().contains(MEMBER_EMAIL),
        "the reading is the member's: {readings}"
    );

    // What a member may not: each refused with the API's own words, changing nothing.
    let before = cli_json(&db, &["key", "list", "--json"]);
    let cases: &[(&[&str], &str)] = &[
        (&["team", "create", "--name", "mine"], "instance admin"),
        (&["user", "list"], "instance admin"),
        (
            &[
                "route",
                "add",
                "--name",
                "x",
                "--prefix",
                "/x",
                "--upstream",
                "https://api.example.com",
            ],
            "admin",
        ),
        (
            &["key", "revoke", &admins_key.to_string()],
            "owners and admins",
        ),
        (&["team", "rename", "default", "--name", "mine"], "admin"),
        (
            &["limit", "set", "--instance", "--rpm", "5"],
            "instance admin",
        ),
        (
            &[
                "invitation",
                "create",
                "--team",
                "default",
                "--email",
                "a@example.com",
            ],
            "admin",
        ),
    ];
    for (args, needle) in cases {
        refused(
            &laptop.run(&dev, args),
            needle,
            &format!("member: {args:?}"),
        );
    }
    assert_eq!(cli_json(&db, &["key", "list", "--json"]), before);
    assert_eq!(
        cli_json(&db, &["team", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // A viewer reads but creates nothing.
    let _viewer = invite_user(&server, &root, default, "v@example.com", "viewer").await;
    let viewer = token_for(&db, "v@example.com", "read-only");
    let seen = laptop.json(&viewer, &["key", "list", "--json"]);
    assert_eq!(
        seen.as_array().map(Vec::len),
        before.as_array().map(Vec::len)
    );
    refused(
        &laptop.run(&viewer, &["key", "create", "--name", "v"]),
        "member role",
        "a viewer creates no key",
    );
    // The admin's token may.
    laptop.ok(&admin, &["key", "revoke", &admins_key.to_string()]);
}
both_backends!(a_members_token_has_a_members_rights);

async fn remote_flags_are_checked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = token_for(&db, ADMIN_EMAIL, "ops");
    let laptop = Laptop::new(&server);
    let dir = laptop.home.path();
    let run = |args: &[&str]| cli_env(&[], dir, args);
    let url = server.console_url("");

    refused(
        &run(&["--server", &url, "key", "list"]),
        "--server needs a personal access token",
        "no token",
    );
    refused(
        &run(&["--token", &admin, "key", "list"]),
        "give --server",
        "a token without a server",
    );
    refused(
        &run(&["--server", &url, "--token", "ntk_notatoken", "key", "list"]),
        "--token: a personal access token starts with tgp_",
        "a gateway key as token",
    );
    refused(
        &run(&[
            "--server",
            "ftp://example.com",
            "--token",
            &admin,
            "key",
            "list",
        ]),
        "--server",
        "not http",
    );
    refused(
        &run(&[
            "--server",
            "http://127.0.0.1:9",
            "--token",
            &admin,
            "key",
            "list",
        ]),
        "cannot be reached",
        "nothing listening",
    );
    // TLS spoken to a plain-HTTP listener: a TLS failure, named, with the server.
    let tls = url.replacen("http://", "https://", 1);
    let out = run(&["--server", &tls, "--token", &admin, "key", "list"]);
    refused(
        &out,
        &format!("the server {tls}"),
        "TLS to a plain listener",
    );
    assert!(
        text(&out.stderr).to_ascii_lowercase().contains("tls")
            || text(&out.stderr).to_ascii_lowercase().contains("ssl")
            || text(&out.stderr).contains("record"),
        "the TLS failure is named: {}",
        text(&out.stderr)
    );
    refused(
        &run(&["--server", &url, "--token", "tgp_wrong", "key", "list"]),
        "refused the token (401",
        "an unknown token",
    );
    refused(
        &run(&[
            "--server",
            &url,
            "--token",
            &admin,
            "--database-url",
            &db.url,
            "key",
            "list",
        ]),
        "--database-url",
        "a local store and a server",
    );
    for (args, word) in [
        (&["serve"][..], "serve"),
        (&["migrate"], "migrate"),
        (&["demo", "--events", "10"], "demo"),
        (&["config"], "config"),
    ] {
        let mut all = vec!["--server", url.as_str(), "--token", admin.as_str()];
        all.extend_from_slice(args);
        refused(
            &run(&all),
            &format!("`tollgate {word}` does not take --server"),
            word,
        );
    }
    // Edge tokens: created and revoked remotely, the secret alone on stdout; it reads the edge
    // snapshot until it is revoked.
    let laptop_run = |args: &[&str]| laptop.run(&admin, args);
    let out = laptop_run(&["token", "create-edge", "--name", "cf"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let edge = text(&out.stdout);
    assert_eq!(edge.lines().count(), 1, "{edge}");
    let edge = edge.trim().to_owned();
    assert!(edge.starts_with("tge_"), "{edge}");
    let local_edge = cli_json(&db, &["token", "create-edge", "--name", "cf2", "--json"]);
    let remote_edge = laptop.json(&admin, &["token", "create-edge", "--name", "cf3", "--json"]);
    assert_eq!(
        without(local_edge, &["id", "token", "prefix"]),
        without(remote_edge.clone(), &["id", "token", "prefix"])
    );
    let snapshot = |token: String| {
        let url = server.console_url("/api/v1/edge/snapshot");
        async move {
            crate::harness::client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("snapshot")
                .status()
                .as_u16()
        }
    };
    assert_eq!(snapshot(edge.clone()).await, 200);
    let first = parse(
        &laptop.ok(&admin, &["token", "create-edge", "--name", "cf4", "--json"]),
        &["token create-edge"],
    );
    let revoked = laptop.ok(
        &admin,
        &["token", "revoke-edge", "--id", &first["id"].to_string()],
    );
    assert!(revoked.contains("`cf4` revoked"), "{revoked}");
    assert_eq!(
        snapshot(first["token"].as_str().expect("tge").to_owned()).await,
        401
    );

    // The token never shows: not in errors, not in --help.
    let out = run(&[
        "--server",
        "http://127.0.0.1:9",
        "--token",
        &admin,
        "key",
        "list",
    ]);
    assert!(!text(&out.stderr).contains(&admin[4..]));
    assert!(!Path::new(&dir.join("data")).exists());
}
both_backends!(remote_flags_are_checked);

/// The table without its `period` row (its times are the seconds each command ran at).
fn without_period(table: &str) -> String {
    table
        .lines()
        .filter(|l| !l.contains("period"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn usage_reads_the_same_remotely(backend: Backend) {
    let db = TestDb::new(backend).await;
    local_ok(&db, &["demo", "--events", "3000", "--days", "3"]);
    let server = Server::start(&db, &console_env()).await;
    let admin = token_for(&db, ADMIN_EMAIL, "ops");
    let laptop = Laptop::new(&server);

    let stats = ["usage", "stats", "--since", "7d", "--json"];
    let remote = laptop.json(&admin, &stats);
    let local = parse(&local_ok(&db, &stats), &stats);
    assert!(
        remote["summary"]["calls"].as_i64().is_some_and(|c| c > 0),
        "{remote}"
    );
    assert_eq!(
        without(remote, &["from", "to"]),
        without(local, &["from", "to"])
    );
    let table = ["usage", "stats", "--since", "7d"];
    assert_eq!(
        without_period(&laptop.ok(&admin, &table)),
        without_period(&local_ok(&db, &table))
    );
    for by in ["key", "route", "model", "team", "status_class"] {
        for json in [true, false] {
            let mut args = vec![
                "usage", "top", "--since", "7d", "--by", by, "--order", "tokens",
            ];
            if json {
                args.push("--json");
            }
            assert_eq!(
                laptop.ok(&admin, &args),
                local_ok(&db, &args),
                "tollgate {args:?}: remote and local differ"
            );
        }
    }
    let filtered = [
        "usage",
        "stats",
        "--since",
        "7d",
        "--model",
        "gpt-4o-mini",
        "--json",
    ];
    assert_eq!(
        without(laptop.json(&admin, &filtered), &["from", "to"]),
        without(parse(&local_ok(&db, &filtered), &filtered), &["from", "to"])
    );
    for format in ["csv", "ndjson", "json"] {
        let remote_file = laptop.home.path().join(format!("remote.{format}"));
        let local_file = laptop.home.path().join(format!("local.{format}"));
        let args = |file: &Path| {
            vec![
                "usage".to_owned(),
                "export".into(),
                "--since".into(),
                "7d".into(),
                "--format".into(),
                format.into(),
                "--output".into(),
                file.display().to_string(),
            ]
        };
        let a = args(&remote_file);
        laptop.ok(&admin, &a.iter().map(String::as_str).collect::<Vec<_>>());
        let b = args(&local_file);
        local_ok(&db, &b.iter().map(String::as_str).collect::<Vec<_>>());
        let (r, l) = (
            std::fs::read_to_string(&remote_file).expect("remote export"),
            std::fs::read_to_string(&local_file).expect("local export"),
        );
        assert!(r.len() > 1000, "{format}: {r}");
        assert_eq!(r, l, "{format}: the exports differ");
    }
    refused(
        &laptop.run(&admin, &["usage", "top", "--limit", "500"]),
        "--limit",
        "a server answers at most 100",
    );
}
both_backends!(usage_reads_the_same_remotely);

async fn alert_channels_the_same_remotely(backend: Backend) {
    use crate::alerts::{ALLOW_LOOPBACK, receiver};
    let db = TestDb::new(backend).await;
    let (addr, _received) = receiver(&[]).await;
    let webhook = format!("http://{addr}/hook");
    let mut env = console_env();
    env.push(ALLOW_LOOPBACK);
    let server = Server::start(&db, &env).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let default = default_team(&root).await;
    let _member = invite_user(&server, &root, default, MEMBER_EMAIL, "member").await;
    let admin = token_for(&db, ADMIN_EMAIL, "ops");
    let dev = token_for(&db, MEMBER_EMAIL, "laptop");
    let laptop = Laptop::new(&server);
    let local = |args: &[&str]| {
        let out = cli_env(
            &crate::harness::base_env(&db, &[ALLOW_LOOPBACK]),
            db.dir.path(),
            args,
        );
        assert!(
            out.status.success(),
            "local {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };

    let remote_add = laptop.json(
        &admin,
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops-r",
            "--webhook",
            &webhook,
            "--json",
        ],
    );
    let local_add = parse(
        &local(&[
            "alert",
            "channel",
            "add",
            "--name",
            "ops-l",
            "--webhook",
            &webhook,
            "--format",
            "slack",
            "--json",
        ]),
        &["alert channel add"],
    );
    for added in [&remote_add, &local_add] {
        assert!(
            added["secret"].as_str().is_some_and(|s| s.len() >= 32),
            "{added}"
        );
    }
    // The secret alone on standard output.
    let plain = laptop.ok(
        &admin,
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops-p",
            "--webhook",
            &webhook,
        ],
    );
    assert_eq!(plain.lines().count(), 1, "{plain}");
    for args in [
        &["alert", "channel", "list"][..],
        &["alert", "channel", "list", "--json"],
    ] {
        assert_eq!(laptop.ok(&admin, args), local(args), "tollgate {args:?}");
    }
    let (r_id, l_id) = (remote_add["id"].to_string(), local_add["id"].to_string());
    let remote_test = laptop.json(&admin, &["alert", "test", &r_id, "--json"]);
    let local_test = parse(&local(&["alert", "test", &l_id, "--json"]), &["alert test"]);
    assert_eq!(remote_test["status"], "delivered", "{remote_test}");
    let varying = ["channel_id", "dedup_key", "latency_ms"];
    assert_eq!(
        without(remote_test, &varying),
        without(local_test, &varying)
    );
    refused(
        &laptop.run(
            &admin,
            &[
                "alert",
                "channel",
                "add",
                "--name",
                "x",
                "--webhook",
                "ftp://x/y",
            ],
        ),
        "--webhook",
        "a bad webhook names its flag",
    );
    refused(
        &laptop.run(&dev, &["alert", "channel", "list"]),
        "instance admin",
        "a member lists no alert channels",
    );
    for id in [&r_id, &l_id] {
        let out = laptop.ok(&admin, &["alert", "channel", "remove", id]);
        assert_eq!(out.trim(), format!("alert channel {id} removed"));
    }
    let left = laptop.json(&admin, &["alert", "channel", "list", "--json"]);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
}
both_backends!(alert_channels_the_same_remotely);
