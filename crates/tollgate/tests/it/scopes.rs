//! Counters belong to a team, and nobody joins a team without consenting, through the real binary.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, cli, cli_json};

async fn new_team(root: &Api, name: &str) -> i64 {
    root.ok(
        Method::POST,
        "/api/v1/teams",
        Some(json!({ "name": name })),
        201,
    )
    .await["id"]
        .as_i64()
        .expect("id")
}

fn names(list: &Value) -> Vec<(String, i64)> {
    list.as_array()
        .expect("counters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["team_id"].as_i64().expect("team_id"),
            )
        })
        .collect()
}

async fn counters_are_team_scoped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let red = new_team(&root, "red").await;
    let blue = new_team(&root, "blue").await;
    let member = invite_user(&server, &root, red, "m@example.com", "member").await;
    let viewer = invite_user(&server, &root, red, "v@example.com", "viewer").await;
    let stranger = invite_user(&server, &root, blue, "s@example.com", "member").await;

    // A member records on their only team's counter without naming it; so does the stranger on
    // theirs: same name, two counters.
    let r = member
        .ok(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": "350K", "counter": "cursor"})),
            200,
        )
        .await;
    assert_eq!(r["total_used"], 350_000);
    stranger
        .ok(
            Method::POST,
            "/api/v1/counters/cursor/readings",
            Some(json!({"reading": 7})),
            201,
        )
        .await;
    assert_eq!(
        names(&member.ok(Method::GET, "/api/v1/counters", None, 200).await),
        vec![("cursor".to_owned(), red)]
    );
    assert_eq!(
        names(
            &stranger
                .ok(Method::GET, "/api/v1/counters", None, 200)
                .await
        ),
        vec![("cursor".to_owned(), blue)]
    );
    let s = viewer
        .ok(Method::GET, "/api/v1/counters/cursor", None, 200)
        .await;
    assert_eq!(
        (s["used"].as_i64(), s["team_id"].as_i64()),
        (Some(350_000), Some(red))
    );

    // Viewers read but cannot record, nor reset (a lower reading); the counter is unchanged.
    for body in [json!({"reading": 400_000}), json!({"reading": 1})] {
        let (status, _) = viewer
            .call(Method::POST, "/api/v1/counters/cursor/readings", Some(body))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = viewer
        .call(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": 1, "counter": "cursor"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let readings = viewer
        .ok(Method::GET, "/api/v1/counters/cursor/readings", None, 200)
        .await;
    assert_eq!(readings.as_array().map(Vec::len), Some(1));

    // Another team's counter does not exist for the stranger, named explicitly or not.
    for path in [
        format!("/api/v1/counters/cursor?team_id={red}"),
        format!("/api/v1/counters/cursor/readings?team_id={red}"),
    ] {
        let (status, _) = stranger.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = stranger
        .call(
            Method::POST,
            &format!("/api/v1/counters/cursor/readings?team_id={red}"),
            Some(json!({"reading": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = stranger
        .call(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": 1, "counter": "cursor", "team_id": red})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let red_cursor = root
        .ok(
            Method::GET,
            &format!("/api/v1/counters/cursor?team_id={red}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        red_cursor["used"], 350_000,
        "nothing the others sent landed"
    );

    // The CLI records on a named team's counter; an unknown team is one clear line.
    let r = cli_json(
        &db,
        &[
            "sync",
            "record",
            "5K",
            "--counter",
            "cursor",
            "--team",
            "blue",
            "--json",
        ],
    );
    assert_eq!(r["total_used"], 5_000);
    let out = cli(&db, &["sync", "record", "5K", "--team", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("team `nope` does not exist"), "{err}");
    assert_eq!(
        root.ok(
            Method::GET,
            &format!("/api/v1/counters/cursor?team_id={red}"),
            None,
            200
        )
        .await["used"],
        350_000
    );
}
both_backends!(counters_are_team_scoped);

async fn members_join_only_by_accepting_an_invitation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let red = new_team(&root, "red").await;
    let blue = new_team(&root, "blue").await;
    let owner = invite_user(&server, &root, red, "owner@example.com", "owner").await;
    let outsider = invite_user(&server, &root, blue, "out@example.com", "member").await;
    let outsider_id = outsider.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");

    // A team owner putting a registered non-member, and an id nobody has: the same answer, nobody
    // added.
    let admin = invite_user(&server, &owner, red, "admin@example.com", "admin").await;
    let mut answers = Vec::new();
    for user_id in [outsider_id, 987_654] {
        for api in [&owner, &admin] {
            let (status, body) = api
                .call(
                    Method::PUT,
                    &format!("/api/v1/teams/{red}/members/{user_id}"),
                    Some(json!({"role": "member"})),
                )
                .await;
            answers.push((
                status,
                body["error"]["code"].clone(),
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    // Only the user's id: a team id that happens to be equal stays.
                    .replace(&format!("user {user_id}"), "user N"),
            ));
        }
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]) && answers[0].0 == StatusCode::NOT_FOUND,
        "{answers:?}"
    );
    let members = owner
        .ok(
            Method::GET,
            &format!("/api/v1/teams/{red}/members"),
            None,
            200,
        )
        .await;
    assert!(
        !members.to_string().contains("out@example.com"),
        "added without consent: {members}"
    );

    // Inviting a registered address and an unknown one: the same answer.
    let mut shapes = Vec::new();
    for email in ["out@example.com", "nobody-here@example.com"] {
        let (status, body) = owner
            .call(
                Method::POST,
                &format!("/api/v1/teams/{red}/invitations"),
                Some(json!({"email": email, "role": "member"})),
            )
            .await;
        let mut keys: Vec<String> = body
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        shapes.push((
            status,
            keys,
            body["role"].clone(),
            body["accepted_at"].clone(),
        ));
    }
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(shapes[0].0, StatusCode::CREATED);

    // Role changes of real members still work.
    let member = invite_user(&server, &owner, red, "m@example.com", "member").await;
    let member_id = member.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    let changed = owner
        .ok(
            Method::PUT,
            &format!("/api/v1/teams/{red}/members/{member_id}"),
            Some(json!({"role": "viewer"})),
            200,
        )
        .await;
    assert_eq!(changed["role"], "viewer");
}
both_backends!(members_join_only_by_accepting_an_invitation);
