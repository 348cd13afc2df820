-- Users, sessions, personal access tokens, team membership, invitations, the audit log and
-- instance settings: what the console stores. Times are epoch milliseconds.
-- Kept parallel to tollgate-store-postgres/migrations/0002_accounts.sql: same tables, same columns.
-- None of these tables bumps store_revision: the gateway does not read them.

-- The caller lower-cases e-mails; the store keeps them as given.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT,
    display_name  TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    disabled_at   INTEGER,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;

CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    ip         TEXT,
    user_agent TEXT
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE access_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;

CREATE INDEX access_tokens_user_id ON access_tokens (user_id);

CREATE TABLE team_members (
    team_id   INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX team_members_user_id ON team_members (user_id);

CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT    NOT NULL UNIQUE,
    email       TEXT    NOT NULL,
    team_id     INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER
) STRICT;

CREATE INDEX invitations_team_id ON invitations (team_id);

-- No foreign keys: the log outlives the users and teams it names.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ts            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    actor_user_id INTEGER,
    action        TEXT    NOT NULL,
    entity_type   TEXT    NOT NULL,
    entity_id     TEXT,
    summary       TEXT    NOT NULL,
    ip            TEXT,
    team_id       INTEGER
) STRICT;

-- Pages are read newest first, by (ts, id); the others narrow the common filters.
CREATE INDEX audit_log_ts ON audit_log (ts, id);
CREATE INDEX audit_log_action_ts ON audit_log (action, ts);
CREATE INDEX audit_log_entity_type_ts ON audit_log (entity_type, ts);
CREATE INDEX audit_log_team_id_ts ON audit_log (team_id, ts);
CREATE INDEX audit_log_actor_user_id_ts ON audit_log (actor_user_id, ts);

CREATE TABLE settings (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
