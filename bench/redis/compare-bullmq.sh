#!/usr/bin/env bash
# Side-by-side: the BullMQ anchor (shared/anchors/bullmq) and sunusav-redis's
# queue-bench on ONE throwaway redis-server, alternating BullMQ / ours ROUNDS
# times, then a table of medians with ours/BullMQ ratios (bench/redis/compare.mjs).
#
# Env: ROUNDS (3), JOBS (20000), PORT (first free from 6391), ANCHOR
#      (default <repo>/../shared/anchors/bullmq),
#      RUNTIME (multi|current: queue-bench's tokio runtime), PREFETCH (the
#      worker pool's jobs reserved ahead, a list: "0,128"), WAIT_FOR
#      (pgrep -f pattern of other benchmarks to wait for before each run;
#      default 'wrk|bench-http'; empty disables).
# Output: a temp dir with every JSON/log (printed), and the table on stdout.
# Only the redis-server it starts is stopped (by pid).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"
JOBS="${JOBS:-20000}"
RUNTIME="${RUNTIME:-multi}"
PREFETCH="${PREFETCH:-0,128}"
WAIT_FOR="${WAIT_FOR-wrk|bench-http}"
ANCHOR="${ANCHOR:-}"
if [[ -z "$ANCHOR" ]]; then
  ANCHOR="$repo/../shared/anchors/bullmq"
fi
[[ -f "$ANCHOR/bench.mjs" ]] || { echo "BullMQ anchor not found (set ANCHOR)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sunusav-vs-bullmq.XXXXXX")"
echo "work dir: $work" >&2
cp -r "$ANCHOR" "$work/bullmq"
(cd "$work/bullmq" && npm ci --no-audit --no-fund >"$work/npm-ci.log" 2>&1) || { cat "$work/npm-ci.log" >&2; exit 1; }
(cd "$repo" && cargo build --release -q -p sunusav-bench --bin queue-bench)
bench="$repo/target/release/queue-bench"

port="${PORT:-6391}"
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$work" --logfile "$work/redis.log" </dev/null >/dev/null 2>&1 &
redis_pid=$!
stop() { kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null; echo "stopped redis-server pid $redis_pid" >&2; }
trap stop EXIT
for _ in $(seq 1 50); do
  redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
echo "redis-server $(redis-server --version | awk '{print $3}') pid $redis_pid on 127.0.0.1:$port" >&2

quiet() {
  [[ -z "$WAIT_FOR" ]] && return 0
  while pgrep -f "$WAIT_FOR" >/dev/null; do
    echo "$(date -u +%T) waiting for other benchmarks ($WAIT_FOR) to finish…" >&2
    sleep 30
  done
}

b=() o=()
for r in $(seq 1 "$ROUNDS"); do
  quiet
  echo "== round $r: BullMQ (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  (cd "$work/bullmq" && node bench.mjs --port "$port" --runs 1 --jobs "$JOBS" --out "$work/bullmq-$r.json") \
    >"$work/bullmq-$r.log" 2>&1
  grep '^run ' "$work/bullmq-$r.log" >&2 || true
  b+=("$work/bullmq-$r.json")
  quiet
  echo "== round $r: sunusav-redis (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  REDIS_URL="redis://127.0.0.1:$port" JOBS="$JOBS" RUNS=1 RUNTIME="$RUNTIME" PREFETCH="$PREFETCH" OUT="$work/ours-$r.json" \
    "$bench" | tee "$work/ours-$r.log" >&2
  o+=("$work/ours-$r.json")
done
echo
echo "$(date -u +'%Y-%m-%d %H:%M UTC'), $ROUNDS alternating rounds, $JOBS jobs, Redis $(redis-server --version | awk '{print $3}'), $(nproc) cores, RUNTIME=$RUNTIME"
node "$here/compare.mjs" --bullmq "${b[@]}" --ours "${o[@]}"
