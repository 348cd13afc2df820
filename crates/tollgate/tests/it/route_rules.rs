//! Route rules through the real binary with real principals: a route's
//! upstream credential never follows it to another host, team admins can neither set credentials
//! nor move routes nor reach internal hosts, and a team cannot squat another team's prefix.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, add_key, base_env, cli_env, cli_json, client};

/// The instance admin and a team admin of a fresh team.
async fn principals(server: &Server, team: &str, email: &str) -> (Api, i64, Api) {
    let root = Api::login(server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team_id = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": team})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("team id");
    let admin = invite_user(server, &root, team_id, email, "admin").await;
    (root, team_id, admin)
}

fn error_of(body: &Value) -> (String, String) {
    (
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn credentials_stay_with_their_host(backend: Backend) {
    let first = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock");
    let second = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock");
    let db = TestDb::new(backend).await;
    // Both mocks listen on loopback: allowed, so that only the credential rules are at work.
    let mut env = console_env();
    env.push(("TOLLGATE_UPSTREAM_ALLOWLIST", r#"["127.0.0.1/32"]"#));
    let server = Server::start(&db, &env).await;
    let (root, team, ada) = principals(&server, "alpha", "ada@example.com").await;

    // The instance admin sets up a route with a credential.
    let route = root
        .ok(
            Method::POST,
            "/api/v1/routes",
            Some(json!({"team_id": team, "name": "svc", "prefix": "/svc", "upstream_url": first.url(), "upstream_key": "sk-first-host-only"})),
            201,
        )
        .await;
    let id = route["id"].as_i64().expect("id");
    let path = format!("/api/v1/routes/{id}");
    assert_eq!(route["has_credential"], true);

    // The team admin may neither move it (even to an allowed host) nor set a credential: 403
    // naming why, and nothing changes.
    let (status, body) = ada
        .call(
            Method::PATCH,
            &path,
            Some(json!({"upstream_url": second.url()})),
        )
        .await;
    assert_eq!(status.as_u16(), 403, "{body}");
    let (code, message) = error_of(&body);
    assert_eq!(code, "forbidden");
    assert!(
        message.contains("instance admin") && message.contains(&second.addr().to_string()),
        "{message}"
    );
    for patch in [
        json!({"upstream_key": "sk-mine"}),
        json!({"upstream_url": second.url(), "upstream_key": "sk-mine"}),
    ] {
        let (status, body) = ada.call(Method::PATCH, &path, Some(patch)).await;
        assert_eq!(status.as_u16(), 403, "{body}");
        assert!(error_of(&body).1.contains("credential"), "{body}");
    }
    let (status, body) = ada
        .call(
            Method::POST,
            "/api/v1/routes",
            Some(json!({"team_id": team, "name": "own", "prefix": "/own", "upstream_url": "http://192.0.2.10", "upstream_key": "sk-x"})),
        )
        .await;
    assert_eq!(status.as_u16(), 403, "{body}");
    let now = ada.ok(Method::GET, &path, None, 200).await;
    assert_eq!(now["upstream_url"], first.url().as_str());
    assert_eq!(now["has_credential"], true);
    // A path change on the same host keeps the credential, for a team admin too.
    let same = ada
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"upstream_url": format!("{}/v1", first.url())})),
            200,
        )
        .await;
    assert_eq!(same["has_credential"], true);

    // The instance admin moves it: the credential is gone, and the new host never sees it.
    let moved = root
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"upstream_url": second.url()})),
            200,
        )
        .await;
    assert_eq!(moved["has_credential"], false, "{moved}");
    let (_, key) = add_key(&db, "caller", &["--team", "alpha"]);
    let http = client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let resp = http
            .get(server.url("/svc/hello"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("gateway");
        if !second.requests().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the moved route never reached the second host: {}",
            resp.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for request in second.requests() {
        let auth = request.header("authorization").unwrap_or_default();
        assert!(
            !auth.contains("sk-first-host-only"),
            "the credential followed the route to another host: {auth}"
        );
    }
    // Moving with a new credential in the same request keeps the new one.
    let reset = root
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"upstream_url": first.url(), "upstream_key": "sk-again"})),
            200,
        )
        .await;
    assert_eq!(reset["has_credential"], true);
}
both_backends!(credentials_stay_with_their_host);

