-- Payout attempts (one per idempotency key), the transactional outbox and
-- verified webhook deliveries.

CREATE TABLE payment_attempts (
    id               bigserial   NOT NULL,
    idempotency_key  text        NOT NULL,
    group_id         uuid        NOT NULL,
    cycle            integer     NOT NULL,
    beneficiary_id   uuid        NOT NULL,
    amount_msat      bigint      NOT NULL,
    fee_msat         bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    attempt_count    integer     NOT NULL DEFAULT 0,
    last_error       text,
    payment_hash     bytea,
    preimage         text,
    routing_fee_msat bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_attempts_pkey PRIMARY KEY (id),
    CONSTRAINT payment_attempts_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT payment_attempts_beneficiary_fkey FOREIGN KEY (group_id, beneficiary_id)
        REFERENCES group_members (group_id, member_id) ON DELETE CASCADE,
    CONSTRAINT payment_attempts_key_length CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    CONSTRAINT payment_attempts_cycle_positive CHECK (cycle >= 1),
    CONSTRAINT payment_attempts_amount_positive CHECK (amount_msat > 0),
    CONSTRAINT payment_attempts_fee_nonnegative CHECK (fee_msat >= 0),
    CONSTRAINT payment_attempts_status_valid
        CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'dead')),
    CONSTRAINT payment_attempts_count_nonnegative CHECK (attempt_count >= 0),
    CONSTRAINT payment_attempts_payment_hash_length
        CHECK (payment_hash IS NULL OR octet_length(payment_hash) = 32),
    CONSTRAINT payment_attempts_routing_fee_nonnegative
        CHECK (routing_fee_msat IS NULL OR routing_fee_msat >= 0)
);
CREATE INDEX payment_attempts_group_cycle_idx ON payment_attempts (group_id, cycle);

CREATE TABLE outbox (
    id         bigserial   NOT NULL,
    queue      text        NOT NULL,
    job_id     text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_queue_nonempty CHECK (queue <> ''),
    CONSTRAINT outbox_job_id_length CHECK (length(job_id) BETWEEN 1 AND 255)
);
-- The relay's scan: unsent rows, oldest first.
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE webhook_events (
    id           bigserial   NOT NULL,
    event_key    text        NOT NULL,
    raw_body     bytea       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    outcome      text,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_events_event_key_key UNIQUE (event_key),
    CONSTRAINT webhook_events_key_length CHECK (length(event_key) BETWEEN 1 AND 255),
    CONSTRAINT webhook_events_outcome_valid
        CHECK (outcome IS NULL OR length(outcome) BETWEEN 1 AND 64),
    CONSTRAINT webhook_events_processed_consistent
        CHECK ((outcome IS NULL) = (processed_at IS NULL))
);
