ALTER TABLE tontine_groups
    DROP COLUMN IF EXISTS schedule;
