-- Drops the ledger (its balances with it), and the invoices' and
-- contributions' columns and constraints this migration added.
DROP TABLE IF EXISTS ledger_entries;
DROP INDEX IF EXISTS invoices_open_member_cycle;
ALTER TABLE contributions DROP COLUMN IF EXISTS seq;
ALTER TABLE invoices
    DROP CONSTRAINT IF EXISTS invoices_state_valid,
    DROP CONSTRAINT IF EXISTS invoices_expires_at_nonnegative,
    DROP COLUMN IF EXISTS seq,
    DROP COLUMN IF EXISTS state,
    DROP COLUMN IF EXISTS expires_at_ms;
ALTER TABLE tontine_groups DROP COLUMN IF EXISTS apply_balance;
