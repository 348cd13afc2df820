-- Edge change feed, part two: a bounded feed, and bulk key writes that stay linear.
-- Kept parallel to tollgate-store-sqlite/migrations/0010_edge_feed.sql: same tables, same columns.

-- When each change was recorded, epoch ms, so that the retention task can drop old changes.
-- Rows already there take the migration's time.
ALTER TABLE edge_changes ADD COLUMN changed_at BIGINT NOT NULL
    DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint;

-- The highest revision whose changes may have been pruned: `changes?since=` below it cannot be
-- answered from the feed (the edge must take a new snapshot).
CREATE TABLE edge_feed (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT  NOT NULL
);
INSERT INTO edge_feed (id, pruned_through) VALUES (1, 0);

-- Row triggers on keys, their route lists and model lists updated the one store_revision row
-- once per written row, twice since 0009 (0001's reload signal, then 0009's feed). Each update
-- of a row leaves a version that the same transaction's later updates must step over, so n rows
-- written in one transaction cost O(n²): 100,000 keys took minutes. Statement triggers take all
-- the revisions a statement needs with one update (which is also the gateway's reload signal)
-- and record its rows from the transition table, in id order. Key updates (one key at a time:
-- revoke, edit), routes, teams and limits (few rows) keep their row triggers.
CREATE FUNCTION record_edge_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_count BIGINT;
    v_top   BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'api_keys' THEN
        SELECT count(*) INTO v_count FROM changed_rows;
    ELSE
        SELECT count(DISTINCT key_id) INTO v_count FROM changed_rows;
    END IF;
    IF v_count = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE store_revision SET revision = revision + v_count WHERE id = 1
        RETURNING revision INTO v_top;
    IF TG_TABLE_NAME = 'api_keys' THEN
        INSERT INTO edge_changes (revision, entity, entity_id, key_hash)
        SELECT v_top - v_count + row_number() OVER (ORDER BY id), 'key', id, key_hash
        FROM changed_rows;
    ELSE
        INSERT INTO edge_changes (revision, entity, entity_id)
        SELECT v_top - v_count + row_number() OVER (ORDER BY key_id), 'key', key_id
        FROM (SELECT DISTINCT key_id FROM changed_rows) AS keys;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER api_keys_insert_revision ON api_keys;
DROP TRIGGER api_key_routes_revision ON api_key_routes;
DROP TRIGGER key_models_revision ON key_models;
DROP TRIGGER api_keys_edge ON api_keys;
DROP TRIGGER api_key_routes_edge ON api_key_routes;
DROP TRIGGER key_models_edge ON key_models;

CREATE TRIGGER api_keys_insert_edge AFTER INSERT ON api_keys
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER api_keys_delete_edge AFTER DELETE ON api_keys
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER api_key_routes_insert_edge AFTER INSERT ON api_key_routes
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER api_key_routes_update_edge AFTER UPDATE ON api_key_routes
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER api_key_routes_delete_edge AFTER DELETE ON api_key_routes
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER key_models_insert_edge AFTER INSERT ON key_models
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER key_models_update_edge AFTER UPDATE ON key_models
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
CREATE TRIGGER key_models_delete_edge AFTER DELETE ON key_models
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_edge_changes();