async fn team_admins_cannot_reach_internal_hosts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let (root, team, ada) = principals(&server, "alpha", "ada@example.com").await;
    let console = server.console.to_string();
    let cases = [
        ("http://127.0.0.1:8080", "127.0.0.1", "loopback"),
        (
            "http://169.254.169.254/latest",
            "169.254.169.254",
            "link-local",
        ),
        ("http://localhost:5432", "localhost", "loopback"),
        ("http://[::1]:6379", "[::1]", "loopback"),
        ("http://0x7f000001", "127.0.0.1", "loopback"),
        ("http://10.0.0.5", "10.0.0.5", "private"),
        ("http://[fd00::1]", "[fd00::1]", "private"),
        ("http://0.0.0.0:9", "0.0.0.0", "unspecified"),
    ];
    let own = format!("http://{console}");
    let mut all: Vec<(&str, &str, &str)> = cases.to_vec();
    all.push((own.as_str(), "127.0.0.1", "loopback"));
    for (n, (url, host, reason)) in all.iter().enumerate() {
        let (status, body) = ada
            .call(
                Method::POST,
                "/api/v1/routes",
                Some(json!({"team_id": team, "name": format!("in{n}"), "prefix": format!("/in{n}"), "upstream_url": url})),
            )
            .await;
        assert_eq!(status.as_u16(), 422, "{url}: {body}");
        assert_eq!(body["error"]["field"], "upstream_url", "{body}");
        let message = error_of(&body).1;
        assert!(
            message.contains(&format!("`{host}`")) && message.contains(reason),
            "{url}: {message}"
        );
    }
    // A public address is fine; an instance admin may point anywhere.
    ada.ok(
        Method::POST,
        "/api/v1/routes",
        Some(json!({"team_id": team, "name": "pub", "prefix": "/pub", "upstream_url": "http://192.0.2.10"})),
        201,
    )
    .await;
    root.ok(
        Method::POST,
        "/api/v1/routes",
        Some(json!({"team_id": team, "name": "local", "prefix": "/local", "upstream_url": "http://127.0.0.1:9"})),
        201,
    )
    .await;
    let routes = root.ok(Method::GET, "/api/v1/routes", None, 200).await;
    assert_eq!(
        routes.as_array().expect("routes").len(),
        2,
        "refused creations add nothing: {routes}"
    );
}
both_backends!(team_admins_cannot_reach_internal_hosts);

