#!/usr/bin/env bash
# Settles contributions with hand-written SQL under pgbench (settle.pgbench) at
# concurrency 1, 16 and 64, then through the adapter (the Rust pg-bench), and
# prints both rates and their ratio.
#
# Run with:
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/postgres/run.sh
# or, with throwaway services:
#   scripts/services.sh run bench/postgres/run.sh
#
# DATABASE_URL names a superuser connection; a dedicated database is created
# for pgbench (and another by pg-bench) and dropped at the end.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
: "${DATABASE_URL:?DATABASE_URL must name a superuser connection}"
LEVELS="${BENCH_LEVELS:-1,16,64}"
TOTAL="${BENCH_TOTAL:-9600}"
N_GROUPS="${BENCH_GROUPS:-200}"
MEMBERS="${BENCH_MEMBERS:-50}"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DB="sunusav_pgbench_$$_$RANDOM"
URL="$(db_url "$DB")"
psql_admin() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q "$@"; }
psql_db() { psql "$URL" -v ON_ERROR_STOP=1 -q "$@"; }
cleanup() { psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT

psql_admin -c "CREATE DATABASE $DB"
for f in "$ROOT"/sunusav-postgres/migrations/*.up.sql; do psql_db -f "$f"; done
psql_db -f "$HERE/setup.sql" 2>/dev/null

declare -A SQL_RATE
IFS=',' read -r -a levels <<<"$LEVELS"
for c in "${levels[@]}"; do
    psql_db -t -c "SELECT bench_setup($N_GROUPS, $MEMBERS)" >/dev/null 2>&1
    threads=$((c < 2 ? 1 : 2))
    out="$(PGOPTIONS='-c lock_timeout=10s' "$PGBIN/pgbench" -n -M prepared -f "$HERE/settle.pgbench" \
        -c "$c" -j "$threads" -t $((TOTAL / c)) "$URL" 2>&1)" || { echo "$out" >&2; exit 1; }
    rate="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")"
    count="$(psql_db -t -A -c 'SELECT count(*) FROM contributions')"
    [[ "${failed:-0}" == 0 && "$count" == "$TOTAL" ]] ||
        { echo "pgbench c=$c: $failed failed, $count of $TOTAL recorded" >&2; exit 1; }
    SQL_RATE[$c]="$rate"
    echo "pgbench  concurrency=$c: $rate contributions/s"
done

cd "$ROOT"
RUST_OUT="$(BENCH_LEVELS="$LEVELS" BENCH_TOTAL="$TOTAL" BENCH_GROUPS="$N_GROUPS" BENCH_MEMBERS="$MEMBERS" \
    cargo run --quiet --release -p sunusav-bench --bin pg-bench)"
echo "$RUST_OUT"

echo
printf '%-12s %14s %14s %8s\n' concurrency "raw SQL /s" "adapter /s" ratio
for c in "${levels[@]}"; do
    ours="$(sed -n "s/^pg-bench concurrency=$c: .* = \([0-9.]*\) contributions\/s/\1/p" <<<"$RUST_OUT")"
    ratio="$(awk -v a="$ours" -v b="${SQL_RATE[$c]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    printf '%-12s %14s %14s %8s\n' "$c" "${SQL_RATE[$c]}" "$ours" "$ratio"
done
