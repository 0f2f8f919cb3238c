#!/usr/bin/env bash
# Checks the monitoring assets in ops/ with promtool (Debian's `prometheus`
# package; scripts/services.sh installs it):
#   * the alert rules parse (`promtool check rules`),
#   * their unit tests pass (`promtool test rules`),
#   * every query of the Grafana dashboard parses as PromQL (each becomes a
#     recording rule, Grafana's variables replaced, and is checked).
# That the series they read exist is a Rust test
# (sunusav-axum/tests/ops.rs: the_ops_assets_read_only_series_the_server_exposes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v promtool >/dev/null 2>&1 || { echo "error: promtool not found (apt-get install prometheus)" >&2; exit 1; }

promtool check rules "$ROOT/ops/prometheus/sunusav.rules.yml"
(cd "$ROOT/ops/prometheus" && promtool test rules sunusav.rules.test.yml)

work="$(mktemp -d "${TMPDIR:-/tmp}/sunusav-promtool.XXXXXX")"
trap 'rm -rf "$work"' EXIT
python3 - "$ROOT/ops/grafana/sunusav.json" >"$work/dashboard.rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
        walk(p.get("panels", []))
walk(dash["panels"])
if not exprs:
    sys.exit("the dashboard has no queries")
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    e = e.replace("$__rate_interval", "5m").replace("$instance", ".*")
    print(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}")
PY
echo "dashboard queries:"
promtool check rules "$work/dashboard.rules.yml"
