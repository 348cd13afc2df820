//! The console API over real HTTP against the real binary: sign-in, CSRF, throttling, invitations,
//! keys and their one-time reveal, disabled users, ingest authentication and dedupe, the audit log.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::harness::{Backend, Server, TestDb, add_key, add_route, cli_json, client};

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const USER_PASSWORD: &str = "violet tractor marmalade 42";
pub const INGEST_SECRET: &str = "ingest-secret-0123456789abcdef";

/// Environment for a server with a first admin and an ingest secret.
pub fn console_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TOLLGATE_ADMIN_EMAIL", ADMIN_EMAIL),
        ("TOLLGATE_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TOLLGATE_INGEST_SECRET", INGEST_SECRET),
    ]
}

/// A console caller: anonymous, a session (cookie + CSRF token), or a bearer token.
#[derive(Clone)]
pub struct Api {
    base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn anonymous(server: &Server) -> Self {
        Self {
            base: server.console_url(""),
            cookie: None,
            csrf: None,
            bearer: None,
            http: client(),
        }
    }

    pub fn with_token(server: &Server, token: &str) -> Self {
        Self {
            bearer: Some(token.to_owned()),
            ..Self::anonymous(server)
        }
    }

    /// Signs in; panics unless it works.
    pub async fn login(server: &Server, email: &str, password: &str) -> Self {
        let mut api = Self::anonymous(server);
        let resp = api
            .raw(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "login of {email}");
        api.adopt_session(resp).await;
        api
    }

    /// Takes the session cookie and CSRF token from a sign-in answer.
    pub async fn adopt_session(&mut self, resp: reqwest::Response) -> Value {
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("tollgate_session="))
            .expect("session cookie")
            .to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        self.cookie = Some(cookie.split(';').next().expect("pair").to_owned());
        let body: Value = resp.json().await.expect("session json");
        self.csrf = body["csrf_token"].as_str().map(str::to_owned);
        body
    }

    pub async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("console request")
    }

    /// Sends and returns status and JSON (Null when the body is empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let resp = self.raw(method, path, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends and requires `expected`.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, v) = self.call(method.clone(), path, body).await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {v}");
        v
    }
}

