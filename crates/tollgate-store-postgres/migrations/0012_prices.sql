-- Prices: prices set from the console or the command line, and calls that had no price.
-- Kept parallel to tollgate-store-sqlite/migrations/0012_prices.sql: same tables, same columns.

-- Model name (or name prefix) → price, dollars per million tokens; laid over the built-in table
-- and `[prices]` of the configuration. Changes bump store_revision, so every instance reloads.
CREATE TABLE model_prices (
    model        TEXT             PRIMARY KEY,
    input        DOUBLE PRECISION NOT NULL,
    output       DOUBLE PRECISION NOT NULL,
    cached_input DOUBLE PRECISION,
    reasoning    DOUBLE PRECISION,
    updated_by   TEXT             NOT NULL,
    updated_at   BIGINT           NOT NULL
);

CREATE TRIGGER model_prices_revision AFTER INSERT OR UPDATE OR DELETE ON model_prices
    FOR EACH ROW EXECUTE FUNCTION bump_store_revision();

-- Whether a call's cost came from a price: a call that used tokens of a model without one is
-- "no price", not $0. Calls recorded before keep the cost they were recorded with.
ALTER TABLE usage_events ADD COLUMN priced BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE usage_hourly ADD COLUMN unpriced_calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN unpriced_calls BIGINT NOT NULL DEFAULT 0;
