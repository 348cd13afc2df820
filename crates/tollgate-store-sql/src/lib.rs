//! The store queries that read the same on SQLite and PostgreSQL, written once.
//!
//! Each backend crate expands [`shared_queries!`] once at its root. The expansion holds one module
//! per query trait (routes, keys, teams, ...) implementing that trait for the backend's store with
//! the backend's sqlx database types. The SQL uses `$N` placeholders, which both databases accept,
//! and portable spellings (`TRUE`, `CAST(x AS BIGINT)`); where the dialects truly differ (row
//! locks, collation) the backend passes a fragment. What differs more than that (the usage write
//! path, analytics plans, partitions, checkpoints, migrations) stays in the backend crates.
//!
//! Errors are mapped by the backend (`store_error`); [`UniqueKey`] tells which unique constraint a
//! conflict broke on either database.

mod audit;
mod counters;
mod edge;
mod governance;
mod invitations;
mod keys;
mod members;
mod models;
mod prices;
mod routes;
mod rows;
mod sessions;
mod settings;
mod teams;
mod tokens;
mod users;

use std::sync::LazyLock;

use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_store::{AggregateOrder, StoreError};

/// The latency histogram's columns of the roll-up tables, `h00` to `h23`.
pub static HIST_COLUMNS: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..HISTOGRAM_LEN).map(|i| format!("h{i:02}")).collect());

/// The `ORDER BY` list of an aggregate query. Output names win over column names in `ORDER BY`:
/// these are the sums.
pub fn aggregate_order(order: AggregateOrder) -> &'static str {
    match order {
        AggregateOrder::Bucket => "bucket, label",
        AggregateOrder::CallsDesc => "calls DESC, bucket, label",
        AggregateOrder::TokensDesc => "total_tokens DESC, bucket, label",
    }
}

/// Implements the shared query traits for a backend's store. Expand it once at the root of the
/// backend crate, which must provide there:
///
/// - `fn store_error(sqlx::Error) -> StoreError`, the backend's error mapping;
/// - the usage row mappers (module `rows`) read `usage_events.event_id` as text and `status` as a
///   32-bit integer, as both schemas store them;
/// - on the store, `fn writer(&self) -> &Pool<DB>` and `fn reader(&self) -> &Pool<DB>` (the same
///   pool where the backend has one), `async fn begin_write(&self) -> StoreResult<Transaction>`
///   (a transaction that may write, serialised as the backend needs) and `async fn
///   begin_snapshot(&self) -> StoreResult<Transaction>` (a read-only transaction whose statements
///   all see one snapshot).
///
/// The dialect fragments are appended to statements: `by_bytes` after an `ORDER BY` on text
/// (byte order, as SQLite's default collation sorts), the three `for_*` after a `SELECT` of one
/// row that the transaction must keep (row locks; empty where the writer is single anyway).
#[macro_export]
macro_rules! shared_queries {
    (
        store: $store:ident,
        database: $db:ty,
        by_bytes: $by_bytes:literal,
        for_key_share: $for_key_share:literal,
        for_no_key_update: $for_no_key_update:literal,
        for_update: $for_update:literal $(,)?
    ) => {
        mod audit {
            $crate::__audit!($store, $db);
        }
        mod counters {
            $crate::__counters!($store, $db, $by_bytes, $for_update);
        }
        mod edge {
            $crate::__edge!($store, $db);
        }
        mod governance {
            $crate::__governance!($store, $db);
        }
        mod invitations {
            $crate::__invitations!($store, $db, $for_key_share);
        }
        mod keys {
            $crate::__keys!($store, $db, $for_key_share, $for_update);
        }
        mod members {
            $crate::__members!($store, $db, $by_bytes, $for_key_share, $for_no_key_update);
        }
        mod models {
            $crate::__models!($store, $db, $by_bytes);
        }
        mod prices {
            $crate::__prices!($store, $db, $by_bytes);
        }
        mod routes {
            $crate::__routes!($store, $db, $by_bytes);
        }
        mod rows {
            $crate::__rows!($db);
        }
        mod sessions {
            $crate::__sessions!($store, $db);
        }
        mod settings {
            $crate::__settings!($store, $db);
        }
        mod teams {
            $crate::__teams!($store, $db, $by_bytes, $for_update);
        }
        mod tokens {
            $crate::__tokens!($store, $db);
        }
        mod users {
            $crate::__users!($store, $db, $by_bytes);
        }
    };
}

