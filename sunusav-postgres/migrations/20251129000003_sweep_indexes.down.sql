DROP INDEX IF EXISTS payment_attempts_open_idx;
DROP INDEX IF EXISTS webhook_events_unprocessed_idx;
