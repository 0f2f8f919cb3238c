#!/usr/bin/env python3
"""Profiling helper for BENCHMARKS.md (HTTP, finding 4): one sunusav-server alone
under one valid-webhook wrk run at c50. It prints the ingest phase and the drain phase
separately (jobs/s and the cores used by the server, postgres and redis).

Run under the services, from the repo root, after a release build:
  scripts/services.sh run python3 bench/http/pg_worker_profile.py
Env: MODE=pg|embedded (default pg), CONC=<webhook workers> (5), DUR=<wrk seconds> (8), CONN=<connections> (50),
     PERF=1 (perf record -g the server for 6 s), QUIET=1 (RUST_LOG=error),
     EXTRA_ENV='K=V ...' (more server environment, e.g. WEBHOOK_LINGER_MS=0).
     BIN=<server binary> (default target/release/sunusav-server).
Output: target/bench-http/profile-<stamp>/ (server log, wrk output, perf data).
"""
import os, sys, time, subprocess, urllib.parse
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import http_bench as hb  # noqa: E402

out = os.path.join(ROOT, "target", "bench-http", "profile-" + time.strftime("%Y%m%dT%H%M%S"))
os.makedirs(out + "/wrk", exist_ok=True)
bin_ = os.environ.get("BIN") or os.path.join(ROOT, "target", "release", "sunusav-server")
conc = int(os.environ.get("CONC", "5"))
db = os.environ["DATABASE_URL"]; stamp = time.strftime("%H%M%S")
mode = os.environ.get("MODE", "pg")
if mode == "pg":
    subprocess.run(["psql", db, "-qc", f"CREATE DATABASE prof_{stamp}"], check=True)
pg_url = urllib.parse.urlunparse(urllib.parse.urlparse(db)._replace(path=f"/prof_{stamp}"))
env = {"DATABASE_URL": pg_url, "REDIS_URL": os.environ["REDIS_URL"], "QUEUE_PREFIX": "prof" + stamp} if mode == "pg" else {}
if os.environ.get("QUIET"): env["RUST_LOG"] = "error"
for kv in os.environ.get("EXTRA_ENV", "").split():  # more server settings, K=V K=V
    k, v = kv.split("=", 1); env[k] = v
t = hb.Ours(out, f"{mode}-c{conc}", bin_, env, conc); t.wait_ready()
redis_port = urllib.parse.urlparse(os.environ["REDIS_URL"]).port
def redis_pid():
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if f"127.0.0.1:{redis_port}" in open(f"/proc/{d}/cmdline").read().replace("\0", " ") or \
                   open(f"/proc/{d}/comm").read().startswith("redis-server") and f":{redis_port}" in open(f"/proc/{d}/cmdline").read():
                    return d
            except OSError: pass
rp = redis_pid()
def snap():
    return dict(srv=hb.proc_ticks(t.pid), pg=hb.comm_ticks(("postgres",)), redis=hb.proc_ticks(rp), busy=hb.machine_busy_ticks(), t=time.time())
def diff(a, b):
    w = b["t"] - a["t"]
    return {k: round(v / hb.CLK_TCK / w, 2) for k, v in dict(srv=b["srv"]-a["srv"], pg=hb.ticks_delta(a["pg"], b["pg"]), redis=b["redis"]-a["redis"], busy=b["busy"]-a["busy"]).items()}
pairs = out + "/pairs.tsv"; hb.write_pairs(hb.SECRET.encode(), 300000, pairs)
class A: threads = 2
p0 = t.processed()
s = {}
def on_start(): s["a"] = snap()
perf = None
if os.environ.get("PERF"):
    perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", out + f"/perf-{mode}.data", "-p", str(t.pid), "--", "sleep", "6"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
text, _ = hb.run_wrk(A, t.base, "valid", int(os.environ.get("CONN", "50")), int(os.environ.get("DUR", "8")), pairs, out + "/wrk/x.txt", on_start)
s["b"] = snap(); r = hb.parse_wrk(text); ok = r["requests"] - r["non2xx"]
p1 = t.processed()
print("ingest phase:", r["rps"], "req/s p99", r["p99_ms"], "processed during run/s", round((p1 - p0) / (s["b"]["t"] - s["a"]["t"])), "cores", diff(s["a"], s["b"]))
done, p2 = hb.wait_drained(t, p0 + ok, 300); s["c"] = snap()
print("drain phase:", round(s["c"]["t"] - s["b"]["t"], 2), "s, jobs/s", round((p2 - p1) / (s["c"]["t"] - s["b"]["t"])), "cores", diff(s["b"], s["c"]))
print("sustained", round((p2 - p0) / (s["c"]["t"] - s["a"]["t"])))
if perf: perf.wait()
t.stop()
os.remove(pairs)
print("output in", out)
