-- A group's rules as the JSON the domain reads and checks (late policy,
-- reminders, apply_balance); none for a group created before them, whose
-- rules are the defaults with its apply_balance column.
ALTER TABLE tontine_groups
    ADD COLUMN policy text NULL;

-- The secret seed of a drawn payout order, set when the group starts; its
-- commitment and each cycle's reveal are computed from it, never the seed
-- itself shown.
ALTER TABLE tontine_groups
    ADD COLUMN draw_seed bytea NULL CHECK (draw_seed IS NULL OR octet_length(draw_seed) = 32);

-- When the current cycle opened (unix ms): a cycle that opens after its
-- calendar due time is due a grace period after it opened.
ALTER TABLE tontine_groups
    ADD COLUMN cycle_opened_ms bigint NULL CHECK (cycle_opened_ms IS NULL OR cycle_opened_ms >= 0);

-- The members told late in a cycle, once each, with the fine they owe on
-- top of the contribution (zero under the `wait` policy).
CREATE TABLE late_members (
    group_id   uuid        NOT NULL REFERENCES tontine_groups (id),
    cycle      integer     NOT NULL CHECK (cycle >= 1),
    member_id  uuid        NOT NULL,
    fine_msat  bigint      NOT NULL CHECK (fine_msat >= 0),
    told_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, cycle, member_id)
);

-- The timers' sweep reads the collecting cycles of scheduled groups.
CREATE INDEX tontine_groups_scheduled_collecting ON tontine_groups (id)
    WHERE schedule IS NOT NULL AND status = 'active' AND cycle_status = 'collecting';
