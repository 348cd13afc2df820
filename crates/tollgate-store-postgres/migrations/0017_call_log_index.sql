-- One index for the call log instead of four: (ts, id) carrying team, key, route and status.
--
-- Each of usage_events' indexes costs every stored event a B-tree insert (and its WAL record) in
-- its day's partition. The per-dimension ones, (key_id, ts), (route_id, ts) and (team_id, ts,
-- id), served call-log pages filtered by key, route or team; a page now reads only the hours the
-- hourly roll-ups say hold matching calls (tollgate_store::search_by_hours; usage_hourly has its
-- own (dimension, hour) indexes), and walks this index over each such span, its team, key, route
-- and status tested in the index entry before the row is read. On partitioned usage_events the
-- DROP and CREATE reach every partition; a partition made later gets the index from its parent.
-- Kept parallel to tollgate-store-sqlite/migrations/0017_call_log_index.sql.
DROP INDEX usage_events_key_id_ts;
DROP INDEX usage_events_route_id_ts;
DROP INDEX usage_events_team_id_ts;
DROP INDEX usage_events_ts_id;
CREATE INDEX usage_events_ts_id ON usage_events (ts, id, team_id, key_id, route_id, status);
