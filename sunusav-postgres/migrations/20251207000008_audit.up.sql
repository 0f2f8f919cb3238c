-- The audit log: every operator action (a queue move, a payout retry, a
-- delivery replay, a balance release), who took it and what came of it.
-- Appended only; read newest first by id.

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY,
    at_ms   bigint NOT NULL,
    role    text   NOT NULL,
    action  text   NOT NULL,
    target  text   NOT NULL,
    outcome text   NOT NULL,
    detail  text,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id),
    CONSTRAINT audit_log_at_ms_nonnegative CHECK (at_ms >= 0),
    CONSTRAINT audit_log_role_valid CHECK (role IN ('admin', 'operator')),
    CONSTRAINT audit_log_outcome_valid CHECK (outcome IN ('succeeded', 'failed', 'refused')),
    CONSTRAINT audit_log_action_length CHECK (length(action) BETWEEN 1 AND 64),
    CONSTRAINT audit_log_target_length CHECK (octet_length(target) <= 512),
    CONSTRAINT audit_log_detail_length CHECK (octet_length(detail) <= 512)
);
