-- Summary roll-ups with latency sketches (tollgate_core::sketch::LatencySketch, encoded):
-- percentiles within 2 % from 0.1 ms to 10 minutes, merged exactly across hours, days, teams,
-- keys, routes and models; and the counts, tokens and cost of usage_hourly and usage_daily summed
-- per team, key, route or model, so that a dashboard reads one row per team and day (or hour) for
-- each group it shows instead of one per key, route, model and status class.
--
-- Rows, of eight kinds (rollup::SketchRows), which the primary key starts with so that a kind's
-- rows over a range of hours or days lie together:
-- * summaries, with sketches and counts: kind 0, the team's (key_id = route_id = -1, model '');
--   kind 1, each key's (route_id = -1, model ''); kind 2, each route's (key_id = -1, model '');
--   kind 3, each model's (key_id = -1, route_id = -2);
-- * kind 4, detailed: the sketches of a team's key, route and model; no counts (NULL:
--   usage_hourly and usage_daily hold them per status class);
-- * summaries across teams (team_id = -1), for answers without a team filter that are not per
--   team: kind 5, every team's calls; kind 6, each route's; kind 7, each model's.
-- No key or route has a negative id. write_usage merges each batch into both grains in the
-- transaction that adds it to usage_hourly and usage_daily.
--
-- Roll-ups written before this migration are summed into summary rows here, with empty sketches:
-- their calls cannot be given exact percentiles, and the API reports those periods' percentiles
-- from the 24-bucket histogram, marked `coarse`.
-- Kept parallel to tollgate-store-postgres/migrations/0014_summaries.sql.

CREATE TABLE summary_hourly (
    kind     INTEGER NOT NULL,
    hour     INTEGER NOT NULL,
    team_id  INTEGER NOT NULL,
    key_id   INTEGER NOT NULL,
    route_id INTEGER NOT NULL,
    model    TEXT    NOT NULL,
    -- Total time in the gateway.
    total    BLOB    NOT NULL,
    -- Time until the upstream's response head (calls that reached an upstream).
    upstream BLOB    NOT NULL,
    -- Summary rows only (NULL in detailed rows): the sums of usage_hourly's columns.
    calls             INTEGER,
    errors            INTEGER,
    unknown_calls     INTEGER,
    latency_sum_us    INTEGER,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    cached_tokens     INTEGER,
    reasoning_tokens  INTEGER,
    estimated_calls   INTEGER,
    cost_usd          REAL,
    unpriced_calls    INTEGER,
    h00 INTEGER, h01 INTEGER, h02 INTEGER, h03 INTEGER,
    h04 INTEGER, h05 INTEGER, h06 INTEGER, h07 INTEGER,
    h08 INTEGER, h09 INTEGER, h10 INTEGER, h11 INTEGER,
    h12 INTEGER, h13 INTEGER, h14 INTEGER, h15 INTEGER,
    h16 INTEGER, h17 INTEGER, h18 INTEGER, h19 INTEGER,
    h20 INTEGER, h21 INTEGER, h22 INTEGER, h23 INTEGER,
    PRIMARY KEY (kind, hour, team_id, key_id, route_id, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE summary_daily (
    kind     INTEGER NOT NULL,
    day      INTEGER NOT NULL,
    team_id  INTEGER NOT NULL,
    key_id   INTEGER NOT NULL,
    route_id INTEGER NOT NULL,
    model    TEXT    NOT NULL,
    -- Total time in the gateway.
    total    BLOB    NOT NULL,
    -- Time until the upstream's response head (calls that reached an upstream).
    upstream BLOB    NOT NULL,
    -- Summary rows only (NULL in detailed rows): the sums of usage_daily's columns.
    calls             INTEGER,
    errors            INTEGER,
    unknown_calls     INTEGER,
    latency_sum_us    INTEGER,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    cached_tokens     INTEGER,
    reasoning_tokens  INTEGER,
    estimated_calls   INTEGER,
    cost_usd          REAL,
    unpriced_calls    INTEGER,
    h00 INTEGER, h01 INTEGER, h02 INTEGER, h03 INTEGER,
    h04 INTEGER, h05 INTEGER, h06 INTEGER, h07 INTEGER,
    h08 INTEGER, h09 INTEGER, h10 INTEGER, h11 INTEGER,
    h12 INTEGER, h13 INTEGER, h14 INTEGER, h15 INTEGER,
    h16 INTEGER, h17 INTEGER, h18 INTEGER, h19 INTEGER,
    h20 INTEGER, h21 INTEGER, h22 INTEGER, h23 INTEGER,
    PRIMARY KEY (kind, day, team_id, key_id, route_id, model)
) STRICT, WITHOUT ROWID;

-- usage_hourly summed into the summaries of every kind but the detailed one.
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 0, hour, team_id, -1, -1, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour, team_id;
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 1, hour, team_id, key_id, -1, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour, team_id, key_id;
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 2, hour, team_id, -1, route_id, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour, team_id, route_id;
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 3, hour, team_id, -1, -2, model, X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour, team_id, model;
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 5, hour, -1, -1, -1, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour;
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 6, hour, -1, -1, route_id, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour, route_id;
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 7, hour, -1, -1, -2, model, X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_hourly GROUP BY hour, model;

-- usage_daily summed into the summaries of every kind but the detailed one.
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 0, day, team_id, -1, -1, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day, team_id;
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 1, day, team_id, key_id, -1, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day, team_id, key_id;
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 2, day, team_id, -1, route_id, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day, team_id, route_id;
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 3, day, team_id, -1, -2, model, X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day, team_id, model;
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 5, day, -1, -1, -1, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day;
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 6, day, -1, -1, route_id, '', X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day, route_id;
INSERT INTO summary_daily (kind, day, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 7, day, -1, -1, -2, model, X'01000000', X'01000000',
    SUM(calls), SUM(errors), SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END),
    SUM(latency_sum_us), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd),
    SUM(unpriced_calls), SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06),
    SUM(h07), SUM(h08), SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15),
    SUM(h16), SUM(h17), SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23)
FROM usage_daily GROUP BY day, model;

-- A range of one kind's rows is a range of the primary key. The detailed rows have indexes
-- by key, route and model (for two or three of them at once, as usage_hourly and usage_daily
-- have); a model filter seeks the model summaries' own rows.
CREATE INDEX summary_hourly_models ON summary_hourly (model, hour) WHERE kind = 3;
CREATE INDEX summary_hourly_key_id_hour ON summary_hourly (key_id, hour) WHERE kind = 4;
CREATE INDEX summary_hourly_route_id_hour ON summary_hourly (route_id, hour) WHERE kind = 4;
CREATE INDEX summary_hourly_model_hour ON summary_hourly (model, hour) WHERE kind = 4;

CREATE INDEX summary_daily_models ON summary_daily (model, day) WHERE kind = 3;
CREATE INDEX summary_daily_key_id_day ON summary_daily (key_id, day) WHERE kind = 4;
CREATE INDEX summary_daily_route_id_day ON summary_daily (route_id, day) WHERE kind = 4;
CREATE INDEX summary_daily_model_day ON summary_daily (model, day) WHERE kind = 4;
