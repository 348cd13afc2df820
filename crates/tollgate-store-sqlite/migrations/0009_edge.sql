-- Edge key sync: the tokens an edge reads keys with, and the change feed it follows.
-- Kept parallel to tollgate-store-postgres/migrations/0009_edge.sql: same tables, same columns.

-- Instance-wide tokens (`tge_…`) that may read only the edge snapshot and change feed.
CREATE TABLE edge_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;

-- One row per change of what an edge decides with: a key (its own row, its route list, its model
-- list) or a route. Each change takes the next store revision, so the feed and the gateway's
-- reload signal are one counter. A key's own rows keep its hash, so a deleted key can be named.
CREATE TABLE edge_changes (
    revision  INTEGER PRIMARY KEY,
    entity    TEXT    NOT NULL CHECK (entity IN ('key', 'route')),
    entity_id INTEGER NOT NULL,
    key_hash  TEXT
) STRICT;

CREATE TRIGGER api_keys_insert_edge AFTER INSERT ON api_keys
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id, key_hash)
    SELECT revision, 'key', NEW.id, NEW.key_hash FROM store_revision WHERE id = 1;
END;
-- Not last_used_at: the usage writer moves it on every batch.
CREATE TRIGGER api_keys_update_edge AFTER UPDATE OF team_id, key_hash, expires_at, revoked_at, all_routes
ON api_keys
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id, key_hash)
    SELECT revision, 'key', NEW.id, NEW.key_hash FROM store_revision WHERE id = 1;
END;
CREATE TRIGGER api_keys_delete_edge AFTER DELETE ON api_keys
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id, key_hash)
    SELECT revision, 'key', OLD.id, OLD.key_hash FROM store_revision WHERE id = 1;
END;

CREATE TRIGGER api_key_routes_insert_edge AFTER INSERT ON api_key_routes
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'key', NEW.key_id FROM store_revision WHERE id = 1;
END;
CREATE TRIGGER api_key_routes_delete_edge AFTER DELETE ON api_key_routes
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'key', OLD.key_id FROM store_revision WHERE id = 1;
END;

CREATE TRIGGER key_models_insert_edge AFTER INSERT ON key_models
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'key', NEW.key_id FROM store_revision WHERE id = 1;
END;
CREATE TRIGGER key_models_update_edge AFTER UPDATE ON key_models
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'key', NEW.key_id FROM store_revision WHERE id = 1;
END;
CREATE TRIGGER key_models_delete_edge AFTER DELETE ON key_models
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'key', OLD.key_id FROM store_revision WHERE id = 1;
END;

CREATE TRIGGER routes_insert_edge AFTER INSERT ON routes
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'route', NEW.id FROM store_revision WHERE id = 1;
END;
CREATE TRIGGER routes_update_edge AFTER UPDATE ON routes
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'route', NEW.id FROM store_revision WHERE id = 1;
END;
CREATE TRIGGER routes_delete_edge AFTER DELETE ON routes
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'route', OLD.id FROM store_revision WHERE id = 1;
END;
