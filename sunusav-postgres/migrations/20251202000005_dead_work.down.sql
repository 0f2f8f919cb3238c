-- Back to the schema before generations, digests and retention. What the
-- earlier schema cannot hold is mapped onto it:
-- - a dead delivery becomes one without an outcome (the earlier sweep
--   queues it again);
-- - a body dropped by retention comes back empty (its record and outcome
--   stay; the earlier schema requires a body);
-- - conflicting bodies and generations are dropped.
DROP INDEX IF EXISTS webhook_events_bodies_idx;
DROP INDEX IF EXISTS webhook_events_dead_idx;
DROP INDEX IF EXISTS webhook_events_received_at_brin;
DROP INDEX IF EXISTS webhook_events_payment_hash_idx;
DROP TABLE IF EXISTS webhook_conflicts;

UPDATE webhook_events SET outcome = NULL, processed_at = NULL WHERE outcome = 'dead';
UPDATE webhook_events SET raw_body = ''::bytea WHERE raw_body IS NULL;

ALTER TABLE webhook_events
    DROP CONSTRAINT IF EXISTS webhook_events_conflicts_nonnegative,
    DROP CONSTRAINT IF EXISTS webhook_events_generation_nonnegative,
    DROP CONSTRAINT IF EXISTS webhook_events_payment_hash_length,
    DROP CONSTRAINT IF EXISTS webhook_events_body_digest_length,
    DROP COLUMN IF EXISTS conflicts,
    DROP COLUMN IF EXISTS generation,
    DROP COLUMN IF EXISTS payment_hash,
    DROP COLUMN IF EXISTS body_digest,
    ALTER COLUMN raw_body SET NOT NULL;

ALTER TABLE payment_attempts
    DROP CONSTRAINT IF EXISTS payment_attempts_generation_nonnegative,
    DROP COLUMN IF EXISTS generation;
