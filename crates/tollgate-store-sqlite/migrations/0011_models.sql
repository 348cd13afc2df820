-- Model routing: upstream targets and the models they serve; how a route sends its credential;
-- each LLM call's attempts. Times are epoch milliseconds.
-- Kept parallel to tollgate-store-postgres/migrations/0011_models.sql: same tables, same columns.

-- An upstream a model's calls can go to: a provider, a base URL, a credential sealed with the
-- master key (bound to the row). `settings` holds the rest as JSON in the shape of
-- tollgate-core's `llm::TargetSettings` (credential header, query parameters, Azure deployment,
-- weight, rate ceiling); the store does not interpret it.
CREATE TABLE llm_targets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    provider          TEXT    NOT NULL,
    base_url          TEXT    NOT NULL,
    settings          TEXT    NOT NULL,
    sealed_credential BLOB,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

-- A model name (or wildcard) clients ask for; `settings` is tollgate-core's `llm::ModelSettings`
-- as JSON (the pool of targets by name, aliases, ordered fallbacks, strategy). That names refer
-- to existing targets and models, and that aliases are unique, is checked by the rules.
CREATE TABLE llm_models (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    settings   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER llm_targets_insert_revision AFTER INSERT ON llm_targets
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER llm_targets_update_revision AFTER UPDATE ON llm_targets
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER llm_targets_delete_revision AFTER DELETE ON llm_targets
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER llm_models_insert_revision AFTER INSERT ON llm_models
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER llm_models_update_revision AFTER UPDATE ON llm_models
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER llm_models_delete_revision AFTER DELETE ON llm_models
BEGIN UPDATE store_revision SET revision = revision + 1 WHERE id = 1; END;

-- The header a route's credential is sent in and its value with `{key}` for the secret; NULL:
-- the route kind's own (`authorization: Bearer {key}`, `x-api-key: {key}` for anthropic).
ALTER TABLE routes ADD COLUMN credential_header TEXT;
ALTER TABLE routes ADD COLUMN credential_format TEXT;

-- The attempts of a call on an `llm` route (target, status, time) as JSON; NULL on other routes.
ALTER TABLE usage_events ADD COLUMN attempts TEXT;
