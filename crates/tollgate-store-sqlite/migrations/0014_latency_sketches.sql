-- Latency sketches (tollgate_core::sketch::LatencySketch, encoded): percentiles within 2 % from
-- 0.1 ms to 10 minutes, merged exactly across hours, days, teams, keys, routes and models.
-- In their own tables, not on the roll-up rows, so that the counts, tokens and cost queries of
-- the dashboards never read them. Per team, key, route and model (not per status class): one
-- row for every status class of a roll-up. write_usage merges each batch into both grains in
-- the transaction that adds it to usage_hourly and usage_daily; latency_sketches reads whole
-- days from latency_daily and the hours around them from latency_hourly.
--
-- Besides the detailed rows (key_id >= 0 and route_id >= 0), each team has summary rows per hour
-- and day, so that a percentile reads one row per team and day for each group it shows rather than
-- one per key, route and model: the team's (key_id = route_id = -1, model ''), each key's
-- (route_id = -1, model ''), each route's (key_id = -1, model '') and each model's (key_id = -1,
-- route_id = -2). No key or route has a negative id. Each kind has its own partial index, so a
-- query for one kind (rollup::SketchRows, whose conditions are the indexes' own) reads only its rows.
--
-- Roll-ups written before this migration have no sketch and cannot be given one exactly: the API
-- reports their periods' percentiles from the 24-bucket histogram, marked `coarse`.
-- Kept parallel to tollgate-store-postgres/migrations/0014_latency_sketches.sql.

CREATE TABLE latency_hourly (
    hour     INTEGER NOT NULL,
    team_id  INTEGER NOT NULL,
    key_id   INTEGER NOT NULL,
    route_id INTEGER NOT NULL,
    model    TEXT    NOT NULL,
    -- Total time in the gateway.
    total    BLOB    NOT NULL,
    -- Time until the upstream's response head (calls that reached an upstream).
    upstream BLOB    NOT NULL,
    PRIMARY KEY (hour, team_id, key_id, route_id, model)
) STRICT;

CREATE TABLE latency_daily (
    day      INTEGER NOT NULL,
    team_id  INTEGER NOT NULL,
    key_id   INTEGER NOT NULL,
    route_id INTEGER NOT NULL,
    model    TEXT    NOT NULL,
    total    BLOB    NOT NULL,
    upstream BLOB    NOT NULL,
    PRIMARY KEY (day, team_id, key_id, route_id, model)
) STRICT;

-- Summary rows by kind (a key, route or model filter seeks the key's, route's or model's own), then
-- detailed rows by key, route and model (for two or three of them at once), as usage_hourly and
-- usage_daily have. A team filter is a condition on the rows each of these yields.
CREATE INDEX latency_hourly_teams ON latency_hourly (hour, team_id) WHERE key_id = -1 AND route_id = -1;
CREATE INDEX latency_hourly_keys ON latency_hourly (key_id, hour) WHERE key_id >= 0 AND route_id = -1;
CREATE INDEX latency_hourly_routes ON latency_hourly (route_id, hour) WHERE key_id = -1 AND route_id >= 0;
CREATE INDEX latency_hourly_models ON latency_hourly (model, hour) WHERE key_id = -1 AND route_id = -2;
CREATE INDEX latency_hourly_key_id_hour ON latency_hourly (key_id, hour) WHERE key_id >= 0 AND route_id >= 0;
CREATE INDEX latency_hourly_route_id_hour ON latency_hourly (route_id, hour) WHERE key_id >= 0 AND route_id >= 0;
CREATE INDEX latency_hourly_model_hour ON latency_hourly (model, hour) WHERE key_id >= 0 AND route_id >= 0;

CREATE INDEX latency_daily_teams ON latency_daily (day, team_id) WHERE key_id = -1 AND route_id = -1;
CREATE INDEX latency_daily_keys ON latency_daily (key_id, day) WHERE key_id >= 0 AND route_id = -1;
CREATE INDEX latency_daily_routes ON latency_daily (route_id, day) WHERE key_id = -1 AND route_id >= 0;
CREATE INDEX latency_daily_models ON latency_daily (model, day) WHERE key_id = -1 AND route_id = -2;
CREATE INDEX latency_daily_key_id_day ON latency_daily (key_id, day) WHERE key_id >= 0 AND route_id >= 0;
CREATE INDEX latency_daily_route_id_day ON latency_daily (route_id, day) WHERE key_id >= 0 AND route_id >= 0;
CREATE INDEX latency_daily_model_day ON latency_daily (model, day) WHERE key_id >= 0 AND route_id >= 0;
