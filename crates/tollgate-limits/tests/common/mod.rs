//! What the Redis tests share: the Redis they talk to, a key limit, a call, and a key namespace of
//! their own that is deleted when the test ends.

use tollgate_limits::{Enforcement, Limit, LimitKind, Request, Scope};

pub const REDIS: &str = "redis://127.0.0.1:6379";

/// A hard limit of `kind` on key 1, alerting at 80 and 100 %.
pub fn limit(id: i64, kind: LimitKind) -> Limit {
    Limit {
        id,
        scope: Scope::Key(1),
        kind,
        enforcement: Enforcement::Hard,
        alert_at: vec![80, 100],
        include_reported: false,
    }
}

/// A call by key 1 of team 2 on route 3 that estimates `tokens`.
pub fn call(tokens: u64) -> Request {
    Request {
        team_id: Some(2),
        key_id: Some(1),
        route_id: Some(3),
        estimate_tokens: tokens,
        estimate_cost_micro: 0,
        now_ms: tollgate_core::time::now_ms(),
    }
}

/// A namespace of its own, whose keys are deleted when the test ends.
pub struct Namespace(pub String);

impl Namespace {
    pub fn new() -> Self {
        Self(format!("test-{}", uuid::Uuid::now_v7().simple()))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Never panics: a test that failed because Redis is gone must report its own failure.
        let Ok(client) = redis::Client::open(REDIS) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{{{}}}:*", self.0);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}
