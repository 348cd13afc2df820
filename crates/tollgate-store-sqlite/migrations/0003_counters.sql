-- Token counters (seed 003): a tool's cumulative token figure, recorded as readings with the
-- increment since the previous one, against a quota. Times are epoch milliseconds.
-- Kept parallel to tollgate-store-postgres/migrations/0003_counters.sql: same tables, same columns.
-- Neither table bumps store_revision: the gateway does not read them.

-- used is the last reading, or the sum of increments since the last reset; readings counts rows.
CREATE TABLE token_counters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    team_id    INTEGER REFERENCES teams (id) ON DELETE SET NULL,
    quota      INTEGER NOT NULL CHECK (quota >= 0),
    used       INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    readings   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER
) STRICT;

CREATE INDEX token_counters_team_id ON token_counters (team_id);

-- increment is reading - previous used, or reading itself after a reset (reset = 1).
CREATE TABLE token_counter_readings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    counter_id      INTEGER NOT NULL REFERENCES token_counters (id) ON DELETE CASCADE,
    ts              INTEGER NOT NULL,
    reading         INTEGER NOT NULL CHECK (reading >= 0),
    increment       INTEGER NOT NULL CHECK (increment >= 0),
    reset           INTEGER NOT NULL DEFAULT 0,
    event           TEXT    NOT NULL DEFAULT '',
    conversation_id TEXT,
    sync_type       TEXT    NOT NULL
        CHECK (sync_type IN ('manual', 'clipboard', 'estimate', 'import', 'api')),
    actor           TEXT
) STRICT;

CREATE INDEX token_counter_readings_counter_id ON token_counter_readings (counter_id, id);
CREATE INDEX token_counter_readings_ts ON token_counter_readings (ts);
