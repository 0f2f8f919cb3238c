-- Recorded deliveries still without an outcome, oldest first: the sweep that
-- queues again those whose job a queue lost reads them by this index, which
-- only holds the few rows not processed yet.
CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (id) WHERE outcome IS NULL;
