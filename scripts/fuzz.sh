#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of sunusav-core (cargo-fuzz / libFuzzer).
#
#   scripts/fuzz.sh [target...]        # default: every target in sunusav-core/fuzz
#
# Targets: verify_hex, verify_standard, event_parse, idempotency_key
# (sunusav-core/fuzz/fuzz_targets/*.rs say what each one checks).
#
# Environment:
#   FUZZ_SECONDS=20      time per target (libFuzzer -max_total_time)
#   FUZZ_RSS_MB=2048     libFuzzer -rss_limit_mb
#   FUZZ_TIMEOUT=10      libFuzzer -timeout: seconds for one input
#   FUZZ_SANITIZER=none  none | address (ASan: ~2-3x slower; sunusav-core itself
#                        forbids unsafe code, so panics are what we hunt)
#   FUZZ_MERGE=1         merge the inputs that add coverage back into the
#                        committed corpus (sunusav-core/fuzz/corpus/<target>)
#   FUZZ_CMIN=1          do not fuzz: minimise the committed corpus of each target
#                        in place (`cargo fuzz cmin`: the smallest set of inputs
#                        with the same coverage), then print its size. Run it
#                        after a FUZZ_MERGE=1 run, before committing the corpus.
#                        FUZZ_ARGS go to the merge too: "-use_counters=0" keeps
#                        one input per new edge only (a smaller corpus, but it
#                        drops the inputs that only reach new hit counts).
#   FUZZ_ARGS="..."      extra libFuzzer flags (e.g. "-runs=1000000")
#
# The committed corpus is also replayed by `cargo test` (sunusav-core's
# tests/fuzz_corpus.rs runs every input through the same checks as the target,
# fuzz/checks/<target>.rs), so keep it minimised and small.
#
# The committed corpus seeds each run; the run itself works on a temp copy, so
# the repository is not modified (unless FUZZ_MERGE=1). Crashing inputs are
# written to sunusav-core/fuzz/artifacts/<target>/ (gitignored). The script
# exits non-zero as soon as a target crashes, and prints libFuzzer's final
# execution count of every target.
#
# Toolchain: only a stable Rust is available, so the nightly-only flags that
# cargo-fuzz passes (-Zsanitizer, -Cpasses=sancov-module, ...) are unlocked with
# RUSTC_BOOTSTRAP=1. The fuzz crate has its own target dir so that it never
# holds the workspace's build lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/sunusav-core/fuzz"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
SANITIZER="${FUZZ_SANITIZER:-none}"
EXTRA_ARGS="${FUZZ_ARGS:-}"

if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
    export CARGO_TERM_COLOR=never
fi
# cargo may live in ~/.cargo/bin without being on PATH (e.g. root in CI).
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==== installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$FUZZ_DIR/target"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cd "$ROOT/sunusav-core" && cargo fuzz list --fuzz-dir "$FUZZ_DIR")
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "error: no fuzz target" >&2; exit 1; }

# -a: debug assertions (overflow checks) on; release optimisations (cargo-fuzz default).
build_flags=(-a -s "$SANITIZER" --fuzz-dir "$FUZZ_DIR")

echo "==== building fuzz targets (sanitizer: $SANITIZER)"
(cd "$ROOT/sunusav-core" && cargo fuzz build "${build_flags[@]}")

corpus_size() { # files and bytes of a corpus dir
    printf '%s files, %s bytes' "$(find "$1" -type f | wc -l)" "$(find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')"
}

if [[ "${FUZZ_CMIN:-}" == 1 ]]; then
    for target in "${targets[@]}"; do
        corpus="$FUZZ_DIR/corpus/$target"
        [[ -d "$corpus" ]] || { echo "error: no corpus for $target ($corpus)" >&2; exit 1; }
        echo "==== minimising the corpus of $target ($(corpus_size "$corpus"))"
        log="$(mktemp "${TMPDIR:-/tmp}/sunusav-cmin.XXXXXX")"
        # cargo fuzz cmin merges the corpus into an empty temp dir (libFuzzer
        # -merge=1) and puts the result in its place; it keeps the old corpus
        # when the merge fails, but says so only on its output.
        # shellcheck disable=SC2086 # word splitting of the extra flags is wanted
        (cd "$ROOT/sunusav-core" && cargo fuzz cmin "${build_flags[@]}" "$target" "$corpus" -- "-rss_limit_mb=$RSS_MB" $EXTRA_ARGS) \
            >"$log" 2>&1 || { tail -n 40 "$log"; rm -f "$log"; exit 1; }
        if grep -q 'Failed to minimize corpus' "$log"; then
            tail -n 40 "$log"; rm -f "$log"; exit 1
        fi
        rm -f "$log"
        echo "     now $(corpus_size "$corpus")"
    done
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/sunusav-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

summary=()
status=0
for target in "${targets[@]}"; do
    echo "==== fuzzing $target for ${SECONDS_PER_TARGET}s"
    corpus="$work/corpus-$target"
    mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$target"
    if [[ -d "$FUZZ_DIR/corpus/$target" ]]; then
        cp -R "$FUZZ_DIR/corpus/$target/." "$corpus/"
    fi
    lf_args=(
        "-max_total_time=$SECONDS_PER_TARGET"
        "-rss_limit_mb=$RSS_MB"
        "-timeout=$TIMEOUT"
        "-print_final_stats=1"
        "-artifact_prefix=$FUZZ_DIR/artifacts/$target/"
    )
    if [[ -f "$FUZZ_DIR/dicts/$target.dict" ]]; then
        lf_args+=("-dict=$FUZZ_DIR/dicts/$target.dict")
    fi
    # shellcheck disable=SC2206 # word splitting of the extra flags is wanted
    lf_args+=($EXTRA_ARGS)
    log="$work/$target.log"
    rc=0
    # One fuzzing process (no -jobs/-workers: libFuzzer's default runs in-process).
    (cd "$ROOT/sunusav-core" && cargo fuzz run "${build_flags[@]}" "$target" "$corpus" -- "${lf_args[@]}") \
        >"$log" 2>&1 || rc=$?
    done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)"
    if [[ $rc -ne 0 ]]; then
        echo "!!!! $target FAILED (exit $rc); end of its log:"
        tail -n 60 "$log"
        summary+=("$target: CRASH (exit $rc), artifacts in $FUZZ_DIR/artifacts/$target/")
        status=1
        break
    fi
    grep -E '^(INFO: seed corpus|#[0-9]+\s+(INITED|DONE))|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' "$log" || true
    echo "$done_line"
    summary+=("$target: ${done_line:-no final stats line}")
    if [[ "${FUZZ_MERGE:-}" == 1 ]]; then
        echo "==== merging new coverage of $target into the committed corpus"
        mkdir -p "$FUZZ_DIR/corpus/$target"
        (cd "$ROOT/sunusav-core" && cargo fuzz run "${build_flags[@]}" "$target" \
            "$FUZZ_DIR/corpus/$target" "$corpus" -- -merge=1 "-rss_limit_mb=$RSS_MB") >"$work/$target.merge.log" 2>&1 \
            || { echo "merge failed:"; tail -n 20 "$work/$target.merge.log"; status=1; }
        grep -E 'MERGE-OUTER: [0-9]+ new files' "$work/$target.merge.log" || true
    fi
done

echo
echo "==== fuzzing summary"
printf '%s\n' "${summary[@]}"
exit "$status"
