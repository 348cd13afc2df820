-- One index for the call log instead of four: (ts, id) carrying team, key, route and status.
--
-- usage_events had an index on ts and one each on (team_id, ts), (key_id, ts) and (route_id, ts):
-- six B-trees per stored event with the table and event_id's. The writer spent a third of its
-- time in the three per-dimension ones (bench/README.md). A filtered call-log page now reads the
-- hours the hourly roll-ups say hold matching events (usage_hourly's own (dimension, hour)
-- indexes find them), and in each such hour walks this index newest first, testing team, key,
-- route and status in the index entry before it reads a row (search.rs).
-- On PostgreSQL the per-dimension indexes stay (0017 there is empty): its writer is not bound by
-- one thread, and its daily partitions are searched by PageSpans.
DROP INDEX usage_events_team_id_ts;
DROP INDEX usage_events_key_id_ts;
DROP INDEX usage_events_route_id_ts;
DROP INDEX usage_events_ts;
CREATE INDEX usage_events_ts ON usage_events (ts, id, team_id, key_id, route_id, status);
