#!/usr/bin/env bash
# Full test run: formatting, clippy, and the whole test suite against real
# PostgreSQL / Redis / Redis Cluster instances started just for this run.
#
#   scripts/test.sh [extra cargo test args...]
#
# Missing packages are installed with apt-get (needs root or sudo). Services
# run on free loopback ports in a temp dir and are stopped on exit; see
# scripts/services.sh (which can also be used on its own).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

section() { printf '\n==== %s ====\n' "$*"; }

if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
    export CARGO_TERM_COLOR=never
fi
# cargo may live in ~/.cargo/bin without being on PATH (e.g. root in CI).
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found" >&2; exit 1; }

# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

section "Installing prerequisites"
services_install
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
        rustup component add rustfmt clippy || echo "warning: rustup component add failed" >&2
    fi
fi
cargo fmt --version >/dev/null 2>&1 || { echo "error: cargo fmt (rustfmt) is not available" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "error: cargo clippy is not available" >&2; exit 1; }
cargo --version
cargo fmt --version
cargo clippy --version

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "Libraries read no environment variables (only examples, tests and benches do)"
if grep -rnE --include='*.rs' 'env::var(_os)?\b' sunusav-core/src sunusav-postgres/src sunusav-redis/src sunusav-axum/src sunusav-lnd/src |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then
    echo "error: a library reads the environment (above); take the value as an argument" >&2
    exit 1
fi

section "No unused dependencies (rustc's unused_crate_dependencies; scripts/unused-deps.sh)"
bash "$ROOT/scripts/unused-deps.sh"

section "Starting services (PostgreSQL, Redis, Redis Cluster, and a PostgreSQL and a Redis over TLS)"
services_start
services_print_env

section "cargo clippy --locked --workspace --all-targets -- -D warnings"
services_exec cargo clippy --locked --workspace --all-targets -- -D warnings

section "cargo doc --locked --no-deps --workspace --all-features (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace --all-features

section "Monitoring assets: alert rules, their tests, dashboard queries (scripts/promtool.sh)"
bash "$ROOT/scripts/promtool.sh"

section "cargo test --locked --workspace $*"
services_exec cargo test --locked --workspace "$@"

section "All checks passed"
