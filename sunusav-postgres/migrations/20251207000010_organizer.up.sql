-- The member who organizes a group (starts and cancels it, with an
-- operator). Groups created before have none: only operators manage them.
ALTER TABLE tontine_groups
    ADD COLUMN organizer uuid NULL;