/// Maps an error already mapped by the backend, letting `reword` replace it (the database's
/// messages name tables and constraints; callers know which name or id was taken or missing).
pub fn reworded(
    mapped: StoreError,
    reword: impl FnOnce(&StoreError) -> Option<StoreError>,
) -> StoreError {
    reword(&mapped).unwrap_or(mapped)
}

/// A unique constraint of the schema that callers tell apart. PostgreSQL reports a violated
/// constraint by its name (the migrations name each `<table>_<columns>_key`); SQLite names the
/// table and columns in its message (`UNIQUE constraint failed: routes.prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKey {
    TeamName,
    RouteName,
    RoutePrefix,
    KeyHash,
    UserEmail,
    AccessTokenHash,
    InvitationTokenHash,
    /// A counter's name within its team.
    CounterName,
}

impl UniqueKey {
    const ALL: [Self; 8] = [
        Self::TeamName,
        Self::RouteName,
        Self::RoutePrefix,
        Self::KeyHash,
        Self::UserEmail,
        Self::AccessTokenHash,
        Self::InvitationTokenHash,
        Self::CounterName,
    ];

    /// The constraint's name on PostgreSQL, and its columns as SQLite lists them.
    const fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::TeamName => ("teams_name_key", "teams.name"),
            Self::RouteName => ("routes_name_key", "routes.name"),
            Self::RoutePrefix => ("routes_prefix_key", "routes.prefix"),
            Self::KeyHash => ("api_keys_key_hash_key", "api_keys.key_hash"),
            Self::UserEmail => ("users_email_key", "users.email"),
            Self::AccessTokenHash => ("access_tokens_token_hash_key", "access_tokens.token_hash"),
            Self::InvitationTokenHash => ("invitations_token_hash_key", "invitations.token_hash"),
            Self::CounterName => (
                "token_counters_team_name_key",
                "token_counters.team_id, token_counters.name",
            ),
        }
    }

    /// The constraint that `err` violated, when it is a unique violation of one of these.
    pub fn violated_by(err: &sqlx::Error) -> Option<Self> {
        match err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::reported(db.constraint(), db.message())
            }
            _ => None,
        }
    }

    /// The constraint named by a database's report: PostgreSQL's constraint name, else the
    /// columns in SQLite's message.
    fn reported(constraint: Option<&str>, message: &str) -> Option<Self> {
        let sqlite_columns = message.strip_prefix("UNIQUE constraint failed: ");
        Self::ALL.into_iter().find(|key| {
            let (name, columns) = key.names();
            constraint == Some(name) || sqlite_columns == Some(columns)
        })
    }
}

/// Statements, in SQL both databases accept, that break each of several unique constraints of a
/// freshly migrated store: each expects success (`None`) or a violation of the key given. The
/// backends' tests run them to check [`UniqueKey::violated_by`] against what each database
/// reports.
#[doc(hidden)]
pub const UNIQUE_VIOLATIONS: [(&str, Option<UniqueKey>); 10] = [
    (
        "INSERT INTO teams (name, created_at) VALUES ('unique-team', 0)",
        None,
    ),
    (
        "INSERT INTO teams (name, created_at) VALUES ('unique-team', 0)",
        Some(UniqueKey::TeamName),
    ),
    (
        "INSERT INTO routes (name, prefix, upstream_url, kind, strip_prefix, connect_timeout_ms, \
         timeout_ms, created_at, updated_at) \
         VALUES ('unique-route', '/unique', 'http://127.0.0.1:9', 'openai', FALSE, 1, 1, 0, 0)",
        None,
    ),
    (
        "INSERT INTO routes (name, prefix, upstream_url, kind, strip_prefix, connect_timeout_ms, \
         timeout_ms, created_at, updated_at) \
         VALUES ('unique-route', '/other', 'http://127.0.0.1:9', 'openai', FALSE, 1, 1, 0, 0)",
        Some(UniqueKey::RouteName),
    ),
    (
        "INSERT INTO routes (name, prefix, upstream_url, kind, strip_prefix, connect_timeout_ms, \
         timeout_ms, created_at, updated_at) \
         VALUES ('other-route', '/unique', 'http://127.0.0.1:9', 'openai', FALSE, 1, 1, 0, 0)",
        Some(UniqueKey::RoutePrefix),
    ),
    (
        "INSERT INTO users (email, display_name, created_at) VALUES ('u@example.test', 'U', 0)",
        None,
    ),
    (
        "INSERT INTO users (email, display_name, created_at) VALUES ('u@example.test', 'V', 0)",
        Some(UniqueKey::UserEmail),
    ),
    (
        "INSERT INTO token_counters (name, team_id, quota, created_at) \
         SELECT 'unique-counter', id, 1, 0 FROM teams WHERE name = 'unique-team'",
        None,
    ),
    (
        "INSERT INTO token_counters (name, team_id, quota, created_at) \
         SELECT 'unique-counter', id, 1, 0 FROM teams WHERE name = 'unique-team'",
        Some(UniqueKey::CounterName),
    ),
    (
        // The same name in another team is no conflict.
        "INSERT INTO token_counters (name, team_id, quota, created_at) \
         SELECT 'unique-counter', id, 1, 0 FROM teams WHERE name = 'default'",
        None,
    ),
];

