-- Back to payouts only: refund attempts are dropped (their ledger entries,
-- the obligations, stay).
DELETE FROM payment_attempts WHERE kind = 'refund';
ALTER TABLE payment_attempts
    DROP CONSTRAINT IF EXISTS payment_attempts_kind_valid,
    DROP COLUMN IF EXISTS kind;