async fn the_allowlist_opens_named_internal_hosts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = console_env();
    env.push((
        "TOLLGATE_UPSTREAM_ALLOWLIST",
        r#"["127.0.0.0/8", "localhost"]"#,
    ));
    let server = Server::start(&db, &env).await;
    let (_, team, ada) = principals(&server, "alpha", "ada@example.com").await;
    for (n, url) in ["http://127.0.0.1:9", "http://localhost:9"]
        .iter()
        .enumerate()
    {
        ada.ok(
            Method::POST,
            "/api/v1/routes",
            Some(json!({"team_id": team, "name": format!("ok{n}"), "prefix": format!("/ok{n}"), "upstream_url": url})),
            201,
        )
        .await;
    }
    let (status, body) = ada
        .call(
            Method::POST,
            "/api/v1/routes",
            Some(json!({"team_id": team, "name": "meta", "prefix": "/meta", "upstream_url": "http://169.254.169.254"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "not on the list: {body}");
}
both_backends!(the_allowlist_opens_named_internal_hosts);

async fn teams_cannot_squat_other_prefixes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let (root, alpha, ada) = principals(&server, "alpha", "ada@example.com").await;
    let beta = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "beta"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("beta");
    let bob = invite_user(&server, &root, beta, "bob@example.com", "admin").await;
    let route = |team: Option<i64>, name: &str, prefix: &str| json!({"team_id": team, "name": name, "prefix": prefix, "upstream_url": "http://192.0.2.10"});
    root.ok(
        Method::POST,
        "/api/v1/routes",
        Some(route(Some(alpha), "openai", "/openai")),
        201,
    )
    .await;
    root.ok(
        Method::POST,
        "/api/v1/routes",
        Some(route(None, "shared", "/shared")),
        201,
    )
    .await;
    for (prefix, other) in [
        ("/openai/v1", "/openai"),
        ("/shared/x", "/shared"),
        ("/", "/openai"),
    ] {
        let (status, body) = bob
            .call(
                Method::POST,
                "/api/v1/routes",
                Some(route(Some(beta), "squat", prefix)),
            )
            .await;
        assert_eq!(status.as_u16(), 409, "{prefix}: {body}");
        let (code, message) = error_of(&body);
        assert_eq!(code, "prefix_conflict");
        assert!(message.contains(&format!("`{other}`")), "{message}");
        assert!(!message.contains("alpha"), "names no team: {message}");
    }
    // Not on a segment boundary: no conflict. Moving it under /openai later is refused too.
    let own = bob
        .ok(
            Method::POST,
            "/api/v1/routes",
            Some(route(Some(beta), "openai2", "/openai2")),
            201,
        )
        .await;
    let (status, body) = bob
        .call(
            Method::PATCH,
            &format!("/api/v1/routes/{}", own["id"]),
            Some(json!({"prefix": "/openai/v2"})),
        )
        .await;
    assert_eq!(status.as_u16(), 409, "{body}");
    // The owning team may nest its own prefixes; the instance admin may do anything.
    ada.ok(
        Method::POST,
        "/api/v1/routes",
        Some(route(Some(alpha), "openai-v1", "/openai/v1")),
        201,
    )
    .await;
    root.ok(
        Method::POST,
        "/api/v1/routes",
        Some(route(Some(beta), "beta-v9", "/openai/v9")),
        201,
    )
    .await;
}
both_backends!(teams_cannot_squat_other_prefixes);

async fn cli_route_update_clears_credential_on_move(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = base_env(&db, &[("UPSTREAM_KEY_FOR_TEST", "sk-cli")]);
    let run = |args: &[&str]| {
        let out = cli_env(&env, db.dir.path(), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("json")
    };
    let created = run(&[
        "route",
        "add",
        "--name",
        "svc",
        "--prefix",
        "/svc",
        "--upstream",
        "https://api.example.com",
        "--upstream-key-env",
        "UPSTREAM_KEY_FOR_TEST",
        "--json",
    ]);
    assert_eq!(created["has_credential"], true);
    let same = run(&[
        "route",
        "update",
        "svc",
        "--upstream",
        "https://api.example.com/v1",
        "--json",
    ]);
    assert_eq!(same["has_credential"], true, "same host keeps it");
    let moved = run(&[
        "route",
        "update",
        "/svc",
        "--upstream",
        "https://other.example.com",
        "--json",
    ]);
    assert_eq!(moved["has_credential"], false, "another host drops it");
    let id = moved["id"].to_string();
    let both = run(&[
        "route",
        "update",
        &id,
        "--upstream",
        "https://third.example.com",
        "--upstream-key-env",
        "UPSTREAM_KEY_FOR_TEST",
        "--json",
    ]);
    assert_eq!(both["has_credential"], true);
    assert_eq!(both["upstream"], "https://third.example.com");
    let cleared = run(&["route", "update", "svc", "--clear-credential", "--json"]);
    assert_eq!(cleared["has_credential"], false);
    let out = cli_env(
        &env,
        db.dir.path(),
        &["route", "update", "svc", "--upstream", "ftp://nope"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--upstream"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli_env(&env, db.dir.path(), &["route", "update", "ghost"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no route named `ghost`"));
    let list = cli_json(&db, &["route", "list", "--json"]);
    assert_eq!(list[0]["upstream"], "https://third.example.com");
}
both_backends!(cli_route_update_clears_credential_on_move);
