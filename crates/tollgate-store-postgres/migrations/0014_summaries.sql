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
-- Kept parallel to tollgate-store-sqlite/migrations/0014_summaries.sql.

CREATE TABLE summary_hourly (
    kind     SMALLINT NOT NULL,
    hour     BIGINT NOT NULL,
    team_id  BIGINT NOT NULL,
    key_id   BIGINT NOT NULL,
    route_id BIGINT NOT NULL,
    model    TEXT    NOT NULL,
    -- Total time in the gateway.
    total    BYTEA    NOT NULL,
    -- Time until the upstream's response head (calls that reached an upstream).
    upstream BYTEA    NOT NULL,
    -- Summary rows only (NULL in detailed rows): the sums of usage_hourly's columns.
    calls             BIGINT,
    errors            BIGINT,
    unknown_calls     BIGINT,
    latency_sum_us    BIGINT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    cached_tokens     BIGINT,
    reasoning_tokens  BIGINT,
    estimated_calls   BIGINT,
    cost_usd          DOUBLE PRECISION,
    unpriced_calls    BIGINT,
    h00 BIGINT, h01 BIGINT, h02 BIGINT, h03 BIGINT,
    h04 BIGINT, h05 BIGINT, h06 BIGINT, h07 BIGINT,
    h08 BIGINT, h09 BIGINT, h10 BIGINT, h11 BIGINT,
    h12 BIGINT, h13 BIGINT, h14 BIGINT, h15 BIGINT,
    h16 BIGINT, h17 BIGINT, h18 BIGINT, h19 BIGINT,
    h20 BIGINT, h21 BIGINT, h22 BIGINT, h23 BIGINT,
    PRIMARY KEY (kind, hour, team_id, key_id, route_id, model)
);

CREATE TABLE summary_daily (
    kind     SMALLINT NOT NULL,
    day      BIGINT NOT NULL,
    team_id  BIGINT NOT NULL,
    key_id   BIGINT NOT NULL,
    route_id BIGINT NOT NULL,
    model    TEXT    NOT NULL,
    -- Total time in the gateway.
    total    BYTEA    NOT NULL,
    -- Time until the upstream's response head (calls that reached an upstream).
    upstream BYTEA    NOT NULL,
    -- Summary rows only (NULL in detailed rows): the sums of usage_daily's columns.
    calls             BIGINT,
    errors            BIGINT,
    unknown_calls     BIGINT,
    latency_sum_us    BIGINT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    cached_tokens     BIGINT,
    reasoning_tokens  BIGINT,
    estimated_calls   BIGINT,
    cost_usd          DOUBLE PRECISION,
    unpriced_calls    BIGINT,
    h00 BIGINT, h01 BIGINT, h02 BIGINT, h03 BIGINT,
    h04 BIGINT, h05 BIGINT, h06 BIGINT, h07 BIGINT,
    h08 BIGINT, h09 BIGINT, h10 BIGINT, h11 BIGINT,
    h12 BIGINT, h13 BIGINT, h14 BIGINT, h15 BIGINT,
    h16 BIGINT, h17 BIGINT, h18 BIGINT, h19 BIGINT,
    h20 BIGINT, h21 BIGINT, h22 BIGINT, h23 BIGINT,
    PRIMARY KEY (kind, day, team_id, key_id, route_id, model)
);

-- usage_hourly summed into the summaries of every kind but the detailed one.
INSERT INTO summary_hourly (kind, hour, team_id, key_id, route_id, model, total, upstream,
    calls, errors, unknown_calls, latency_sum_us, prompt_tokens, completion_tokens,
    total_tokens, cached_tokens, reasoning_tokens, estimated_calls, cost_usd, unpriced_calls,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23)
SELECT 0, hour, team_id, -1, -1, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 1, hour, team_id, key_id, -1, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 2, hour, team_id, -1, route_id, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 3, hour, team_id, -1, -2, model, '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 5, hour, -1, -1, -1, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 6, hour, -1, -1, route_id, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 7, hour, -1, -1, -2, model, '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 0, day, team_id, -1, -1, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 1, day, team_id, key_id, -1, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 2, day, team_id, -1, route_id, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 3, day, team_id, -1, -2, model, '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 5, day, -1, -1, -1, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 6, day, -1, -1, route_id, '', '\x01000000'::bytea, '\x01000000'::bytea,
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
SELECT 7, day, -1, -1, -2, model, '\x01000000'::bytea, '\x01000000'::bytea,
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
