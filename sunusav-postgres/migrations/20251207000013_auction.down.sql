ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_reason_valid;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_reason_valid CHECK (reason IN (
    'overpaid', 'duplicate_invoice', 'late', 'group_cancelled', 'underpaid', 'applied', 'refund_released'
));
DROP INDEX IF EXISTS group_members_payout_cycle;
ALTER TABLE group_members DROP COLUMN IF EXISTS payout_cycle;
DROP TABLE IF EXISTS bids;
