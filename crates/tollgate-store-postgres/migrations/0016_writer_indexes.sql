-- usage_events loses its primary key (id, ts): the index usage_events_ts_id (ts, id) holds the
-- same pairs, and every query finds events through it (the call log's pages and cursors, exports,
-- retention of the default partition). No query looks an event up by id alone. Each of the
-- table's indexes costs a B-tree insert per event; this one was a sixth of the writer's index
-- work for nothing. `id` stays unique without it: an identity column, filled from its sequence.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;

-- Kept parallel to tollgate-store-sqlite/migrations/0016_writer_indexes.sql.
