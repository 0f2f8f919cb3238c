#!/usr/bin/env bash
# HTTP benchmark: sunusav-server vs the original Express + BullMQ stack
# (shared/anchors/express-original), measured in the SAME run, back to back.
#
# Targets:
#   anchor    node server.js (Express 5 + BullMQ 6) on Redis
#   embedded  target/release/sunusav-server, embedded default (in-memory)
#   pg        target/release/sunusav-server on PostgreSQL + Redis
# Scenarios per target and round (wrk -t2 --latency, anchor's Lua scripts):
#   valid signed webhooks (distinct payment hashes) at 50 and 10 connections,
#   forged signature at 50, GET /health at 50; plus the sustained rate
#   (accepted jobs / time until the last one is processed) of each valid run,
#   and each server's peak RSS (VmHWM).
#
# Usage: bench/http/bench-http.sh
# Environment knobs:
#   DURATION=10        seconds per wrk run
#   RUNS=3             rounds (medians are reported)
#   WARMUP=3           seconds of unrecorded warm-up per scenario and target
#   THREADS=2          wrk threads
#   TARGETS=anchor,embedded,pg   (also: embedded-quiet = embedded with RUST_LOG=error)
#   WORKER_CONCURRENCY=5   webhook workers (both stacks; the anchor's default)
#   PAIRS=             signed bodies per valid run (default 60000 × DURATION)
#   OUT=               results dir (default target/bench-http/<UTC stamp>)
#   ANCHOR_SRC=        anchor source (default <repo>/../shared/anchors/express-original)
#   SKIP_BUILD=1       do not run cargo build
# Results: $OUT/summary.md (table + ratios), results.json, wrk/*.txt, *.log.
#
# Needs root or sudo only to apt-get install wrk / postgres / redis when missing.
# Every process it starts is stopped by pid; nothing else is touched.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf '[bench-http] %s\n' "$*" >&2; }

: "${DURATION:=10}" "${RUNS:=3}" "${WARMUP:=3}" "${THREADS:=2}"
: "${TARGETS:=anchor,embedded,pg}" "${WORKER_CONCURRENCY:=5}" "${PAIRS:=0}"
: "${ANCHOR_SRC:=$ROOT/../shared/anchors/express-original}"
: "${OUT:=$ROOT/target/bench-http/$(date -u +%Y%m%dT%H%M%SZ)}"

# ---- tools
apt_install() {
    local -a sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 \
        -o DPkg::Lock::Timeout=600 update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 \
        -o DPkg::Lock::Timeout=600 install -qq --no-install-recommends "$@"
}
command -v wrk >/dev/null 2>&1 || { log "installing wrk"; apt_install wrk; }
command -v psql >/dev/null 2>&1 || { log "installing postgresql-client"; apt_install postgresql-client; }
for t in node npm python3; do
    command -v "$t" >/dev/null 2>&1 || { log "ERROR: $t is required"; exit 1; }
done
scripts/services.sh install

# ---- our server (release build)
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --release -p sunusav-examples --bins"
    cargo build --release -q -p sunusav-examples --bins
fi
SERVER_BIN="$ROOT/target/release/sunusav-server"
[[ -x "$SERVER_BIN" ]] || { log "ERROR: $SERVER_BIN missing"; exit 1; }

# ---- the anchor: copied to a temp dir (shared/ is read-only in CI), npm ci there
[[ -f "$ANCHOR_SRC/server.js" ]] || { log "ERROR: anchor not found at $ANCHOR_SRC (set ANCHOR_SRC)"; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sunusav-bench-http.XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT
cp -r "$ANCHOR_SRC" "$WORK/anchor"
chmod -R u+w "$WORK/anchor"
log "npm ci (anchor) in $WORK/anchor"
(cd "$WORK/anchor" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

mkdir -p "$OUT"
log "results in $OUT"

# ---- PostgreSQL + Redis on loopback (scripts/services.sh), then the runner.
# services.sh exports DATABASE_URL / REDIS_URL (and a Redis Cluster the runner
# ignores); the runner strips them from the env of the embedded target and of the anchor.
scripts/services.sh run python3 "$ROOT/bench/http/http_bench.py" \
    --duration "$DURATION" --runs "$RUNS" --warmup "$WARMUP" --threads "$THREADS" \
    --targets "$TARGETS" --worker-concurrency "$WORKER_CONCURRENCY" --pairs "$PAIRS" \
    --anchor-dir "$WORK/anchor" --server-bin "$SERVER_BIN" --out "$OUT"
log "summary: $OUT/summary.md"