/// The query of `HourlyEvents::hours_with_calls` (tollgate-store): the distinct hours of
/// `usage_hourly` from the placeholder `from` on, before `end` where given, under the dimension
/// conditions `dims` (each starting with ` AND `), newest first, at most the placeholder `limit`.
pub fn hours_with_calls_sql(from: &str, end: Option<&str>, dims: &str, limit: &str) -> String {
    let end = end
        .map(|end| format!(" AND hour < {end}"))
        .unwrap_or_default();
    format!(
        "SELECT DISTINCT hour FROM usage_hourly WHERE hour >= {from}{end}{dims} \
         ORDER BY hour DESC LIMIT {limit}"
    )
}

/// What retention runs on the roll-ups of `grain` (the summary rows when `summaries`): the query
/// of the oldest hour or day they hold, and the delete of the rows before the one placeholder
/// `mark`. A summary table's primary key starts with the row's kind, so both name every kind:
/// each reads its kind's range of the key instead of the whole table.
pub fn retention_sql(
    grain: tollgate_store::rollup::Grain,
    summaries: bool,
    mark: &str,
) -> (String, String) {
    let time = grain.time();
    if !summaries {
        let table = grain.table();
        return (
            format!("SELECT MIN({time}) FROM {table}"),
            format!("DELETE FROM {table} WHERE {time} < {mark}"),
        );
    }
    let table = grain.sketch_table();
    let oldest: Vec<String> = tollgate_store::rollup::SketchRows::ALL
        .iter()
        .map(|rows| {
            format!(
                "SELECT MIN({time}) AS t FROM {table} WHERE {}",
                rows.condition()
            )
        })
        .collect();
    let kinds: Vec<String> = tollgate_store::rollup::SketchRows::ALL
        .iter()
        .map(|rows| rows.kind().to_string())
        .collect();
    (
        format!(
            "SELECT MIN(t) FROM ({}) AS kinds",
            oldest.join(" UNION ALL ")
        ),
        format!(
            "DELETE FROM {table} WHERE kind IN ({}) AND {time} < {mark}",
            kinds.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::UniqueKey;

    #[test]
    fn postgres_constraint_names_map_to_keys() {
        let message = "duplicate key value violates unique constraint \"routes_prefix_key\"";
        assert_eq!(
            UniqueKey::reported(Some("routes_prefix_key"), message),
            Some(UniqueKey::RoutePrefix)
        );
        assert_eq!(
            UniqueKey::reported(Some("token_counters_team_name_key"), "duplicate key"),
            Some(UniqueKey::CounterName)
        );
        assert_eq!(
            UniqueKey::reported(Some("sessions_pkey"), "duplicate key"),
            None
        );
    }

    #[test]
    fn sqlite_messages_map_to_keys() {
        assert_eq!(
            UniqueKey::reported(None, "UNIQUE constraint failed: routes.name"),
            Some(UniqueKey::RouteName)
        );
        assert_eq!(
            UniqueKey::reported(
                None,
                "UNIQUE constraint failed: token_counters.team_id, token_counters.name"
            ),
            Some(UniqueKey::CounterName)
        );
        // A message naming another column (or a prefix of one) is no match.
        assert_eq!(
            UniqueKey::reported(None, "UNIQUE constraint failed: routes.prefix_old"),
            None
        );
        assert_eq!(UniqueKey::reported(None, "routes.prefix"), None);
    }

    #[test]
    fn every_key_has_distinct_names() {
        for (i, a) in UniqueKey::ALL.iter().enumerate() {
            for b in &UniqueKey::ALL[i + 1..] {
                assert_ne!(a.names().0, b.names().0);
                assert_ne!(a.names().1, b.names().1);
            }
        }
    }
}
