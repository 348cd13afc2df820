-- Counters belong to a team (issue 10, finding 9): only its members see a counter, names are
-- unique within a team, and a team's counters go with it. Counters that had no team (instance-wide,
-- open to every signed-in user) move to the `default` team every instance keeps.
-- Kept parallel to tollgate-store-postgres/migrations/0007_counter_teams.sql.
-- SQLite cannot change a column's constraints in place: both tables are rebuilt. The children are
-- copied and dropped before their parent, so no ON DELETE CASCADE fires, with foreign keys on.

INSERT OR IGNORE INTO teams (name, created_at)
SELECT 'default', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
WHERE EXISTS (SELECT 1 FROM token_counters WHERE team_id IS NULL);

CREATE TABLE token_counters_scoped (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    quota      INTEGER NOT NULL CHECK (quota >= 0),
    used       INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    readings   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER,
    UNIQUE (team_id, name)
) STRICT;

-- Names were unique across the instance, so they stay unique within the default team.
INSERT INTO token_counters_scoped (id, name, team_id, quota, used, readings, created_at, updated_at)
SELECT c.id, c.name,
       COALESCE(c.team_id, (SELECT id FROM teams WHERE name = 'default')),
       c.quota, c.used, c.readings, c.created_at, c.updated_at
FROM token_counters c;

CREATE TABLE token_counter_readings_scoped (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    counter_id      INTEGER NOT NULL REFERENCES token_counters_scoped (id) ON DELETE CASCADE,
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

INSERT INTO token_counter_readings_scoped
    (id, counter_id, ts, reading, increment, reset, event, conversation_id, sync_type, actor)
SELECT id, counter_id, ts, reading, increment, reset, event, conversation_id, sync_type, actor
FROM token_counter_readings;

DROP TABLE token_counter_readings;
DROP TABLE token_counters;
-- Renaming a parent also renames the references to it in its children.
ALTER TABLE token_counters_scoped RENAME TO token_counters;
ALTER TABLE token_counter_readings_scoped RENAME TO token_counter_readings;

CREATE INDEX token_counters_team_id ON token_counters (team_id);
CREATE INDEX token_counter_readings_counter_id ON token_counter_readings (counter_id, id);
CREATE INDEX token_counter_readings_ts ON token_counter_readings (ts);
