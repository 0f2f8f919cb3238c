-- Benchmark fixture, shared by bench/postgres/settle.pgbench and the Rust pg-bench.
-- Run in a DEDICATED, migrated database: bench_setup() truncates the store.
--
-- bench_setup(n_groups, n_members): n_groups active groups of n_members, one
-- cycle-1 invoice for every member but the last (so no cycle completes and
-- every transaction is the same "record a contribution" path), and
-- bench_slots: the invoices' payment hashes in random order, handed out by
-- bench_seq. Returns the number of slots.

CREATE OR REPLACE FUNCTION bench_setup(n_groups integer, n_members integer) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE ledger_entries, contributions, invoices, payment_attempts, outbox, webhook_events, group_members,
        tontine_groups;
    DROP TABLE IF EXISTS bench_slots;
    CREATE TABLE bench_slots (id bigint PRIMARY KEY, payment_hash bytea NOT NULL);
    DROP SEQUENCE IF EXISTS bench_seq;
    CREATE SEQUENCE bench_seq;

    INSERT INTO tontine_groups (id, contribution_msat, fee_bps, status, current_cycle, cycle_status)
    SELECT gen_random_uuid(), 10000, 100, 'active', 1, 'collecting' FROM generate_series(1, n_groups);
    INSERT INTO group_members (group_id, position, member_id)
    SELECT g.id, p, gen_random_uuid() FROM tontine_groups g CROSS JOIN generate_series(1, n_members) AS p;
    INSERT INTO invoices (payment_hash, group_id, cycle, member_id, amount_msat, bolt11, expires_at_ms)
    SELECT sha256(convert_to(m.group_id::text || ':' || m.member_id::text, 'UTF8')), m.group_id, 1, m.member_id,
           10000, 'lnbcrt-bench', floor(extract(epoch FROM now() + interval '24 hours') * 1000)::bigint
    FROM group_members m WHERE m.position < n_members;
    INSERT INTO bench_slots (id, payment_hash)
    SELECT row_number() OVER (ORDER BY random()), payment_hash FROM invoices;
    ANALYZE;
    RETURN (SELECT count(*) FROM bench_slots);
END
$$;

-- The group's advisory lock key, as sunusav_core::LockKey::group computes it:
-- the first 8 bytes of SHA-256("sunusav:group:" || uuid), big-endian, signed.
CREATE OR REPLACE FUNCTION bench_lock_key(gid uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || left(encode(sha256(convert_to('sunusav:group:' || gid::text, 'UTF8')), 'hex'), 16))::bit(64)::bigint
$$;
