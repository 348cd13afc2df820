-- Limits, per-key model allow-lists and alert delivery: what the gateway governs with.
-- Kept parallel to tollgate-store-postgres/migrations/0008_governance.sql: same tables, same columns.
-- limits and key_models bump store_revision, so every instance reloads them when they change.

-- A limit applies to the instance (no owner column set) or to exactly one team, key or route, and
-- goes with its owner. `spec` is the limit itself as JSON (kind, enforcement, thresholds), in the
-- shape of tollgate-limits' model; the store does not interpret it.
CREATE TABLE limits (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id    INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    key_id     INTEGER REFERENCES api_keys (id) ON DELETE CASCADE,
    route_id   INTEGER REFERENCES routes (id) ON DELETE CASCADE,
    spec       TEXT    NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((team_id IS NOT NULL) + (key_id IS NOT NULL) + (route_id IS NOT NULL) <= 1)
) STRICT;
CREATE INDEX limits_team_id ON limits (team_id);
CREATE INDEX limits_key_id ON limits (key_id);
CREATE INDEX limits_route_id ON limits (route_id);

-- The models a key may call on LLM routes, as comma-separated glob patterns; no row: any model.
CREATE TABLE key_models (
    key_id   INTEGER PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    patterns TEXT    NOT NULL
) STRICT;

CREATE TRIGGER limits_insert_revision AFTER INSERT ON limits
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER limits_update_revision AFTER UPDATE ON limits
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER limits_delete_revision AFTER DELETE ON limits
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER key_models_insert_revision AFTER INSERT ON key_models
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER key_models_update_revision AFTER UPDATE ON key_models
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER key_models_delete_revision AFTER DELETE ON key_models
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;

-- Where alerts go. The secret signs generic webhook bodies; it is sealed with the master key.
CREATE TABLE alert_channels (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    format        TEXT    NOT NULL CHECK (format IN ('generic', 'slack')),
    url           TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    created_by    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
) STRICT;

-- Every delivery attempt, kept so that operators see what was sent and what answered.
CREATE TABLE alert_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  INTEGER NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    dedup_key   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    summary     TEXT    NOT NULL DEFAULT '',
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    at          INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('delivered', 'failed', 'gave_up')),
    http_status INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT
) STRICT;
CREATE INDEX alert_deliveries_at ON alert_deliveries (at, id);
CREATE INDEX alert_deliveries_channel ON alert_deliveries (channel_id, at);

-- An alert is sent once: the first instance to claim its key sends it; a claim expires so that a
-- recurring condition (a budget crossing next month) can be sent again.
CREATE TABLE alert_claims (
    dedup_key  TEXT    PRIMARY KEY,
    claimed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- Leader leases: one instance at a time evaluates alert rules.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
