-- Daily roll-ups: usage_hourly summed per UTC day (`day` is the day's start, epoch ms), so that
-- aggregates over weeks and months read a twenty-fourth of the rows. write_usage adds every batch
-- to both tables in one transaction; aggregate_usage reads whole days here and the hours around
-- them from usage_hourly.
-- Kept parallel to tollgate-store-postgres/migrations/0005_daily_rollups.sql.

-- Same columns, primary key and defaults as usage_hourly, with `day` in place of `hour`.
CREATE TABLE usage_daily (
    day               INTEGER NOT NULL,
    team_id           INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    route_id          INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    status_class      INTEGER NOT NULL,
    calls             INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    latency_sum_us    INTEGER NOT NULL DEFAULT 0,
    h00 INTEGER NOT NULL DEFAULT 0, h01 INTEGER NOT NULL DEFAULT 0, h02 INTEGER NOT NULL DEFAULT 0,
    h03 INTEGER NOT NULL DEFAULT 0, h04 INTEGER NOT NULL DEFAULT 0, h05 INTEGER NOT NULL DEFAULT 0,
    h06 INTEGER NOT NULL DEFAULT 0, h07 INTEGER NOT NULL DEFAULT 0, h08 INTEGER NOT NULL DEFAULT 0,
    h09 INTEGER NOT NULL DEFAULT 0, h10 INTEGER NOT NULL DEFAULT 0, h11 INTEGER NOT NULL DEFAULT 0,
    h12 INTEGER NOT NULL DEFAULT 0, h13 INTEGER NOT NULL DEFAULT 0, h14 INTEGER NOT NULL DEFAULT 0,
    h15 INTEGER NOT NULL DEFAULT 0, h16 INTEGER NOT NULL DEFAULT 0, h17 INTEGER NOT NULL DEFAULT 0,
    h18 INTEGER NOT NULL DEFAULT 0, h19 INTEGER NOT NULL DEFAULT 0, h20 INTEGER NOT NULL DEFAULT 0,
    h21 INTEGER NOT NULL DEFAULT 0, h22 INTEGER NOT NULL DEFAULT 0, h23 INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    estimated_calls   INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (day, team_id, key_id, route_id, model, status_class)
) STRICT, WITHOUT ROWID;

-- The roll-ups written so far. Days start at UTC midnight (floor division, as write_usage does).
INSERT INTO usage_daily (day, team_id, key_id, route_id, model, status_class, calls, errors,
    latency_sum_us,
    h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17,
    h18, h19, h20, h21, h22, h23,
    prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens,
    estimated_calls, cost_usd)
SELECT hour - ((hour % 86400000) + 86400000) % 86400000 AS day, team_id, key_id, route_id,
    model, status_class, SUM(calls), SUM(errors), SUM(latency_sum_us),
    SUM(h00), SUM(h01), SUM(h02), SUM(h03), SUM(h04), SUM(h05), SUM(h06), SUM(h07), SUM(h08),
    SUM(h09), SUM(h10), SUM(h11), SUM(h12), SUM(h13), SUM(h14), SUM(h15), SUM(h16), SUM(h17),
    SUM(h18), SUM(h19), SUM(h20), SUM(h21), SUM(h22), SUM(h23),
    SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), SUM(cached_tokens),
    SUM(reasoning_tokens), SUM(estimated_calls), SUM(cost_usd)
FROM usage_hourly
GROUP BY 1, team_id, key_id, route_id, model, status_class;

-- As 0004 gave usage_hourly: a filter on one team, key, route or model seeks its own rows.
CREATE INDEX usage_daily_team_id_day ON usage_daily (team_id, day);
CREATE INDEX usage_daily_key_id_day ON usage_daily (key_id, day);
CREATE INDEX usage_daily_route_id_day ON usage_daily (route_id, day);
CREATE INDEX usage_daily_model_day ON usage_daily (model, day);
