-- A group's calendar (first due time, period, grace), as the JSON the
-- domain reads and checks; none for a group that runs at its members' pace.
ALTER TABLE tontine_groups
    ADD COLUMN schedule text NULL;
