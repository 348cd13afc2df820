-- Latency sketches (tollgate_core::sketch::LatencySketch, encoded): percentiles within 2 % from
-- 0.1 ms to 10 minutes, merged exactly across hours, days, teams, keys, routes and models.
-- In their own tables, not on the roll-up rows, so that the counts, tokens and cost queries of
-- the dashboards never read them. Per team, key, route and model (not per status class): one
-- row for every status class of a roll-up. write_usage merges each batch into both grains in
-- the transaction that adds it to usage_hourly and usage_daily; latency_sketches reads whole
-- days from latency_daily and the hours around them from latency_hourly.
--
-- Besides one row per team, key, route and model, each team has a summary row per hour and day
-- (key_id = route_id = -1, model ''), so that percentiles without a key, route or model filter
-- read one row per team and day. No key has id -1.
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

-- As usage_hourly and usage_daily have: a filter on one team, key, route or model seeks its own rows.
CREATE INDEX latency_hourly_team_id_hour ON latency_hourly (team_id, hour);
CREATE INDEX latency_hourly_key_id_hour ON latency_hourly (key_id, hour);
CREATE INDEX latency_hourly_route_id_hour ON latency_hourly (route_id, hour);
CREATE INDEX latency_hourly_model_hour ON latency_hourly (model, hour);
CREATE INDEX latency_daily_team_id_day ON latency_daily (team_id, day);
CREATE INDEX latency_daily_key_id_day ON latency_daily (key_id, day);
CREATE INDEX latency_daily_route_id_day ON latency_daily (route_id, day);
CREATE INDEX latency_daily_model_day ON latency_daily (model, day);
