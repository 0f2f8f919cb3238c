#!/usr/bin/env python3
"""HTTP benchmark runner: the Express + BullMQ anchor vs sunusav-server, same run.

Driven by bench/http/bench-http.sh (which installs wrk, builds the release binary,
prepares the anchor and starts PostgreSQL + Redis through scripts/services.sh).
Standard library only. Everything on 127.0.0.1.

Targets (all started at the beginning and kept up for the whole session, so
VmHWM is the peak over the session, warm-up included, like the anchor's runner):
  anchor    node server.js (NODE_ENV=production) on the services' Redis
  embedded  sunusav-server with no DATABASE_URL / Redis env: in-memory store + queue
  pg        sunusav-server on PostgreSQL (own fresh database) + Redis (own QUEUE_PREFIX)

Each round runs every scenario on every target back to back (target order
rotates per round), so machine noise hits all targets alike:
  valid-c50   signed webhooks, distinct payment hashes (fresh pairs file per run)
  valid-c10   same at 10 connections
  forged-c50  same bodies, signature sha256=<64 zeros> (401 path, HMAC still computed)
  health-c50  GET /health
wrk -t<THREADS> -c<conns> -d<DURATION>s --latency, with the anchor's Lua scripts.

After a valid run the runner waits until the queue is drained (nothing waiting
or active, processed count reached the accepted count) and reports the
sustained rate = jobs processed during the run / (wrk start -> last job processed).
"""
import argparse
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_pairs import write_pairs  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SECRET = "bench-secret-not-for-production"  # same as the anchor's runner
STRAY_ENV = ("DATABASE_URL", "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
             "REDIS_CLUSTER_NODES", "QUEUE_PREFIX", "RUST_LOG", "PORT", "BIND_ADDR")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ------------------------------------------------------------------ /proc

def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


def machine_busy_ticks():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return sum(v[:8]) - v[3] - v[4]


def comm_ticks(names):
    """{pid: CPU ticks} of every process whose comm starts with one of names."""
    total = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(names):
            total[d] = proc_ticks(d)
    return total


def ticks_delta(before, after):
    """CPU ticks used between two comm_ticks snapshots (short-lived processes
    that exited in between are missed; new ones count from zero)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items())


# ------------------------------------------------------------------ http / redis

def http(method, url, body=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Redis:
    """Minimal RESP client (one persistent socket) for the anchor's queue counts."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        self.sock.sendall(out)
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b":":
            return int(rest)
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            val, self.buf = self.buf[:n], self.buf[n + 2:]
            return val.decode()
        raise RuntimeError(f"unexpected reply {line!r}")


# ------------------------------------------------------------------ targets

