-- Groups, their members in payout order, issued invoices and recorded contributions.

CREATE TABLE tontine_groups (
    id                uuid        NOT NULL,
    contribution_msat bigint      NOT NULL,
    fee_bps           integer     NOT NULL,
    status            text        NOT NULL,
    current_cycle     integer     NOT NULL,
    cycle_status      text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tontine_groups_pkey PRIMARY KEY (id),
    CONSTRAINT tontine_groups_contribution_positive CHECK (contribution_msat > 0),
    CONSTRAINT tontine_groups_fee_bps_range CHECK (fee_bps BETWEEN 0 AND 10000),
    CONSTRAINT tontine_groups_status_valid
        CHECK (status IN ('forming', 'active', 'finished', 'cancelled')),
    CONSTRAINT tontine_groups_cycle_nonnegative CHECK (current_cycle >= 0),
    CONSTRAINT tontine_groups_cycle_status_valid
        CHECK (cycle_status IN ('collecting', 'completing', 'paid_out', 'payout_failed'))
);

-- Payout order: cycle k pays the member at position k.
CREATE TABLE group_members (
    group_id  uuid    NOT NULL REFERENCES tontine_groups (id) ON DELETE CASCADE,
    position  integer NOT NULL,
    member_id uuid    NOT NULL,
    CONSTRAINT group_members_pkey PRIMARY KEY (group_id, position),
    CONSTRAINT group_members_member_key UNIQUE (group_id, member_id),
    CONSTRAINT group_members_position_positive CHECK (position >= 1)
);

CREATE TABLE invoices (
    payment_hash bytea       NOT NULL,
    group_id     uuid        NOT NULL,
    cycle        integer     NOT NULL,
    member_id    uuid        NOT NULL,
    amount_msat  bigint      NOT NULL,
    bolt11       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_pkey PRIMARY KEY (payment_hash),
    CONSTRAINT invoices_member_fkey FOREIGN KEY (group_id, member_id)
        REFERENCES group_members (group_id, member_id) ON DELETE CASCADE,
    CONSTRAINT invoices_payment_hash_length CHECK (octet_length(payment_hash) = 32),
    CONSTRAINT invoices_cycle_positive CHECK (cycle >= 1),
    CONSTRAINT invoices_amount_positive CHECK (amount_msat > 0),
    CONSTRAINT invoices_bolt11_nonempty CHECK (bolt11 <> '')
);

CREATE TABLE contributions (
    payment_hash bytea       NOT NULL,
    group_id     uuid        NOT NULL,
    cycle        integer     NOT NULL,
    member_id    uuid        NOT NULL,
    amount_msat  bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contributions_pkey PRIMARY KEY (payment_hash),
    -- The name is part of the port's contract: Duplicate("contribution_member_cycle").
    CONSTRAINT contribution_member_cycle UNIQUE (group_id, cycle, member_id),
    CONSTRAINT contributions_member_fkey FOREIGN KEY (group_id, member_id)
        REFERENCES group_members (group_id, member_id) ON DELETE CASCADE,
    CONSTRAINT contributions_payment_hash_length CHECK (octet_length(payment_hash) = 32),
    CONSTRAINT contributions_cycle_positive CHECK (cycle >= 1),
    CONSTRAINT contributions_amount_positive CHECK (amount_msat > 0)
);
