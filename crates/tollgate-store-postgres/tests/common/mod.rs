//! Databases of their own for the PostgreSQL tests: each test makes one and drops it.
//!
//! The admin URL is `TOLLGATE_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`,
//! else the same as user `root`. An unreachable server fails the test: it never skips.

use std::future::Future;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use uuid::Uuid;

/// Admin URLs tried in turn when `TOLLGATE_TEST_PG_URL` is not set.
pub const ADMIN_URLS: [&str; 2] = [
    "postgres://postgres@127.0.0.1:5432/postgres",
    "postgres://root@127.0.0.1:5432/postgres",
];

/// A database of its own for one test.
struct TestDatabase {
    admin: PgPool,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let candidates = match std::env::var("TOLLGATE_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => vec![url],
            _ => ADMIN_URLS.iter().map(|u| (*u).to_owned()).collect(),
        };
        let mut failures = Vec::new();
        for admin_url in candidates {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(&admin_url)
                .await;
            match admin {
                Ok(admin) => {
                    let name = format!("tollgate_test_{}", Uuid::now_v7().simple());
                    admin
                        .execute(format!("CREATE DATABASE {name}").as_str())
                        .await
                        .unwrap();
                    let url = with_database(&admin_url, &name);
                    return Self { admin, name, url };
                }
                Err(e) => failures.push(format!("{admin_url}: {e}")),
            }
        }
        panic!(
            "PostgreSQL is not reachable ({}). Start it (`service postgresql start` or \
             `pg_ctlcluster 15 main start`), or set TOLLGATE_TEST_PG_URL to an admin URL such as \
             postgres://postgres@127.0.0.1:5432/postgres",
            failures.join("; ")
        );
    }

    async fn drop(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.admin.execute(sql.as_str()).await.unwrap();
        self.admin.close().await;
    }
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Runs `test` against a fresh database and drops the database afterwards, also when it fails.
pub async fn with_test_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDatabase::create().await;
    let outcome = tokio::spawn(test(db.url.clone())).await;
    db.drop().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
