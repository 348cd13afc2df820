//! Sealed values are bound to their row: a revealable key copy moved to
//! another key's row does not open, a copy sealed the old (v1) way still does, and the next start
//! seals such a copy again in the row-bound format.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::Digest;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, MASTER_KEY, Server, TestDb};

/// What tollgate wrote before v2: SHA-256-derived key, `nonce ‖ ciphertext`, no associated data.
fn seal_v1(plain: &str) -> Vec<u8> {
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"tollgate master key v1\0");
    hasher.update(MASTER_KEY.as_bytes());
    let cipher = XChaCha20Poly1305::new(&hasher.finalize());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = nonce.to_vec();
    out.extend(cipher.encrypt(&nonce, plain.as_bytes()).expect("seal"));
    out
}

async fn sealed_key(db: &TestDb, id: i64) -> Vec<u8> {
    let sql = format!("SELECT sealed_key FROM api_keys WHERE id = {id}");
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::query_scalar(&sql)
                .fetch_one(&pool)
                .await
                .expect("select")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
            sqlx::query_scalar(&sql)
                .fetch_one(&pool)
                .await
                .expect("select")
        }
    }
}

async fn set_sealed_key(db: &TestDb, id: i64, sealed: &[u8]) {
    let sql = "UPDATE api_keys SET sealed_key = $1 WHERE id = $2";
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::query(sql)
                .bind(sealed)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
            sqlx::query(sql)
                .bind(sealed)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
        }
    }
}

async fn sealed_copies_are_bound_to_their_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "seal"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let mut keys = Vec::new();
    for name in ["one", "two"] {
        let k = admin
            .ok(
                Method::POST,
                "/api/v1/keys",
                Some(json!({"team_id": team, "name": name})),
                201,
            )
            .await;
        keys.push((
            k["id"].as_i64().expect("id"),
            k["key"].as_str().expect("key").to_owned(),
        ));
    }
    let (one, one_secret) = keys[0].clone();
    let (two, _) = keys[1].clone();
    let reveal = |id: i64| format!("/api/v1/keys/{id}/reveal");

    // v2 with the version byte; key one's copy moved into key two's row does not open.
    let copy = sealed_key(&db, one).await;
    assert_eq!(copy[0], 2, "sealed values carry their version");
    set_sealed_key(&db, two, &copy).await;
    let (status, body) = admin.call(Method::POST, &reveal(two), None).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(&one_secret), "{body}");
    assert_eq!(body["error"]["code"], "not_revealable", "{body}");

    // A copy sealed the old way still opens.
    set_sealed_key(&db, one, &seal_v1(&one_secret)).await;
    let revealed = admin.ok(Method::POST, &reveal(one), None, 200).await;
    assert_eq!(revealed["key"], one_secret.as_str());

    // The next start seals it again, bound to its row: it still reveals, and a copy of it in
    // another row no longer opens (a v1 value would have).
    drop(admin);
    let mut server = server;
    assert!(server.stop().await, "the server stops cleanly");
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let resealed = sealed_key(&db, one).await;
    assert_eq!(resealed[0], 2, "the old value was sealed again in v2");
    let revealed = admin.ok(Method::POST, &reveal(one), None, 200).await;
    assert_eq!(revealed["key"], one_secret.as_str());
    set_sealed_key(&db, two, &resealed).await;
    let (status, body) = admin.call(Method::POST, &reveal(two), None).await;
    assert_eq!(body["error"]["code"], "not_revealable", "{status} {body}");
}
both_backends!(sealed_copies_are_bound_to_their_key);
