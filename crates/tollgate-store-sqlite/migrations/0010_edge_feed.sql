-- Edge change feed, part two: a bounded feed.
-- Kept parallel to tollgate-store-postgres/migrations/0010_edge_feed.sql: same tables, same columns.

-- 0009's feed triggers on keys, their route lists and model lists each take a revision, which is
-- also the gateway's reload signal: 0001's and 0008's triggers bumping the revision a second time
-- for the same rows go, so that one written row is one revision on both databases. (PostgreSQL
-- also turns these triggers into statement triggers, because updating one row many times in one
-- transaction is quadratic there; SQLite updates the revision row in place, so its row triggers
-- stay.)
DROP TRIGGER api_keys_insert_revision;
DROP TRIGGER api_keys_delete_revision;
DROP TRIGGER api_key_routes_insert_revision;
DROP TRIGGER api_key_routes_update_revision;
DROP TRIGGER api_key_routes_delete_revision;
DROP TRIGGER key_models_insert_revision;
DROP TRIGGER key_models_update_revision;
DROP TRIGGER key_models_delete_revision;
CREATE TRIGGER api_key_routes_update_edge AFTER UPDATE ON api_key_routes
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO edge_changes (revision, entity, entity_id)
    SELECT revision, 'key', NEW.key_id FROM store_revision WHERE id = 1;
END;

-- When each change was recorded, epoch ms, so that the retention task can drop old changes.
-- SQLite cannot add a column whose default is the current time: the trigger below sets it.
ALTER TABLE edge_changes ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE edge_changes SET changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);

CREATE TRIGGER edge_changes_time AFTER INSERT ON edge_changes
WHEN NEW.changed_at = 0
BEGIN
    UPDATE edge_changes SET changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE revision = NEW.revision;
END;

-- The highest revision whose changes may have been pruned: `changes?since=` below it cannot be
-- answered from the feed (the edge must take a new snapshot).
CREATE TABLE edge_feed (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
) STRICT;
INSERT INTO edge_feed (id, pruned_through) VALUES (1, 0);
