DROP INDEX IF EXISTS webhook_events_unprocessed_idx;
