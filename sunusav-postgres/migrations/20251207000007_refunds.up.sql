-- A payment attempt pays a cycle's pot (`payout`) or a member's released
-- balance (`refund`, keyed by its ledger entry), through the same engine.
ALTER TABLE payment_attempts
    ADD COLUMN kind text NOT NULL DEFAULT 'payout',
    ADD CONSTRAINT payment_attempts_kind_valid CHECK (kind IN ('payout', 'refund'));