class Target:
    name = "?"
    pid = None

    def __init__(self, out):
        self.out = out
        self.logpath = os.path.join(out, f"{self.name}.log")

    def spawn(self, cmd, env, cwd=None):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_ready(self, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.tail()}")
            if self.base is None:
                self.base = self.find_base()
            if self.base:
                try:
                    if http("GET", self.base + "/health", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; log:\n{self.tail()}")

    def find_base(self):
        return None

    def tail(self, n=40):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def log_bytes(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def stop(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"{self.name} pid {self.pid} ignored SIGTERM for 15 s; SIGKILL")
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()


class Anchor(Target):
    name = "anchor"

    def __init__(self, out, anchor_dir, redis_host, redis_port, port, concurrency):
        super().__init__(out)
        env = {k: v for k, v in os.environ.items() if k not in STRAY_ENV}
        env.update({"NODE_ENV": "production", "PORT": str(port), "REDIS_HOST": redis_host,
                    "REDIS_PORT": str(redis_port), "WEBHOOK_HMAC_SECRET": SECRET,
                    "WEBHOOK_WORKER_CONCURRENCY": str(concurrency)})
        self.base = f"http://127.0.0.1:{port}"
        self.redis = Redis(redis_host, redis_port)
        self.spawn(["node", "server.js"], env, cwd=anchor_dir)

    def processed(self):
        with open(self.logpath, "rb") as f:
            before = f.read().count(b"processed=")
        os.kill(self.pid, signal.SIGUSR2)
        for _ in range(200):
            time.sleep(0.02)
            with open(self.logpath, "rb") as f:
                text = f.read().decode(errors="replace")
            hits = re.findall(r"^processed=(\d+)$", text, re.M)
            if text.count("processed=") > before and hits:
                return int(hits[-1])
        raise RuntimeError("anchor did not answer SIGUSR2")

    def pending(self):
        q = "bull:webhooks:"
        return (self.redis.cmd("LLEN", q + "wait") + self.redis.cmd("LLEN", q + "active")
                + self.redis.cmd("ZCARD", q + "delayed") + self.redis.cmd("ZCARD", q + "prioritized"))

    def failed(self):
        return self.redis.cmd("ZCARD", "bull:webhooks:failed")

    def counts(self):
        """(pending, processed); processed is only fetched when nothing is pending."""
        p = self.pending()
        return p, (self.processed() if p == 0 else None)


class Ours(Target):
    def __init__(self, out, name, binary, extra_env, concurrency):
        self.name = name
        super().__init__(out)
        env = {k: v for k, v in os.environ.items() if k not in STRAY_ENV}
        env.update({"BIND_ADDR": "127.0.0.1:0", "WEBHOOK_HMAC_SECRET": SECRET,
                    "WEBHOOK_WORKER_CONCURRENCY": str(concurrency)})
        env.update(extra_env)
        self.base = None
        self.spawn([binary], env)

    def find_base(self):
        m = re.search(r"listening on (http://[0-9.:]+)", self.tail(200))
        return m.group(1) if m else None

    def workers(self):
        code, body = http("GET", self.base + "/health/workers")
        if code != 200:
            raise RuntimeError(f"/health/workers -> {code}: {body[:300]}")
        return json.loads(body)

    def counts(self):
        w = self.workers()
        q = w["queues"]["webhooks"]
        processed = sum(p["processed"] for p in w["workers"] if p["queue"] == "webhooks")
        return q["waiting"] + q["active"], processed

    def processed(self):
        return self.counts()[1]

    def failed(self):
        w = self.workers()
        return sum(p["failed"] for p in w["workers"] if p["queue"] == "webhooks")


# ------------------------------------------------------------------ wrk

def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v if u == "ms" else v * 1000 if u == "s" else v * 60000


def parse_wrk(text):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)$", text, re.M)
        r[f"p{pct}_ms"] = to_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"bodies: loaded=(\d+) built_requests=(\d+) repeated_bodies=(\d+)", text)
    if m:
        r["bodies_loaded"], r["built_requests"], r["repeated_bodies"] = map(int, m.groups())
    return r


