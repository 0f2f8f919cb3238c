#!/usr/bin/env bash
# The floor of the PostgreSQL work per webhook delivery on this machine:
# pgbench alone runs the statements the server runs for a delivery whose
# payment is not ours, with no HTTP, no Redis, no driver and no scheduling of
# ours around them, and prints rows/s and the machine's CPU per row:
#   record:  the ingestion statement (`INSERT … ON CONFLICT (event_key) DO
#            NOTHING` into webhook_events, a 120-byte body with its 32-byte
#            digest and payment hash, computed by the server and here stood
#            in for by the hash's bytes), `rows` per statement;
#   outcome: then the settlement's outcome `UPDATE` of the same rows, as a
#            second statement (the server's is a separate round trip too).
#
# This bounds what the server can reach on PostgreSQL + Redis: each delivery
# costs at least this much CPU, on top of HTTP, the load generator and the
# queue, on the same cores.
#
# Run with throwaway services:
#   scripts/services.sh run bench/postgres/ingest-floor.sh
# Knobs: FLOOR_CASES="rows:clients:record|outcome ..." (default
# "1:10:record 1:50:record 8:2:record 8:2:outcome 25:2:outcome"),
# FLOOR_SECONDS (8). DATABASE_URL names a superuser connection; a dedicated
# database is created and dropped at the end.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIGRATIONS="$(cd "$HERE/../../sunusav-postgres/migrations" && pwd)"
: "${DATABASE_URL:?DATABASE_URL must name a superuser connection}"
CASES="${FLOOR_CASES:-1:10:record 1:50:record 8:2:record 8:2:outcome 25:2:outcome}"
SECONDS_EACH="${FLOOR_SECONDS:-8}"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DB="sunusav_floor_$$_$RANDOM"
URL="$(db_url "$DB")"
SCRIPT="$(mktemp)"
cleanup() {
    rm -f "$SCRIPT"
    psql "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $DB"
for f in "$MIGRATIONS"/*.up.sql; do psql "$URL" -v ON_ERROR_STOP=1 -q -f "$f"; done

# Busy jiffies of the whole machine (all but idle and iowait).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
HZ="$(getconf CLK_TCK)"

printf '%-8s %-10s %-8s %12s %12s %14s\n' work rows/stmt clients rows/s busy-cores "µs CPU/row"
for case in $CASES; do
    IFS=: read -r rows clients kind <<<"$case"
    [[ "$kind" == record || "$kind" == outcome ]] || { echo "bad case $case: the kind is record or outcome" >&2; exit 1; }
    # Distinct keys: client id, a random number and the row's position.
    cat >"$SCRIPT" <<SQL
\set k random(1, 9000000000000000)
INSERT INTO webhook_events (event_key, raw_body, body_digest, payment_hash)
SELECT 'webhook:' || :client_id || ':' || :k || ':' || g,
       convert_to('{"payment_hash":"' || h || '","status":"settled","amount_msat":1000000}', 'UTF8'),
       decode(h, 'hex'), decode(h, 'hex')
FROM (SELECT g, md5(:k::text) || md5(g::text) AS h FROM generate_series(1, $rows) AS g) AS s
ON CONFLICT (event_key) DO NOTHING;
SQL
    if [[ "$kind" == outcome ]]; then
        cat >>"$SCRIPT" <<SQL
UPDATE webhook_events
SET outcome = CASE WHEN outcome IS NULL OR (outcome = 'dead' AND 'unknown_invoice' <> 'dead') THEN 'unknown_invoice' ELSE outcome END,
    processed_at = CASE WHEN outcome IS NULL OR (outcome = 'dead' AND 'unknown_invoice' <> 'dead') THEN now() ELSE processed_at END
WHERE event_key IN (SELECT 'webhook:' || :client_id || ':' || :k || ':' || g FROM generate_series(1, $rows) AS g);
SQL
    fi
    threads=$((clients < 2 ? 1 : 2))
    b0="$(busy_ticks)" t0="$(date +%s.%N)"
    out="$("$PGBIN/pgbench" -n -M prepared -f "$SCRIPT" -c "$clients" -j "$threads" -T "$SECONDS_EACH" "$URL" 2>&1)" ||
        { echo "$out" >&2; exit 1; }
    b1="$(busy_ticks)" t1="$(date +%s.%N)"
    tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")"
    awk -v w="$kind" -v r="$rows" -v c="$clients" -v tps="$tps" -v b="$((b1 - b0))" -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN {
        cores = b / hz / (t1 - t0); rps = tps * r
        printf "%-8s %-10d %-8d %12.0f %12.2f %14.1f\n", w, r, c, rps, cores, cores * 1e6 / rps }'
done
