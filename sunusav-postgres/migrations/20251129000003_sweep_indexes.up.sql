-- The sweeps that queue again the work a queue lost read by these indexes,
-- which hold only the few rows still open.

-- Recorded deliveries without an outcome, oldest first.
CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (id) WHERE outcome IS NULL;

-- Payment attempts neither paid nor dead, oldest first.
CREATE INDEX payment_attempts_open_idx ON payment_attempts (id)
    WHERE status IN ('pending', 'in_flight', 'failed');
