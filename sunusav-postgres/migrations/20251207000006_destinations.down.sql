-- Back to the schema before payout destinations. Attempts that wait for a
-- destination become pending (the earlier engine pays them by key); routes,
-- destinations, submitted invoices and stream cursors are dropped.
DROP TABLE IF EXISTS node_cursors;
DROP INDEX IF EXISTS payment_attempts_awaiting_idx;
DROP INDEX IF EXISTS payment_attempts_payment_hash_key;
UPDATE payment_attempts SET status = 'pending' WHERE status = 'awaiting_destination';
ALTER TABLE payment_attempts
    DROP CONSTRAINT payment_attempts_status_valid,
    ADD CONSTRAINT payment_attempts_status_valid
        CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'dead')),
    DROP COLUMN IF EXISTS route;
DROP TABLE IF EXISTS payout_invoices;
DROP TABLE IF EXISTS payout_destinations;
DROP INDEX IF EXISTS group_members_member_idx;
