-- Invoices gain an expiry and a state (at most one open per group, cycle and
-- member); invoices and contributions gain their insertion order; members'
-- balances are kept as ledger entries; groups choose whether balances pay
-- members' next contributions.

-- Insertion order ("oldest first"): created_at is the transaction's start
-- time, shared by every row one transaction writes.
CREATE SEQUENCE invoices_seq_seq AS bigint;
CREATE SEQUENCE contributions_seq_seq AS bigint;

ALTER TABLE invoices
    -- Unix milliseconds, as the port counts them: exact both ways.
    ADD COLUMN expires_at_ms bigint,
    ADD COLUMN state         text NOT NULL DEFAULT 'open',
    ADD COLUMN seq           bigint;

-- Existing invoices: payable for 24 hours from issue (the default expiry),
-- numbered in the order they were issued, and settled when a contribution
-- was recorded for them.
UPDATE invoices i
SET expires_at_ms = floor(extract(epoch FROM i.created_at + interval '24 hours') * 1000)::bigint,
    seq = o.n,
    state = CASE
        WHEN EXISTS (SELECT 1 FROM contributions c WHERE c.payment_hash = i.payment_hash) THEN 'settled'
        ELSE 'open'
    END
FROM (SELECT payment_hash, row_number() OVER (ORDER BY created_at, payment_hash) AS n FROM invoices) o
WHERE o.payment_hash = i.payment_hash;

-- Before this schema a member could be issued several invoices for a cycle.
-- The newest unpaid one stays open; older unpaid ones are marked cancelled
-- here only (the node is not told: a payment of one that still arrives is
-- settled as usual, since settlement does not depend on an invoice's state).
UPDATE invoices i
SET state = 'cancelled'
WHERE i.state = 'open'
  AND EXISTS (
      SELECT 1 FROM invoices newer
      WHERE newer.state = 'open'
        AND newer.group_id = i.group_id AND newer.cycle = i.cycle AND newer.member_id = i.member_id
        AND newer.seq > i.seq
  );

DO $$ BEGIN PERFORM setval('invoices_seq_seq', COALESCE((SELECT max(seq) FROM invoices), 0) + 1, false); END $$;
ALTER SEQUENCE invoices_seq_seq OWNED BY invoices.seq;

ALTER TABLE invoices
    ALTER COLUMN expires_at_ms SET NOT NULL,
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN seq SET DEFAULT nextval('invoices_seq_seq'),
    ADD CONSTRAINT invoices_expires_at_nonnegative CHECK (expires_at_ms >= 0),
    ADD CONSTRAINT invoices_state_valid CHECK (state IN ('open', 'settled', 'cancelled'));

-- The name is part of the port's contract: Duplicate(OpenInvoice). It holds
-- across concurrent transactions (a racing insert waits for the other one,
-- then fails), and serves the open-invoice reads by (group, cycle[, member]).
CREATE UNIQUE INDEX invoices_open_member_cycle ON invoices (group_id, cycle, member_id) WHERE state = 'open';

ALTER TABLE contributions ADD COLUMN seq bigint;
UPDATE contributions c
SET seq = o.n
FROM (SELECT payment_hash, row_number() OVER (ORDER BY created_at, payment_hash) AS n FROM contributions) o
WHERE o.payment_hash = c.payment_hash;
DO $$ BEGIN PERFORM setval('contributions_seq_seq', COALESCE((SELECT max(seq) FROM contributions), 0) + 1, false); END $$;
ALTER SEQUENCE contributions_seq_seq OWNED BY contributions.seq;
ALTER TABLE contributions
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN seq SET DEFAULT nextval('contributions_seq_seq');

-- A member's balance in a group: credits (money received that is not a
-- contribution) less debits ('applied' to a contribution, 'refund_released').
CREATE TABLE ledger_entries (
    id           bigserial   NOT NULL,
    key          text        NOT NULL,
    group_id     uuid        NOT NULL,
    member_id    uuid        NOT NULL,
    cycle        integer     NOT NULL,
    reason       text        NOT NULL,
    amount_msat  bigint      NOT NULL,
    payment_hash bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_entries_pkey PRIMARY KEY (id),
    -- The same fact recorded twice is one entry: Duplicate(LedgerEntry).
    CONSTRAINT ledger_entries_key_key UNIQUE (key),
    CONSTRAINT ledger_entries_member_fkey FOREIGN KEY (group_id, member_id)
        REFERENCES group_members (group_id, member_id) ON DELETE CASCADE,
    CONSTRAINT ledger_entries_key_length CHECK (length(key) BETWEEN 1 AND 255),
    -- The group's cycle when recorded: 0 while it is forming.
    CONSTRAINT ledger_entries_cycle_nonnegative CHECK (cycle >= 0),
    CONSTRAINT ledger_entries_reason_valid CHECK (reason IN (
        'overpaid', 'duplicate_invoice', 'late', 'group_cancelled', 'underpaid', 'applied', 'refund_released'
    )),
    CONSTRAINT ledger_entries_amount_positive CHECK (amount_msat > 0),
    CONSTRAINT ledger_entries_payment_hash_length
        CHECK (payment_hash IS NULL OR octet_length(payment_hash) = 32)
);
-- A group's entries in insertion order.
CREATE INDEX ledger_entries_group_idx ON ledger_entries (group_id, id);
-- Entries of a reason in insertion order (the listing across groups).
CREATE INDEX ledger_entries_reason_idx ON ledger_entries (reason, id);

-- Group policy: a member's balance pays their next contribution (default on).
ALTER TABLE tontine_groups ADD COLUMN apply_balance boolean NOT NULL DEFAULT true;
