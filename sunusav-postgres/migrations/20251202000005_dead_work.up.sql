-- Dead work is recovered from the store, never from queue retention.
--
-- Payment attempts gain a generation: an operator's retry reopens a dead
-- attempt as the next generation, whose queue job has its own id.
--
-- Webhook deliveries gain the digest of their body (a second delivery of a
-- key with another body is a conflict, not a replay), the payment hash their
-- event names (the delivery log filters by it), a generation (a dead
-- delivery reopened by a redelivery or an operator's replay), a count of
-- conflicting bodies, and a body that retention may drop (the record stays).

ALTER TABLE payment_attempts
    ADD COLUMN generation integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT payment_attempts_generation_nonnegative CHECK (generation >= 0);

ALTER TABLE webhook_events
    ALTER COLUMN raw_body DROP NOT NULL,
    ADD COLUMN body_digest  bytea,
    ADD COLUMN payment_hash bytea,
    ADD COLUMN generation   integer NOT NULL DEFAULT 0,
    ADD COLUMN conflicts    integer NOT NULL DEFAULT 0;

-- Existing deliveries: the digest of their body, and the payment hash of
-- their event when the body names one (every recorded body was parsed as an
-- event at ingestion; one that does not match is left without a hash).
UPDATE webhook_events
SET body_digest = sha256(raw_body),
    payment_hash = decode(
        substring(encode(raw_body, 'escape') FROM '"payment_hash"\s*:\s*"([0-9a-fA-F]{64})"'),
        'hex'
    );

ALTER TABLE webhook_events
    ALTER COLUMN body_digest SET NOT NULL,
    ADD CONSTRAINT webhook_events_body_digest_length CHECK (octet_length(body_digest) = 32),
    ADD CONSTRAINT webhook_events_payment_hash_length
        CHECK (payment_hash IS NULL OR octet_length(payment_hash) = 32),
    ADD CONSTRAINT webhook_events_generation_nonnegative CHECK (generation >= 0),
    ADD CONSTRAINT webhook_events_conflicts_nonnegative CHECK (conflicts >= 0);

-- Bodies that reused a recorded key: kept for an operator, never acted on,
-- once per distinct body (`times` counts its deliveries).
CREATE TABLE webhook_conflicts (
    id          bigserial   NOT NULL,
    event_key   text        NOT NULL,
    body_digest bytea       NOT NULL,
    raw_body    bytea,
    times       integer     NOT NULL DEFAULT 1,
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_conflicts_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_conflicts_key_body UNIQUE (event_key, body_digest),
    CONSTRAINT webhook_conflicts_event_fkey FOREIGN KEY (event_key)
        REFERENCES webhook_events (event_key) ON DELETE CASCADE,
    CONSTRAINT webhook_conflicts_body_digest_length CHECK (octet_length(body_digest) = 32),
    CONSTRAINT webhook_conflicts_times_positive CHECK (times >= 1)
);

-- The delivery log by payment hash, for processed deliveries: a row enters it
-- when it gets an outcome (that update already writes new index entries),
-- so the ingest path's inserts never touch it. Deliveries without an outcome
-- are few, and found by the index of unprocessed rows.
CREATE INDEX webhook_events_payment_hash_idx ON webhook_events (payment_hash) WHERE outcome IS NOT NULL;
-- The delivery log by time (a block-range index: cheap to keep up on insert).
CREATE INDEX webhook_events_received_at_brin ON webhook_events USING brin (received_at);
-- Dead deliveries, oldest first (few: each waits for a redelivery or a replay).
CREATE INDEX webhook_events_dead_idx ON webhook_events (id) WHERE outcome = 'dead';
-- Retention: bodies of processed deliveries by when they were processed. A
-- row enters it when it gets a final outcome, and leaves it when its body is
-- dropped: the ingest path's inserts never touch it.
CREATE INDEX webhook_events_bodies_idx ON webhook_events (processed_at)
    WHERE raw_body IS NOT NULL AND outcome IS NOT NULL AND outcome <> 'dead';
