-- Indexes for the dashboards' filtered aggregates and the call-log search.
-- Kept parallel to tollgate-store-sqlite/migrations/0004_analytics.sql.

-- usage_hourly's primary key starts with the hour: a range over all teams scans it in order.
-- A filter on one team, key, route or model seeks its own rows instead.
CREATE INDEX usage_hourly_team_id_hour ON usage_hourly (team_id, hour);
CREATE INDEX usage_hourly_key_id_hour ON usage_hourly (key_id, hour);
CREATE INDEX usage_hourly_route_id_hour ON usage_hourly (route_id, hour);
CREATE INDEX usage_hourly_model_hour ON usage_hourly (model, hour);

-- A team's call log, newest first, and the (ts, id) keyset order of every page.
CREATE INDEX usage_events_team_id_ts ON usage_events (team_id, ts, id);
DROP INDEX usage_events_ts;
CREATE INDEX usage_events_ts_id ON usage_events (ts, id);
