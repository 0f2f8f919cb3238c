DROP INDEX IF EXISTS tontine_groups_scheduled_collecting;
DROP TABLE IF EXISTS late_members;
ALTER TABLE tontine_groups DROP COLUMN IF EXISTS policy;
ALTER TABLE tontine_groups DROP COLUMN IF EXISTS draw_seed;
ALTER TABLE tontine_groups DROP COLUMN IF EXISTS cycle_opened_ms;
