-- An alert channel's webhook URL is a credential (a Slack incoming webhook's path is its token):
-- it is kept sealed with the master key, bound to the channel's name, like the channel's signing
-- secret. `url_display` holds what lists show (scheme, host, port, masked path, no query).
-- The plain `url` column stays for rows written before this migration: `serve` seals them at
-- start when a master key is configured and then clears it; new rows leave it empty.
ALTER TABLE alert_channels ADD COLUMN sealed_url BYTEA;
ALTER TABLE alert_channels ADD COLUMN url_display TEXT NOT NULL DEFAULT '';
