-- Prices: prices set from the console or the command line, and calls that had no price.
-- Kept parallel to tollgate-store-postgres/migrations/0012_prices.sql: same tables, same columns.

-- Model name (or name prefix) → price, dollars per million tokens; laid over the built-in table
-- and `[prices]` of the configuration. Changes bump store_revision, so every instance reloads.
CREATE TABLE model_prices (
    model        TEXT    PRIMARY KEY,
    input        REAL    NOT NULL,
    output       REAL    NOT NULL,
    cached_input REAL,
    reasoning    REAL,
    updated_by   TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TRIGGER model_prices_insert_revision AFTER INSERT ON model_prices
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER model_prices_update_revision AFTER UPDATE ON model_prices
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER model_prices_delete_revision AFTER DELETE ON model_prices
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;

-- Whether a call's cost came from a price: a call that used tokens of a model without one is
-- "no price", not $0. Calls recorded before keep the cost they were recorded with.
ALTER TABLE usage_events ADD COLUMN priced INTEGER NOT NULL DEFAULT 1;
ALTER TABLE usage_hourly ADD COLUMN unpriced_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN unpriced_calls INTEGER NOT NULL DEFAULT 0;
