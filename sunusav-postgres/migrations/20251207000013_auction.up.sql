-- An auctioned payout order: each cycle's sealed bids (the latest of each
-- member), and the cycle each member won the pot in.
CREATE TABLE bids (
    group_id     uuid    NOT NULL,
    cycle        integer NOT NULL CHECK (cycle >= 1),
    member_id    uuid    NOT NULL,
    payout_msat  bigint  NOT NULL CHECK (payout_msat > 0),
    at_ms        bigint  NOT NULL CHECK (at_ms >= 0),
    PRIMARY KEY (group_id, cycle, member_id),
    FOREIGN KEY (group_id, member_id) REFERENCES group_members (group_id, member_id) ON DELETE CASCADE
);

ALTER TABLE group_members
    ADD COLUMN payout_cycle integer NULL CHECK (payout_cycle IS NULL OR payout_cycle >= 1);
CREATE UNIQUE INDEX group_members_payout_cycle ON group_members (group_id, payout_cycle)
    WHERE payout_cycle IS NOT NULL;

-- A member's share of an auctioned cycle's discount; the `cover` policy's
-- held deposits (paid, covering a late contribution, refilled from the
-- balance, returned when the group ends).
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_reason_valid;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_reason_valid CHECK (reason IN (
    'overpaid', 'duplicate_invoice', 'late', 'group_cancelled', 'underpaid', 'applied', 'refund_released',
    'dividend', 'deposit', 'covered', 'deposit_refilled', 'deposit_returned'
));
