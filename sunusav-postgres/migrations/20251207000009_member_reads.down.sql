-- Back to the schema before the reads by member: only their indexes go.
DROP INDEX IF EXISTS invoices_member_idx;
DROP INDEX IF EXISTS payment_attempts_beneficiary_idx;
