-- Counters belong to a team (issue 10, finding 9): only its members see a counter, names are
-- unique within a team, and a team's counters go with it. Counters that had no team (instance-wide,
-- open to every signed-in user) move to the `default` team every instance keeps.
-- Kept parallel to tollgate-store-sqlite/migrations/0007_counter_teams.sql.

INSERT INTO teams (name, created_at)
SELECT 'default', (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
WHERE EXISTS (SELECT 1 FROM token_counters WHERE team_id IS NULL)
ON CONFLICT (name) DO NOTHING;

-- Names were unique across the instance, so they stay unique within the default team.
UPDATE token_counters
SET team_id = (SELECT id FROM teams WHERE name = 'default')
WHERE team_id IS NULL;

ALTER TABLE token_counters DROP CONSTRAINT token_counters_name_key;
ALTER TABLE token_counters DROP CONSTRAINT token_counters_team_id_fkey;
ALTER TABLE token_counters
    ALTER COLUMN team_id SET NOT NULL,
    ADD CONSTRAINT token_counters_team_id_fkey
        FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
    ADD CONSTRAINT token_counters_team_name_key UNIQUE (team_id, name);
