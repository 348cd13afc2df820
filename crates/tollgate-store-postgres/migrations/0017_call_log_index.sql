-- Nothing to do on PostgreSQL. On SQLite this migration replaces usage_events' indexes on ts,
-- (team_id, ts), (key_id, ts) and (route_id, ts) with one on (ts, id, team_id, key_id, route_id,
-- status), and a filtered call-log page walks the hours the roll-ups name (see
-- tollgate-store-sqlite/migrations/0017_call_log_index.sql). Kept so that migration file names
-- stay parallel across backends.
SELECT 1;
