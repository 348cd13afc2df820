-- Upstream time to last byte, beside time to first byte (`upstream_latency_us`): from sending the
-- request upstream until the upstream's answer ended. With both, a slow provider (first byte),
-- a slow stream (last byte) and a slow gateway (total minus last byte) can be told apart.
-- NULL in events where the answer did not end (the client hung up, an upstream error or
-- timeout), where no upstream was called, and in events written before this migration.
ALTER TABLE usage_events ADD COLUMN upstream_last_byte_us INTEGER;

-- Its latency sketch in every summary row; rows written before start empty (X'01000000' is
-- the encoding of an empty sketch), which the API reports as no figure rather than a made-up one.
ALTER TABLE summary_hourly ADD COLUMN upstream_last_byte BLOB NOT NULL DEFAULT X'01000000';
ALTER TABLE summary_daily ADD COLUMN upstream_last_byte BLOB NOT NULL DEFAULT X'01000000';
-- Kept parallel to tollgate-store-postgres/migrations/0015_upstream_last_byte.sql.