/// Creates a user who joins `team_id` with `role` through an invitation; returns their session.
pub async fn invite_user(
    server: &Server,
    inviter: &Api,
    team_id: i64,
    email: &str,
    role: &str,
) -> Api {
    let inv = inviter
        .ok(
            Method::POST,
            &format!("/api/v1/teams/{team_id}/invitations"),
            Some(json!({"email": email, "role": role})),
            201,
        )
        .await;
    let token = inv["token"].as_str().expect("token");
    let mut api = Api::anonymous(server);
    let resp = api
        .raw(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            Some(json!({"password": USER_PASSWORD})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    api.adopt_session(resp).await;
    api
}

/// Sends events to the ingest API with the ingest secret and waits until they are written.
pub async fn ingest(server: &Server, events: &impl serde::Serialize) {
    let resp = client()
        .post(server.console_url("/api/v1/usage/events"))
        .bearer_auth(INGEST_SECRET)
        .json(events)
        .send()
        .await
        .expect("ingest");
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    server.wait_flushed().await;
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The ingest signing rule: `(X-Tollgate-Timestamp, X-Tollgate-Signature)` for `body` signed at
/// `ts` (unix seconds), the HMAC covering `"{ts}.{body}"`.
pub fn sign_ingest(secret: &str, ts: i64, body: &[u8]) -> (String, String) {
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    (
        ts.to_string(),
        format!("sha256={}", hmac_hex(secret, &signed)),
    )
}

/// Now, in unix seconds.
pub fn now_secs() -> i64 {
    tollgate_core::time::now_ms() / 1000
}

async fn audit_actions(api: &Api, query: &str) -> Vec<(String, String)> {
    let page = api
        .ok(
            Method::GET,
            &format!("/api/v1/audit?per_page=500{query}"),
            None,
            200,
        )
        .await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["actor"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn invitation_flow_and_roles(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "acme"})),
            201,
        )
        .await;
    let team_id = team["id"].as_i64().expect("id");

    let inv = admin
        .ok(
            Method::POST,
            &format!("/api/v1/teams/{team_id}/invitations"),
            Some(json!({"email": "Vera@Example.com", "role": "viewer"})),
            201,
        )
        .await;
    let token = inv["token"].as_str().expect("token").to_owned();
    assert_eq!(inv["link"], format!("/invite/{token}"));
    assert_eq!(inv["email"], "vera@example.com");
    let anon = Api::anonymous(&server);
    let preview = anon
        .ok(
            Method::GET,
            &format!("/api/v1/invitations/{token}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        (preview["team"].as_str(), preview["role"].as_str()),
        (Some("acme"), Some("viewer"))
    );

    // A weak password is refused and the invitation stays usable.
    let (status, err) = anon
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            Some(json!({"password": "password1"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "password");
    let mut vera = Api::anonymous(&server);
    let resp = vera
        .raw(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            Some(json!({"password": USER_PASSWORD})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let session = vera.adopt_session(resp).await;
    assert_eq!(session["memberships"][0]["role"], "viewer");
    // Used once only.
    let (status, _) = anon
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            Some(json!({"password": USER_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = anon
        .call(Method::GET, "/api/v1/invitations/00ff", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An expired invitation is refused and creates no account.
    let short = admin
        .ok(
            Method::POST,
            &format!("/api/v1/teams/{team_id}/invitations"),
            Some(json!({"email": "late@example.com", "expires_in": "1s"})),
            201,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = short["token"].as_str().expect("token");
    let (status, err) = anon
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{late}/accept"),
            Some(json!({"password": USER_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{err}");
    let users = admin.ok(Method::GET, "/api/v1/users", None, 200).await;
    assert!(
        !users.to_string().contains("late@example.com"),
        "no account for an expired invitation"
    );

    // The viewer reads but cannot create keys; promoted to member, they can.
    let (status, _) = vera
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team_id, "name": "v"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    vera.ok(
        Method::GET,
        &format!("/api/v1/teams/{team_id}/members"),
        None,
        200,
    )
    .await;
    let me = vera.ok(Method::GET, "/api/v1/auth/me", None, 200).await;
    let vera_id = me["user"]["id"].as_i64().expect("id");
    admin
        .ok(
            Method::PUT,
            &format!("/api/v1/teams/{team_id}/members/{vera_id}"),
            Some(json!({"role": "member"})),
            200,
        )
        .await;
    vera.ok(
        Method::POST,
        "/api/v1/keys",
        Some(json!({"team_id": team_id, "name": "v"})),
        201,
    )
    .await;

    // The last owner cannot leave or be demoted.
    let admin_id = admin.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/teams/{team_id}/members/{admin_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = admin
        .call(
            Method::DELETE,
            &format!("/api/v1/teams/{team_id}/members/{admin_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let actions = audit_actions(&admin, "").await;
    for action in [
        "team.create",
        "invitation.create",
        "invitation.accept",
        "member.role_change",
        "key.create",
        "auth.login",
    ] {
        assert!(
            actions.iter().any(|(a, _)| a == action),
            "{action} audited: {actions:?}"
        );
    }
}
both_backends!(invitation_flow_and_roles);

async fn keys_reveal_once_and_reach_the_gateway(backend: Backend) {
    let mock = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "ci", "expires_in": "30d"})),
            201,
        )
        .await;
    let secret = created["key"].as_str().expect("key").to_owned();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["last_used"], "never used");
    let listed = admin.ok(Method::GET, "/api/v1/keys", None, 200).await;
    assert!(
        !listed.to_string().contains(&secret),
        "lists never carry the secret"
    );
    let got = admin
        .ok(Method::GET, &format!("/api/v1/keys/{id}"), None, 200)
        .await;
    assert!(!got.to_string().contains(&secret));
    let revealed = admin
        .ok(
            Method::POST,
            &format!("/api/v1/keys/{id}/reveal"),
            None,
            200,
        )
        .await;
    assert_eq!(revealed["key"], secret.as_str());

    let http = client();
    let call = || http.get(server.url("/echo/hi")).bearer_auth(&secret).send();
    assert_eq!(call().await.expect("call").status(), StatusCode::OK);
    // Edit, then revoke: the gateway refuses within a second.
    let patched = admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/keys/{id}"),
            Some(json!({"name": "ci-2", "expires_at": null})),
            200,
        )
        .await;
    assert_eq!(
        (patched["name"].as_str(), patched["expires_at"].is_null()),
        (Some("ci-2"), true)
    );
    admin
        .ok(
            Method::POST,
            &format!("/api/v1/keys/{id}/revoke"),
            None,
            200,
        )
        .await;
    let t0 = Instant::now();
    loop {
        if call().await.expect("call").status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "revoked key still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let actions = audit_actions(&admin, "&entity_type=key").await;
    for action in ["key.create", "key.reveal", "key.update", "key.revoke"] {
        assert!(
            actions.iter().any(|(a, _)| a == action),
            "{action}: {actions:?}"
        );
    }
    // The seed-compatible paths see the same keys.
    let seed = admin.ok(Method::GET, "/api/console/keys", None, 200).await;
    assert_eq!(seed["code"], 0);
    let made = admin
        .ok(
            Method::POST,
            "/api/console/keys",
            Some(json!({"name": "seed", "description": "from 004"})),
            201,
        )
        .await;
    let seed_id = made["data"]["id"].as_i64().expect("id");
    assert!(
        made["data"]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ntk_"))
    );
    admin
        .ok(
            Method::DELETE,
            &format!("/api/console/keys/{seed_id}"),
            None,
            200,
        )
        .await;
}
both_backends!(keys_reveal_once_and_reach_the_gateway);

async fn sessions_need_csrf_and_end_at_logout(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let no_csrf = Api {
        csrf: None,
        ..admin.clone()
    };
    let (status, err) = no_csrf
        .call(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "forged"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"]["code"], "csrf_failed");
    let wrong = Api {
        csrf: Some("0".repeat(64)),
        ..admin.clone()
    };
    assert_eq!(
        wrong
            .call(
                Method::POST,
                "/api/v1/teams",
                Some(json!({"name": "forged"}))
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let teams = admin.ok(Method::GET, "/api/v1/teams", None, 200).await;
    assert!(
        !teams.to_string().contains("forged"),
        "a refused write changes nothing"
    );
    // Reads need no CSRF token.
    no_csrf.ok(Method::GET, "/api/v1/auth/me", None, 200).await;
    // A password change ends every session of the account, this one included.
    let other = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let change =
        json!({"current_password": ADMIN_PASSWORD, "new_password": "a brand new passphrase 77"});
    other
        .ok(Method::POST, "/api/v1/auth/password", Some(change), 204)
        .await;
    for api in [&admin, &other] {
        assert_eq!(
            api.call(Method::GET, "/api/v1/auth/me", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let admin = Api::login(&server, ADMIN_EMAIL, "a brand new passphrase 77").await;
    admin
        .ok(Method::POST, "/api/v1/auth/logout", None, 204)
        .await;
    let (status, err) = admin.call(Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
}
both_backends!(sessions_need_csrf_and_end_at_logout);

async fn sign_in_is_throttled(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let anon = Api::anonymous(&server);
    let attempt = |password: &'static str| {
        anon.call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": ADMIN_EMAIL, "password": password})),
        )
    };
    for _ in 0..5 {
        assert_eq!(
            attempt("wrong password here").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = anon
        .raw(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(resp.headers().get("retry-after").is_some());
    let admin_token = cli_json(
        &db,
        &[
            "token",
            "create",
            "--email",
            ADMIN_EMAIL,
            "--name",
            "t",
            "--json",
        ],
    );
    let admin = Api::with_token(&server, admin_token["token"].as_str().expect("token"));
    let failed = audit_actions(&admin, "&action=auth.login_failed").await;
    assert_eq!(
        failed.len(),
        5,
        "every failed sign-in is audited: {failed:?}"
    );
}
both_backends!(sign_in_is_throttled);

async fn disabled_users_are_cut_off_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team_id = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "ops"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let dora = invite_user(&server, &admin, team_id, "dora@example.com", "member").await;
    let pat = dora
        .ok(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "ci", "expires_in": "7d"})),
            201,
        )
        .await;
    let dora_pat = Api::with_token(&server, pat["token"].as_str().expect("token"));
    dora_pat.ok(Method::GET, "/api/v1/keys", None, 200).await;
    let dora_id = dora.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/users/{dora_id}"),
            Some(json!({"disabled": true})),
            200,
        )
        .await;
    for api in [&dora, &dora_pat] {
        let (status, err) = api.call(Method::GET, "/api/v1/keys", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    }
    let (status, _) = Api::anonymous(&server)
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "dora@example.com", "password": USER_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
both_backends!(disabled_users_are_cut_off_at_once);

async fn ingest_is_authenticated_and_dedupes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (key_id, secret) = add_key(&db, "edge", &[]);
    let server = Server::start(&db, &console_env()).await;
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    let http = client();
    let url = server.console_url("/api/usage-log");
    let now = tollgate_core::time::now_ms();
    let body = json!({"id": "evt-1", "token_hash": hash, "route": "/openai/v1/chat", "timestamp": now, "response_status": 200, "response_time_ms": 12.5}).to_string();
    let post = |body: String, sig: Option<(String, String)>, bearer: Option<&str>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some((ts, s)) = sig {
            req = req
                .header("x-tollgate-timestamp", ts)
                .header("x-tollgate-signature", s);
        }
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    assert_eq!(
        post(body.clone(), None, None).await.expect("send").status(),
        StatusCode::UNAUTHORIZED,
        "missing"
    );
    assert_eq!(
        post(
            body.clone(),
            Some((
                now_secs().to_string(),
                format!("sha256={}", "ab".repeat(32))
            )),
            None
        )
        .await
        .expect("send")
        .status(),
        StatusCode::UNAUTHORIZED,
        "wrong"
    );
    assert_eq!(
        post(body.clone(), None, Some("not-the-secret"))
            .await
            .expect("send")
            .status(),
        StatusCode::UNAUTHORIZED,
        "wrong bearer"
    );
    let good = sign_ingest(INGEST_SECRET, now_secs(), body.as_bytes());
    let resp = post(body.clone(), Some(good.clone()), None)
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["status"],
        "logged"
    );
    // The same id again, and by bearer: accepted, counted once.
    assert_eq!(
        post(body.clone(), Some(good), None)
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        post(body.clone(), None, Some(INGEST_SECRET))
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    // An unknown key is kept unattributed; a malformed field is a 422 naming it.
    let unknown =
        json!([{"token_hash": "0".repeat(64), "route": "/x", "timestamp": now}]).to_string();
    assert_eq!(
        post(unknown, None, Some(INGEST_SECRET))
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    let bad = json!({"token_hash": hash, "route": "/x", "timestamp": "soon"}).to_string();
    let resp = post(bad, None, Some(INGEST_SECRET)).await.expect("send");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"]["field"], "timestamp", "{err}");
    let seconds = json!({"token_hash": hash, "route": "/x", "timestamp": now / 1000}).to_string();
    let resp = post(seconds, None, Some(INGEST_SECRET))
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // v1 batches of full events.
    let events = json!([
        {"id": "m-1", "ts": now, "key_hash": hash, "method": "POST", "path": "/v1/chat", "status": 200, "latency_ms": 3.0, "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5, "source": "middleware"},
        {"id": "m-1", "ts": now, "key_hash": hash, "method": "POST", "path": "/v1/chat", "status": 200, "latency_ms": 3.0, "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5, "source": "middleware"}
    ]);
    let resp = http
        .post(server.console_url("/api/v1/usage/events"))
        .bearer_auth(INGEST_SECRET)
        .json(&events)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    server.wait_flushed().await;
    let store = db.open().await;
    let rows = store.recent_usage(100).await.expect("usage");
    assert_eq!(
        rows.len(),
        3,
        "evt-1 once, the unknown key once, m-1 once: {rows:?}"
    );
    let attributed = rows.iter().filter(|e| e.key_id == Some(key_id)).count();
    assert_eq!(attributed, 2);
    let mw = rows
        .iter()
        .find(|e| e.model.as_deref() == Some("gpt-4o-mini"))
        .expect("middleware event");
    assert_eq!(
        (mw.tokens.prompt, mw.tokens.completion, mw.tokens.total),
        (10, 5, 15)
    );
    let key = store.key_by_id(key_id).await.expect("key").expect("exists");
    assert!(key.last_used_at_ms.is_some(), "ingest moves last_used_at");

    // Rotation from the console: the configured secret stops working.
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rotated = admin
        .ok(Method::POST, "/api/v1/settings/ingest-secret", None, 201)
        .await;
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        post(body.clone(), None, Some(INGEST_SECRET))
            .await
            .expect("send")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(body, None, Some(&new_secret))
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
}
both_backends!(ingest_is_authenticated_and_dedupes);

async fn cli_changes_appear_in_the_audit_log(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    add_route(&db, "svc", "/svc", "http://127.0.0.1:9", &[]);
    let (id, _) = add_key(&db, "cli-key", &[]);
    let out = crate::harness::cli(&db, &["key", "revoke", &id.to_string()]);
    assert!(out.status.success());
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let actions = audit_actions(&admin, "").await;
    for action in ["route.create", "key.create", "key.revoke"] {
        assert!(
            actions
                .iter()
                .any(|(a, actor)| a == action && actor.starts_with("cli:")),
            "{action} by cli: {actions:?}"
        );
    }
    // Filters and the seed's CSV.
    let page = admin
        .ok(
            Method::GET,
            "/api/dashboard/audit-logs?entity_type=key&page=1",
            None,
            200,
        )
        .await;
    assert_eq!(page["per_page"], 50);
    assert!(
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["entity_type"] == "key")
    );
    let resp = admin
        .raw(
            Method::GET,
            "/api/dashboard/audit-logs?action=key.revoke&format=csv",
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/csv")
    );
    let csv = resp.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,time,actor,action"), "{csv}");
    assert_eq!(lines.len(), 2, "header and the one revoke: {csv}");
    let (status, _) = admin
        .call(Method::GET, "/api/v1/audit?from=10&to=5", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an inverted range is refused"
    );
}
both_backends!(cli_changes_appear_in_the_audit_log);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_and_headers_are_safe() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let resp = admin.raw(Method::GET, "/api/v1/auth/me", None).await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            resp.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    let cases: &[(Value, u16, &str)] = &[
        (json!({"name": "ok", "colour": "red"}), 422, "colour"),
        (json!({"name": 5}), 422, "name"),
        (json!({}), 422, "name"),
        (
            json!({"name": "x", "expires_in": "forever"}),
            422,
            "expires_in",
        ),
        (
            json!({"name": "x", "route_ids": [999_999]}),
            422,
            "route_ids",
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = admin
            .call(Method::POST, "/api/v1/keys", Some(body.clone()))
            .await;
        assert_eq!(s.as_u16(), *status, "{body}: {v}");
        assert_eq!(v["error"]["field"], *field, "{body}: {v}");
    }
    let resp = admin
        .http
        .post(admin.base.clone() + "/api/v1/keys")
        .header("cookie", admin.cookie.clone().expect("c"))
        .header("x-csrf-token", admin.csrf.clone().expect("t"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    for (email, field) in [("not-an-email", "email")] {
        let (s, v) = admin
            .call(
                Method::POST,
                "/api/v1/teams/1/invitations",
                Some(json!({"email": email})),
            )
            .await;
        assert_eq!(
            (s.as_u16(), v["error"]["field"].as_str()),
            (422, Some(field)),
            "{v}"
        );
    }
    let keys = admin.ok(Method::GET, "/api/v1/keys", None, 200).await;
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(0),
        "refused requests created nothing"
    );
    let (s, v) = admin.call(Method::GET, "/api/v1/nope", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Docs work without internet: the page and its script come from the console.
    let docs = client()
        .get(server.console_url("/api/docs"))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("html").contains("/api/docs.js"));
    let spec: Value = client()
        .get(server.console_url("/api/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    assert!(spec["paths"]["/api/v1/keys"]["post"].is_object());
    let big = "x".repeat(9 * 1024 * 1024);
    let resp = admin
        .http
        .post(admin.base.clone() + "/api/v1/keys")
        .header("cookie", admin.cookie.clone().expect("c"))
        .header("x-csrf-token", admin.csrf.clone().expect("t"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