def run_wrk(args, base, kind, conns, duration, pairs, outpath, on_start):
    """Runs wrk; calls on_start() once wrk has loaded its Lua state (it prints
    "Running ..." right before its timer starts; building 600k requests takes
    seconds on a busy machine, and that must not count in any rate).
    Returns (output, wrk CPU seconds since on_start)."""
    cmd = ["wrk", f"-t{args.threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if kind == "health":
        cmd += ["-s", os.path.join(HERE, "health.lua"), base + "/health"]
    else:
        cmd += ["-s", os.path.join(HERE, "webhook.lua"), base + "/webhook/lightning", "--",
                pairs, "valid" if kind == "valid" else "invalid", str(args.threads)]
    with open(outpath, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        p = subprocess.Popen(["stdbuf", "-oL", *cmd], stdout=f, stderr=subprocess.STDOUT)
        wrk_ticks0 = 0
        t0 = time.time()
        while time.time() - t0 < 300 and p.poll() is None:
            with open(outpath) as g:
                if "Running " in g.read():
                    break
            time.sleep(0.005)
        wrk_ticks0 = proc_ticks(p.pid)
        on_start()
        _, status, ru = os.wait4(p.pid, 0)
    with open(outpath) as f:
        text = f.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"wrk failed:\n{text}")
    return text, ru.ru_utime + ru.ru_stime - wrk_ticks0 / CLK_TCK


# ------------------------------------------------------------------ main

SCENARIOS = [("valid", 50), ("valid", 10), ("forged", 50), ("health", 50)]


def smoke(t):
    import hashlib
    import hmac
    body = ('{"payment_hash":"%s","status":"settled","amount_msat":1000000}' % os.urandom(32).hex()).encode()
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    url = t.base + "/webhook/lightning"
    ct = {"Content-Type": "application/json"}
    got = {
        "valid": http("POST", url, body, {**ct, "x-sunu-signature": "sha256=" + sig})[0],
        "forged": http("POST", url, body, {**ct, "x-sunu-signature": "sha256=" + "0" * 64})[0],
        "missing": http("POST", url, body, ct)[0],
        "health": http("GET", t.base + "/health")[0],
    }
    want = {"valid": 202, "forged": 401, "missing": 401, "health": 200}
    if got != want:
        raise RuntimeError(f"{t.name} smoke checks: got {got}, want {want}")
    return got


def wait_drained(t, accepted_before_min, timeout):
    """Waits until nothing is waiting/active and processed >= accepted_before_min.
    Returns (time.time() when seen drained, processed) or (None, processed)."""
    t0 = time.time()
    processed = None
    while time.time() - t0 < timeout:
        pend, processed = t.counts()
        if pend == 0 and processed is not None and processed >= accepted_before_min:
            return time.time(), processed
        time.sleep(0.02)
    return None, processed


def one(args, t, targets, kind, conns, duration, tag, invalid_pairs):
    pairs = None
    if kind == "valid":
        pairs = os.path.join(args.out, "pairs-valid.tsv")
        write_pairs(SECRET.encode(), args.pairs, pairs)
    elif kind == "forged":
        pairs = invalid_pairs
    # settle: previous work of every target drained
    for o in targets:
        wait_drained(o, 0, 120)
    p0 = t.processed()
    f0 = t.failed()
    lb0 = t.log_bytes()
    others = [o.pid for o in targets if o is not t]
    snap = {}

    def on_start():
        snap.update(s0=proc_ticks(t.pid), o0=sum(proc_ticks(p) for p in others),
                    bk0=comm_ticks(("redis-server", "postgres")), b0=machine_busy_ticks(), t_start=time.time())

    text, wrk_cpu = run_wrk(args, t.base, kind, conns, duration, pairs,
                            os.path.join(args.out, "wrk", f"{t.name}-{tag}.txt"), on_start)
    t_wrk = time.time()
    s1, o1, bk1, b1 = (proc_ticks(t.pid), sum(proc_ticks(p) for p in others),
                       comm_ticks(("redis-server", "postgres")), machine_busy_ticks())
    t_start = snap["t_start"]
    wall = t_wrk - t_start
    s0, o0, bk0, b0 = snap["s0"], snap["o0"], snap["bk0"], snap["b0"]
    res = parse_wrk(text)
    res.update({"target": t.name, "scenario": kind, "conns": conns, "tag": tag,
                "wall_s": wall,
                "server_cores": (s1 - s0) / CLK_TCK / wall,
                "idle_targets_cores": (o1 - o0) / CLK_TCK / wall,
                "backing_cores": ticks_delta(bk0, bk1) / CLK_TCK / wall,
                "wrk_cores": wrk_cpu / wall,
                "machine_busy_cores": (b1 - b0) / CLK_TCK / wall})
    res["other_cores"] = max(0.0, res["machine_busy_cores"] - res["server_cores"] - res["idle_targets_cores"]
                             - res["backing_cores"] - res["wrk_cores"])
    res["ok_2xx"] = (res["requests"] or 0) - res["non2xx"]
    if kind == "valid":
        pend_end, _ = t.counts()
        res["backlog_at_wrk_end"] = pend_end
        t_done, p1 = wait_drained(t, p0 + res["ok_2xx"], args.drain_timeout)
        res["processed"] = (p1 - p0) if p1 is not None else None
        res["drained"] = t_done is not None
        if t_done is not None:
            res["drain_s"] = t_done - t_wrk
            res["sustained"] = res["processed"] / (t_done - t_start)
        else:
            res["drain_s"] = None
            res["sustained"] = None
        res["failed_jobs"] = t.failed() - f0
    res["log_bytes"] = t.log_bytes() - lb0
    res["rss_kb"] = status_kb(t.pid, "VmRSS")
    res["hwm_kb"] = status_kb(t.pid, "VmHWM")
    sus = f" sustained {res['sustained']:.0f}/s (drain {res['drain_s']:.2f}s, backlog {res['backlog_at_wrk_end']}, processed {res['processed']}, failed {res['failed_jobs']}, repeats {res.get('repeated_bodies')})" \
        if kind == "valid" and res.get("sustained") else (" NOT DRAINED" if kind == "valid" else "")
    log(f"  {t.name:8} {tag:14} {res['rps'] or 0:9.0f} req/s p50 {res['p50_ms'] or 0:7.2f} ms p99 {res['p99_ms'] or 0:7.2f} ms"
        f" 2xx {res['ok_2xx']} non2xx {res['non2xx']} sockerr {res['socket_errors']}{sus}"
        f" | cores srv {res['server_cores']:.2f} backing {res['backing_cores']:.2f} wrk {res['wrk_cores']:.2f}"
        f" idle-targets {res['idle_targets_cores']:.2f} other {res['other_cores']:.2f}"
        f" | log {res['log_bytes'] / max(1, res['requests'] or 1):.0f} B/req | RSS {res['rss_kb'] / 1024:.1f} MiB")
    return res


def fmt_s(v):
    return "-" if v is None else f"{v:.2f}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(meta, runs, targets):
    names = [t for t in ("anchor", "embedded", "embedded-quiet", "pg") if t in targets]
    ours = [n for n in names if n != "anchor"]
    rows = []  # (label, key, filter, unit, better, target_ratio)
    for kind, c in SCENARIOS:
        label = {"valid": "valid signed", "forged": "forged (401)", "health": "GET /health"}[kind]
        rows.append((f"{label} c{c} req/s", kind, c, "rps", "x", 5.0 if kind == "valid" else None))
        rows.append((f"{label} c{c} p50 ms", kind, c, "p50_ms", "x", None))
        rows.append((f"{label} c{c} p99 ms", kind, c, "p99_ms", "x", 0.1 if kind == "valid" else None))
    rows.insert(6, ("sustained c50 jobs/s (run+drain)", "valid", 50, "sustained", "x", 5.0))
    rows.insert(7, ("sustained c10 jobs/s (run+drain)", "valid", 10, "sustained", "x", None))
    cell = {}
    for n in names:
        for _, kind, c, key, _, _ in rows:
            cell[(n, kind, c, key)] = med([r.get(key) for r in runs if r["target"] == n
                                           and r["scenario"] == kind and r["conns"] == c])
    hdr = "| metric (median of %d) | " % meta["args"]["runs"] + " | ".join(names) + " | " + \
        " | ".join(f"{n}/anchor" for n in ours) + " | target |"
    lines = [hdr, "|" + "---|" * (2 + len(names) + len(ours))]

    def f(v, key):
        if v is None:
            return "-"
        return f"{v:,.0f}" if key in ("rps", "sustained") else f"{v:.2f}"

    def verdict(ratio, tr):
        if tr is None or ratio is None:
            return ""
        ok = ratio >= tr if tr > 1 else ratio <= tr
        return " ✅" if ok else " ❌"

    for label, kind, c, key, _, tr in rows:
        a = cell.get(("anchor", kind, c, key))
        vals = [f(cell[(n, kind, c, key)], key) for n in names]
        ratios = []
        for n in ours:
            v = cell[(n, kind, c, key)]
            r = v / a if (a and v is not None) else None
            ratios.append("-" if r is None else f"{r:.2f}×{verdict(r, tr)}")
        tgt = "" if tr is None else (f"≥{tr:g}×" if tr > 1 else f"≤{tr:g}×")
        lines.append(f"| {label} | " + " | ".join(vals) + " | " + " | ".join(ratios) + f" | {tgt} |")
    hwm = {n: meta["hwm_kb"].get(n) for n in names}
    a = hwm.get("anchor")
    lines.append("| peak RSS MiB (VmHWM, session) | " + " | ".join(
        "-" if hwm[n] is None else f"{hwm[n] / 1024:.1f}" for n in names) + " | " + " | ".join(
        "-" if not (a and hwm[n]) else f"{hwm[n] / a:.2f}×{verdict(hwm[n] / a, 0.2)}" for n in ours) + " | ≤0.2× |")
    lines.append("| server log bytes per valid request | " + " | ".join(
        f"{med([r['log_bytes'] / max(1, r['requests'] or 1) for r in runs if r['target'] == n and r['scenario'] == 'valid']) or 0:.0f}"
        for n in names) + " | " + " | ".join("" for _ in ours) + " | |")
    cores = []
    for n in names:
        for kind, c in SCENARIOS:
            rs = [r for r in runs if r["target"] == n and r["scenario"] == kind and r["conns"] == c]
            if rs:
                cores.append(f"{n} {kind}-c{c}: server {med([r['server_cores'] for r in rs]):.2f}, "
                             f"redis+postgres {med([r['backing_cores'] for r in rs]):.2f}, wrk {med([r['wrk_cores'] for r in rs]):.2f}, "
                             f"idle targets {med([r['idle_targets_cores'] for r in rs]):.2f}, other {med([r['other_cores'] for r in rs]):.2f}")
    val = [r for r in runs if r["scenario"] == "valid"]
    q = [f"{r['target']} {r['tag']}: 2xx {r['ok_2xx']}, processed {r.get('processed')}, backlog at wrk end "
         f"{r.get('backlog_at_wrk_end')}, drain {fmt_s(r.get('drain_s'))} s, "
         f"failed {r.get('failed_jobs')}, repeated bodies {r.get('repeated_bodies')}, socket errors {r['socket_errors']}"
         for r in val]
    bad = [f"{r['target']} {r['tag']}: non-2xx {r['non2xx']}" for r in runs
           if r["scenario"] != "forged" and r["non2xx"]]
    bad += [f"{r['target']} {r['tag']}: only {r['requests'] - r['non2xx']} of {r['requests']} were 401"
            for r in runs if r["scenario"] == "forged" and r["non2xx"] != r["requests"]]
    return "\n".join(lines + [
        "",
        f"Run {meta['started_utc']} – {meta.get('finished_utc')}; wrk -t{meta['args']['threads']} -d{meta['args']['duration']}s --latency; "
        f"{meta['nproc']} cores ({meta['cpu_model']}); load average at start {meta['loadavg_start']}.",
        "",
        "CPU (cores, median):", *[f"- {c}" for c in cores],
        "", "Queue (valid runs):", *[f"- {x}" for x in q],
        "", "Unexpected statuses: " + ("; ".join(bad) if bad else "none"),
    ]) + "\n"


def main():
    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # ignored by bash for background jobs otherwise
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=0, help="signed bodies per valid run (default 60000 × duration)")
    ap.add_argument("--targets", default="anchor,embedded,pg")
    ap.add_argument("--anchor-dir", required=True)
    ap.add_argument("--anchor-port", type=int, default=3091)
    ap.add_argument("--server-bin", required=True)
    ap.add_argument("--worker-concurrency", type=int, default=5)
    ap.add_argument("--drain-timeout", type=int, default=300)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not args.pairs:
        args.pairs = 60000 * args.duration
    os.makedirs(os.path.join(args.out, "wrk"), exist_ok=True)
    targets_wanted = [t.strip() for t in args.targets.split(",") if t.strip()]

    with open("/proc/cpuinfo") as f:
        cpu_model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    meta = {"started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
            "args": vars(args), "nproc": os.cpu_count(), "cpu_model": cpu_model,
            "loadavg_start": open("/proc/loadavg").read().split()[:3], "failures": {}, "hwm_kb": {}}

    redis_url = os.environ.get("REDIS_URL")
    db_url = os.environ.get("DATABASE_URL")
    targets = []
    try:
        if "anchor" in targets_wanted:
            u = urllib.parse.urlparse(redis_url)
            t = Anchor(args.out, args.anchor_dir, u.hostname, u.port or 6379, args.anchor_port, args.worker_concurrency)
            t.wait_ready()
            targets.append(t)
        if "embedded" in targets_wanted:
            t = Ours(args.out, "embedded", args.server_bin, {}, args.worker_concurrency)
            t.wait_ready()
            targets.append(t)
        if "embedded-quiet" in targets_wanted:  # A/B of the per-request logging cost
            t = Ours(args.out, "embedded-quiet", args.server_bin, {"RUST_LOG": "error"}, args.worker_concurrency)
            t.wait_ready()
            targets.append(t)
        if "pg" in targets_wanted:
            stamp = time.strftime("%Y%m%d%H%M%S")
            dbname = f"bench_http_{stamp}"
            try:
                subprocess.run(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {dbname}"],
                               check=True, capture_output=True, text=True)
                u = urllib.parse.urlparse(db_url)
                pg_url = urllib.parse.urlunparse(u._replace(path="/" + dbname))
                t = Ours(args.out, "pg", args.server_bin,
                         {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "QUEUE_PREFIX": f"benchhttp{stamp}"},
                         args.worker_concurrency)
                targets.append(t)
                t.wait_ready()
                smoke(t)
            except Exception as e:  # report and continue with the others
                msg = str(e) if not isinstance(e, subprocess.CalledProcessError) else f"{e}: {e.stderr}"
                log(f"pg target FAILED, continuing without it: {msg}")
                meta["failures"]["pg"] = msg
                if targets and targets[-1].name == "pg":
                    targets.pop().stop()
        for t in targets:
            log(f"{t.name}: pid {t.pid} at {t.base}, smoke {smoke(t)}, RSS {status_kb(t.pid, 'VmRSS') / 1024:.1f} MiB")
            meta.setdefault("rss_start_kb", {})[t.name] = status_kb(t.pid, "VmRSS")

        invalid_pairs = os.path.join(args.out, "pairs-forged.tsv")
        write_pairs(SECRET.encode(), 100000, invalid_pairs)
        runs = []
        if args.warmup > 0:
            log(f"warm-up {args.warmup}s per scenario (not recorded)")
            for t in targets:
                for kind, c in (("valid", 50), ("forged", 50), ("health", 50)):
                    one(args, t, targets, kind, c, args.warmup, f"warmup-{kind}", invalid_pairs)
        for r in range(1, args.runs + 1):
            order = targets[(r - 1) % len(targets):] + targets[:(r - 1) % len(targets)]
            log(f"round {r}/{args.runs}: order {[t.name for t in order]}")
            for kind, c in SCENARIOS:
                for t in order:
                    res = one(args, t, targets, kind, c, args.duration, f"{kind}-c{c}-run{r}", invalid_pairs)
                    res["run"] = r
                    runs.append(res)
                    json.dump({"meta": meta, "runs": runs}, open(os.path.join(args.out, "results.json"), "w"), indent=1)
        for t in targets:
            meta["hwm_kb"][t.name] = status_kb(t.pid, "VmHWM")
            meta.setdefault("rss_end_kb", {})[t.name] = status_kb(t.pid, "VmRSS")
    finally:
        for t in targets:
            t.stop()
            log(f"stopped {t.name} pid {t.pid}")
        for t in targets:  # the per-request logs of sunusav-server reach hundreds of MB
            try:
                if os.path.getsize(t.logpath) > 20 << 20:
                    with open(t.logpath, "rb") as f:
                        lines = f.read().splitlines()
                    meta.setdefault("log_lines", {})[t.name] = len(lines)
                    with open(t.logpath, "wb") as f:
                        f.write(b"\n".join(lines[:100] + [b"... (%d lines cut by http_bench.py) ..." % (len(lines) - 200)]
                                           + lines[-100:]) + b"\n")
            except OSError:
                pass
        for p in ("pairs-valid.tsv", "pairs-forged.tsv"):
            try:
                os.remove(os.path.join(args.out, p))
            except OSError:
                pass
    meta["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    json.dump({"meta": meta, "runs": runs}, open(os.path.join(args.out, "results.json"), "w"), indent=1)
    md = summarize(meta, runs, [t.name for t in targets])
    if meta["failures"]:
        md += "\nTargets that failed: " + "; ".join(f"{k}: {v}" for k, v in meta["failures"].items()) + "\n"
    md += "RSS at start / end (MiB): " + ", ".join(
        f"{n} {meta['rss_start_kb'][n] / 1024:.1f} / {meta['rss_end_kb'][n] / 1024:.1f}" for n in meta.get("rss_end_kb", {})) + "\n"
    open(os.path.join(args.out, "summary.md"), "w").write(md)
    print()
    print(md)


if __name__ == "__main__":
    main()
