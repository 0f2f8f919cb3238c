-- The console's search by member: the payment attempts paying a member
-- (payouts and refunds) and the invoices issued to them, of every group,
-- newest first, each through an index (never a scan of the table).
CREATE INDEX payment_attempts_beneficiary_idx ON payment_attempts (beneficiary_id, id DESC);
CREATE INDEX invoices_member_idx ON invoices (member_id, seq DESC);
