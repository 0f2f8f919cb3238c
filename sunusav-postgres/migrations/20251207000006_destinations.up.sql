-- Real payouts: where they go, and the node's settle stream.
--
-- - A member's standing payout destination (a node for keysend).
-- - Invoices beneficiaries submit for a cycle's pot; a payment hash is
--   submitted once, for one payout only.
-- - A payment attempt keeps the route it was sent along; its payment hash
--   is fixed before sending and belongs to it alone; it may wait for a
--   destination (`awaiting_destination`).
-- - The settle index of the last settled invoice whose delivery is durable,
--   per stream source.

CREATE TABLE payout_destinations (
    member_id    uuid        NOT NULL,
    keysend_node bytea       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payout_destinations_pkey PRIMARY KEY (member_id),
    CONSTRAINT payout_destinations_node_length CHECK (octet_length(keysend_node) = 33)
);

CREATE TABLE payout_invoices (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    group_id     uuid        NOT NULL,
    cycle        integer     NOT NULL,
    payment_hash bytea       NOT NULL,
    bolt11       text        NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payout_invoices_pkey PRIMARY KEY (id),
    CONSTRAINT payout_invoices_payment_hash_key UNIQUE (payment_hash),
    CONSTRAINT payout_invoices_group_fkey FOREIGN KEY (group_id) REFERENCES tontine_groups (id) ON DELETE CASCADE,
    CONSTRAINT payout_invoices_cycle_positive CHECK (cycle >= 1),
    CONSTRAINT payout_invoices_payment_hash_length CHECK (octet_length(payment_hash) = 32),
    CONSTRAINT payout_invoices_bolt11_length CHECK (length(bolt11) BETWEEN 1 AND 7089)
);
CREATE INDEX payout_invoices_group_cycle_idx ON payout_invoices (group_id, cycle, id DESC);

ALTER TABLE payment_attempts
    ADD COLUMN route text,
    DROP CONSTRAINT payment_attempts_status_valid,
    ADD CONSTRAINT payment_attempts_status_valid
        CHECK (status IN ('pending', 'awaiting_destination', 'in_flight', 'succeeded', 'failed', 'dead'));
CREATE UNIQUE INDEX payment_attempts_payment_hash_key ON payment_attempts (payment_hash) WHERE payment_hash IS NOT NULL;
CREATE INDEX payment_attempts_awaiting_idx ON payment_attempts (beneficiary_id) WHERE status = 'awaiting_destination';

CREATE TABLE node_cursors (
    source       text   NOT NULL,
    settle_index bigint NOT NULL,
    CONSTRAINT node_cursors_pkey PRIMARY KEY (source),
    CONSTRAINT node_cursors_settle_index_nonnegative CHECK (settle_index >= 0)
);

-- Destinations are kept for members of a group only: looked up by member.
CREATE INDEX group_members_member_idx ON group_members (member_id);
