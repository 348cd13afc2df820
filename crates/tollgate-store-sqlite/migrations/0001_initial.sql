-- Teams, keys, routes, usage events and hourly roll-ups. Times are epoch milliseconds.
-- Kept parallel to tollgate-store-postgres/migrations/0001_initial.sql: same tables, same columns.

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE routes (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id            INTEGER REFERENCES teams (id),
    name               TEXT    NOT NULL UNIQUE,
    prefix             TEXT    NOT NULL UNIQUE,
    upstream_url       TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    strip_prefix       INTEGER NOT NULL,
    connect_timeout_ms INTEGER NOT NULL,
    timeout_ms         INTEGER NOT NULL,
    enabled            INTEGER NOT NULL DEFAULT 1,
    sealed_credential  BLOB,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX routes_team_id ON routes (team_id);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id      INTEGER NOT NULL REFERENCES teams (id),
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    key_hash     TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    sealed_key   BLOB,
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    all_routes   INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE INDEX api_keys_team_id ON api_keys (team_id);

CREATE TABLE api_key_routes (
    key_id   INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    route_id INTEGER NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, route_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX api_key_routes_route_id ON api_key_routes (route_id);

-- key_id has no foreign key: usage outlives deleted keys.
CREATE TABLE usage_events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id            TEXT    NOT NULL UNIQUE,
    ts                  INTEGER NOT NULL,
    key_id              INTEGER,
    key_hash            TEXT,
    team_id             INTEGER,
    route_id            INTEGER,
    route               TEXT,
    method              TEXT    NOT NULL,
    path                TEXT    NOT NULL,
    status              INTEGER NOT NULL,
    latency_us          INTEGER NOT NULL,
    upstream_latency_us INTEGER,
    client_ip           TEXT,
    user_agent          TEXT,
    model               TEXT,
    prompt_tokens       INTEGER NOT NULL DEFAULT 0,
    completion_tokens   INTEGER NOT NULL DEFAULT 0,
    total_tokens        INTEGER NOT NULL DEFAULT 0,
    cached_tokens       INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
    estimated           INTEGER NOT NULL DEFAULT 0,
    cost_usd            REAL    NOT NULL DEFAULT 0,
    error               TEXT,
    source              TEXT    NOT NULL,
    request_id          TEXT
) STRICT;

CREATE INDEX usage_events_ts ON usage_events (ts);
CREATE INDEX usage_events_key_id_ts ON usage_events (key_id, ts);
CREATE INDEX usage_events_route_id_ts ON usage_events (route_id, ts);

-- Missing dimensions are 0 / '' so that they take part in the primary key.
CREATE TABLE usage_hourly (
    hour              INTEGER NOT NULL,
    team_id           INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    route_id          INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    status_class      INTEGER NOT NULL,
    calls             INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    latency_sum_us    INTEGER NOT NULL DEFAULT 0,
    h00 INTEGER NOT NULL DEFAULT 0, h01 INTEGER NOT NULL DEFAULT 0, h02 INTEGER NOT NULL DEFAULT 0,
    h03 INTEGER NOT NULL DEFAULT 0, h04 INTEGER NOT NULL DEFAULT 0, h05 INTEGER NOT NULL DEFAULT 0,
    h06 INTEGER NOT NULL DEFAULT 0, h07 INTEGER NOT NULL DEFAULT 0, h08 INTEGER NOT NULL DEFAULT 0,
    h09 INTEGER NOT NULL DEFAULT 0, h10 INTEGER NOT NULL DEFAULT 0, h11 INTEGER NOT NULL DEFAULT 0,
    h12 INTEGER NOT NULL DEFAULT 0, h13 INTEGER NOT NULL DEFAULT 0, h14 INTEGER NOT NULL DEFAULT 0,
    h15 INTEGER NOT NULL DEFAULT 0, h16 INTEGER NOT NULL DEFAULT 0, h17 INTEGER NOT NULL DEFAULT 0,
    h18 INTEGER NOT NULL DEFAULT 0, h19 INTEGER NOT NULL DEFAULT 0, h20 INTEGER NOT NULL DEFAULT 0,
    h21 INTEGER NOT NULL DEFAULT 0, h22 INTEGER NOT NULL DEFAULT 0, h23 INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    estimated_calls   INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, team_id, key_id, route_id, model, status_class)
) STRICT, WITHOUT ROWID;

-- One row, bumped by triggers on every change of teams, keys, key routes and routes, so that every
-- instance notices changes made elsewhere by polling it. Usage (last_used_at) does not bump it.
CREATE TABLE store_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
) STRICT;

INSERT INTO store_revision (id, revision) VALUES (1, 1);

CREATE TRIGGER teams_insert_revision AFTER INSERT ON teams
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER teams_update_revision AFTER UPDATE ON teams
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER teams_delete_revision AFTER DELETE ON teams
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;

CREATE TRIGGER routes_insert_revision AFTER INSERT ON routes
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER routes_update_revision AFTER UPDATE ON routes
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER routes_delete_revision AFTER DELETE ON routes
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;

CREATE TRIGGER api_keys_insert_revision AFTER INSERT ON api_keys
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
-- Every column but last_used_at: the usage writer moves it on every batch.
CREATE TRIGGER api_keys_update_revision AFTER UPDATE OF
    id, team_id, name, description, key_hash, prefix, sealed_key, created_by, created_at,
    expires_at, revoked_at, all_routes
ON api_keys
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_delete_revision AFTER DELETE ON api_keys
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;

CREATE TRIGGER api_key_routes_insert_revision AFTER INSERT ON api_key_routes
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER api_key_routes_update_revision AFTER UPDATE ON api_key_routes
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER api_key_routes_delete_revision AFTER DELETE ON api_key_routes
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
