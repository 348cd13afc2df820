#!/usr/bin/env python3
"""Analytics at scale, in one run, on SQLite and PostgreSQL.

For each backend:
  1. `tollgate demo --events N --days 90` writes N realistic events through the usage writer
     (measures the writer's throughput: events/s);
  2. `tollgate serve` on that store; each dashboard endpoint is called R times with an instance
     admin's token (unfiltered, and filtered to one team); p50/p95/max per endpoint;
  3. HTTP ingest: batches of 1000 events to POST /api/v1/usage/events from 4 threads for a few
     seconds (accepted events/s; the writer's `events_written` counter must catch up);
  4. export: the last 7 days as CSV, streamed (MB/s, rows/s) while the server's VmHWM is read;
  5. the clean-up: `serve` again with events kept a third of the history (30 days of 90) and
     roll-ups two thirds (60); its first pass (at start) is timed from the process's start to each
     step's log line.
Then `tollgate estimate` on a 20 MB text (MB/s, tokens/s), and Python `tiktoken` on the same text
when it can be imported and its vocabulary loaded (it downloads vocabularies on first use, which
this machine cannot do: then the comparison is reported as not possible).

After the writer, the bytes on disk per million events: raw events (table and indexes), roll-ups
(usage_hourly, usage_daily) and summaries (summary_hourly, summary_daily).

Targets (issue 17): dashboard p95 ≤ 20 ms on both backends at 10M events, filtered views (one team,
one key, one model) included; writer ≥ 150k events/s on SQLite and ≥ 100k/s on PostgreSQL.
Everything runs on 127.0.0.1 and stops by itself.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN = os.environ.get("TOLLGATE_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench passphrase nobody guesses"
INGEST_SECRET = "bench-ingest-secret-0123456789"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env, cwd, timeout):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout


def base_env(data_dir, url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update({
        "TOLLGATE_DATA_DIR": data_dir,
        "TOLLGATE_DATABASE_URL": url,
        "TOLLGATE_LOG_LEVEL": "warn",
        "TOLLGATE_ADMIN_EMAIL": ADMIN_EMAIL,
        "TOLLGATE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TOLLGATE_INGEST_SECRET": INGEST_SECRET,
        "TOLLGATE_WRITER__QUEUE_CAPACITY": "262144",
        "TOLLGATE_WRITER__BATCH_SIZE": "5000",
        # Keep all 90 days: otherwise the first clean-up deletes two thirds of the demo data while
        # the endpoints are being timed (a real first start, but not what this measures).
        "TOLLGATE_RETENTION__DAYS": "400",
        "TOLLGATE_RETENTION__ROLLUP_DAYS": "400",
    })
    return env


def request(url, token, data=None, timeout=120):
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * len(values) + 0.5)) - 1))]


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def disk_bytes(backend, url, tmp):
    """Bytes of the usage tables with their indexes, by kind: raw events, roll-ups, summaries."""
    kinds = {"usage_events": "events", "usage_hourly": "rollups", "usage_daily": "rollups",
             "summary_hourly": "summaries", "summary_daily": "summaries"}
    out = {"events": 0, "rollups": 0, "summaries": 0}
    if backend == "sqlite":
        import sqlite3  # noqa: PLC0415
        db = sqlite3.connect(url.removeprefix("sqlite://"))
        try:
            owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
            for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                kind = kinds.get(owner.get(name, name))
                if kind:
                    out[kind] += size
        finally:
            db.close()
    else:
        for table, kind in kinds.items():
            # A partitioned table's size is its partitions' (and their indexes').
            # (to_regclass: NULL where a build has no such table.)
            sql = (f"SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.oid = to_regclass('{table}') "
                   f"OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass('{table}'))")
            out[kind] += int(run(["psql", url, "-tAc", sql], os.environ.copy(), tmp, 300).strip())
    return out


def bench_backend(args, bin_path, backend, results):
    tmp = tempfile.mkdtemp(prefix=f"tollgate-analytics-{backend}-")
    dbname = None
    if backend == "sqlite":
        url = f"sqlite://{tmp}/tollgate.db"
    else:
        dbname = f"tollgate_bench_{uuid.uuid4().hex[:12]}"
        run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {dbname}"], os.environ.copy(), tmp, 60)
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}"
    env = base_env(f"{tmp}/data", url)
    server = None
    try:
        log(f"{backend}: writing {args.events} demo events over {args.days} days")
        # Only `serve` and `migrate` create a store; `demo` writes into an existing one.
        run([bin_path, "migrate"], env, tmp, 600)
        t0 = time.monotonic()
        # An hour, or 10,000 events a second at the least (100 M events: 2 h 47 min).
        out = run([bin_path, "demo", "--events", str(args.events), "--days", str(args.days)], env, tmp,
                  max(3600, args.events // 10_000))
        secs = time.monotonic() - t0
        rate = args.events / secs
        log(f"{backend}:   {out.strip()}")
        results["writer_events_per_s"] = round(rate)
        size = disk_bytes(backend, url, tmp)
        results["bytes_per_million_events"] = {k: round(v * 1e6 / args.events) for k, v in size.items()}
        log(f"{backend}:   bytes per million events: " +
            ", ".join(f"{k} {v / args.events:.1f} MB" for k, v in size.items()))
        gw, console = free_port(), free_port()
        env.update({"TOLLGATE_GATEWAY_LISTEN": f"127.0.0.1:{gw}", "TOLLGATE_CONSOLE_LISTEN": f"127.0.0.1:{console}"})
        server = subprocess.Popen([bin_path, "serve"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/serve.log", "w"))
        base = f"http://127.0.0.1:{console}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        token = json.loads(run([bin_path, "token", "create", "--email", ADMIN_EMAIL, "--name", "bench", "--json"], env, tmp, 60))["token"]
        teams = json.loads(request(base + "/api/v1/teams", token)[1])
        keys = json.loads(request(base + "/api/v1/keys", token)[1])
        team = next(t["id"] for t in teams if t["name"] == "acme")
        key = keys[0]["id"]
        endpoints = [
            ("summary 24h", "/api/v1/usage/summary?range=24h"),
            ("summary 90d", "/api/v1/usage/summary?range=90d"),
            ("series 7d hourly", "/api/v1/usage/series?range=7d&bucket=hour"),
            ("series 90d daily", "/api/v1/usage/series?range=90d&bucket=day"),
            ("top keys 30d", "/api/v1/usage/top?by=key&range=30d"),
            ("top models 90d by tokens", "/api/v1/usage/top?by=model&order=tokens&range=90d"),
            ("team summary 90d", f"/api/v1/usage/summary?range=90d&team_id={team}"),
            ("team series 90d", f"/api/v1/usage/series?range=90d&team_id={team}"),
            ("key summary 30d", f"/api/v1/usage/summary?range=30d&key_id={key}"),
            ("key series 7d hourly", f"/api/v1/usage/series?range=7d&bucket=hour&key_id={key}"),
            ("model summary 90d", "/api/v1/usage/summary?range=90d&model=gpt-4o"),
            ("model series 90d", "/api/v1/usage/series?range=90d&model=gpt-4o"),
            ("seed /api/usage/stats", "/api/usage/stats"),
            ("seed /api/dashboard/overview", "/api/dashboard/overview"),
            ("seed /api/console/stats", "/api/console/stats"),
            ("seed usage-trend 90d", "/api/console/usage-trend?days=90"),
            ("call log page", "/api/v1/logs?limit=50"),
            ("call log 5xx page", "/api/v1/logs?limit=50&status=5xx"),
            ("call log search", "/api/v1/logs?limit=50&q=rate%20limit"),
            ("call log one team", f"/api/v1/logs?limit=50&team_id={team}"),
            ("call log one key", f"/api/v1/logs?limit=50&key_id={key}"),
            ("call log one model", "/api/v1/logs?limit=50&model=gpt-4o"),
            ("call log one key 5xx", f"/api/v1/logs?limit=50&key_id={key}&status=5xx"),
        ]
        results["endpoints"] = {}
        for name, path in endpoints:
            request(base + path, token)  # warm caches once
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                status, _ = request(base + path, token)
                times.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    raise SystemExit(f"{path}: status {status}")
            r = {"p50_ms": round(pct(times, 0.5), 2), "p95_ms": round(pct(times, 0.95), 2), "max_ms": round(max(times), 2)}
            results["endpoints"][name] = r
            log(f"{backend}:   {name:32} p50 {r['p50_ms']:8.2f} ms  p95 {r['p95_ms']:8.2f} ms")

        # HTTP ingest.
        stop = time.monotonic() + args.ingest_seconds
        sent = [0]
        lock = threading.Lock()

        def ingest():
            now = int(time.time() * 1000)
            while time.monotonic() < stop:
                batch = [{"ts": now - i, "method": "POST", "path": "/v1/chat", "status": 200, "latency_ms": 3.5,
                          "model": "gpt-4o-mini", "prompt_tokens": 100, "completion_tokens": 20} for i in range(1000)]
                request(base + "/api/v1/usage/events", INGEST_SECRET, json.dumps(batch).encode())
                with lock:
                    sent[0] += 1000

        threads = [threading.Thread(target=ingest) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingest_rate = sent[0] / (time.monotonic() - t0)
        results["http_ingest_events_per_s"] = round(ingest_rate)
        log(f"{backend}:   HTTP ingest {ingest_rate:,.0f} events/s accepted")

        # Export, with the server's RSS sampled during it (VmHWM would also count the ingest queue
        # filled just before, which the writer drains more slowly than HTTP ingest accepts).
        time.sleep(2)
        rss_before = vm_rss_kib(server.pid)
        peak = [rss_before]
        exporting = [True]

        def sample():
            while exporting[0]:
                peak[0] = max(peak[0], vm_rss_kib(server.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.perf_counter()
        frm = int(time.time() * 1000) - 7 * 86_400_000
        req = urllib.request.Request(f"{base}/api/v1/usage/export?format=csv&from={frm}", headers={"Authorization": f"Bearer {token}"})
        size = rows = 0
        with urllib.request.urlopen(req, timeout=3600) as resp:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                rows += chunk.count(b"\n")
        secs = time.perf_counter() - t0
        exporting[0] = False
        sampler.join()
        results["export"] = {"rows": rows - 1, "mb": round(size / 1e6, 1), "seconds": round(secs, 2),
                             "rows_per_s": round((rows - 1) / secs), "server_rss_before_mib": round(rss_before / 1024, 1),
                             "server_rss_peak_during_mib": round(peak[0] / 1024, 1),
                             "server_vm_hwm_mib": round(vm_hwm_kib(server.pid) / 1024, 1)}
        log(f"{backend}:   export {rows - 1:,} rows, {size / 1e6:.1f} MB in {secs:.1f} s; server RSS {rss_before / 1024:.1f} MiB before, "
            f"{peak[0] / 1024:.1f} MiB peak during")

        # The clean-up: a restart with events kept a third of the history and roll-ups two
        # thirds, whose first pass runs at start; timed from the process's start to each step's
        # log line.
        server.terminate()
        server.wait(timeout=60)
        server = None
        results["cleanup"] = cleanup(bin_path, env, tmp, backend, args.days)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        if dbname:
            subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


CLEANUP_STEP = re.compile(
    r"^(\S+Z)\s+INFO .*retention: (removing usage events|removing roll-ups)[^\n]*?deleted=(\d+)")


def cleanup(bin_path, env, tmp, backend, days):
    """Starts `serve` with events kept a third of the `days` of history (30 of 90) and roll-ups
    two thirds (60); its first clean-up pass runs at start. Answers the seconds from the start
    until the events and the roll-ups were removed, and how many rows each step removed."""
    keep, keep_rollups = max(1, days // 3), max(2, 2 * days // 3)
    env = dict(env, TOLLGATE_RETENTION__DAYS=str(keep), TOLLGATE_RETENTION__ROLLUP_DAYS=str(keep_rollups),
               TOLLGATE_LOG_LEVEL="info",
               TOLLGATE_GATEWAY_LISTEN=f"127.0.0.1:{free_port()}", TOLLGATE_CONSOLE_LISTEN=f"127.0.0.1:{free_port()}")
    path = f"{tmp}/cleanup.log"
    started = time.time()
    server = subprocess.Popen([bin_path, "serve"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(path, "w"))
    steps = {}
    try:
        deadline = time.monotonic() + 3600
        while len(steps) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            for line in open(path, errors="replace"):
                m = CLEANUP_STEP.match(line)
                if m:
                    ts = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
                    name = "events" if m.group(2).startswith("removing usage") else "rollups"
                    steps[name] = {"seconds": round(ts - started, 2), "deleted": int(m.group(3))}
    finally:
        server.terminate()
        server.wait(timeout=60)
    if len(steps) < 2:
        raise SystemExit(f"{backend}: the clean-up did not report both steps within an hour: {steps}")
    log(f"{backend}:   clean-up: {steps['events']['deleted']:,} events older than {keep} days in {steps['events']['seconds']} s; "
        f"{steps['rollups']['deleted']:,} roll-up rows older than {keep_rollups} days by {steps['rollups']['seconds']} s from start")
    return steps


def seed_tiktoken_cache(tmp):
    """Python tiktoken downloads its vocabularies on first use, which this machine cannot do. The
    same files ship inside the tiktoken-rs crate; tiktoken checks them by SHA-256 against its own
    expected hash, so a copy in its cache (named by the SHA-1 of the URL) is used only if identical."""
    import glob  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    cache = os.path.join(tmp, "tiktoken-cache")
    os.makedirs(cache, exist_ok=True)
    for name in ("o200k_base", "cl100k_base"):
        found = sorted(glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/tiktoken-rs-*/assets/{name}.tiktoken")))
        if found:
            url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
            shutil.copy(found[-1], os.path.join(cache, hashlib.sha1(url.encode()).hexdigest()))
    os.environ["TIKTOKEN_CACHE_DIR"] = cache


def bench_estimate(bin_path, results):
    tmp = tempfile.mkdtemp(prefix="tollgate-estimate-")
    try:
        words = ("The gateway forwards every call and records its tokens; 网关记录每次调用的令牌。 "
                 "def f(x): return x * 42  # code, prose and CJK text ").split(" ")
        text = " ".join(words[i % len(words)] for i in range(2_400_000))
        path = os.path.join(tmp, "text.txt")
        with open(path, "w") as f:
            f.write(text)
        mb = os.path.getsize(path) / 1e6
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        env["TOLLGATE_DATA_DIR"] = tmp
        t0 = time.perf_counter()
        out = json.loads(run([bin_path, "estimate", "--json", "--model", "gpt-4o", path], env, tmp, 600))
        secs = time.perf_counter() - t0
        results["estimate"] = {"mb": round(mb, 1), "tokens": out["tokens"], "seconds": round(secs, 2),
                               "mb_per_s": round(mb / secs, 2), "tokens_per_s": round(out["tokens"] / secs)}
        log(f"estimate: {mb:.1f} MB, {out['tokens']:,} tokens in {secs:.2f} s ({mb / secs:.2f} MB/s)")
        try:
            seed_tiktoken_cache(tmp)
            import tiktoken  # noqa: PLC0415
            enc = tiktoken.get_encoding("o200k_base")
            t0 = time.perf_counter()
            n = len(enc.encode_ordinary(text))
            py = time.perf_counter() - t0
            results["tiktoken_python"] = {"tokens": n, "seconds": round(py, 2), "mb_per_s": round(mb / py, 2),
                                          "same_count": n == out["tokens"]}
            log(f"tiktoken (Python): {n:,} tokens in {py:.2f} s ({mb / py:.2f} MB/s); same count: {n == out['tokens']}")
        except Exception as e:  # noqa: BLE001 - any failure means "not comparable here"
            results["tiktoken_python"] = f"not available: {type(e).__name__}: {e}"[:300]
            log(f"tiktoken (Python) not available here: {type(e).__name__}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000_000, help="demo events per backend (default 10M)")
    p.add_argument("--days", type=int, default=90, help="days of history (default 90)")
    p.add_argument("--repeat", type=int, default=40, help="calls per endpoint (default 40)")
    p.add_argument("--ingest-seconds", type=float, default=5, help="HTTP ingest duration (default 5 s)")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated (default sqlite,postgres)")
    p.add_argument("--bin-dir", help="take tollgate from this folder instead of building it")
    args = p.parse_args()
    if args.bin_dir:
        bin_path = os.path.join(os.path.abspath(args.bin_dir), "tollgate")
    else:
        log("building the release binary")
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate"], cwd=ROOT, check=True)
        bin_path = os.path.join(ROOT, "target", "release", "tollgate")
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "events": args.events, "days": args.days,
               "cpus": os.cpu_count(), "backends": {}}
    for backend in args.backends.split(","):
        summary["backends"][backend] = {}
        bench_backend(args, bin_path, backend, summary["backends"][backend])
    bench_estimate(bin_path, summary)
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.join(out_dir, f"analytics-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(name, "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    print("\nTargets")
    for backend, r in summary["backends"].items():
        worst = max(v["p95_ms"] for v in r["endpoints"].values())
        print(f"  {'PASS' if worst <= 20 else 'MISS'}  {backend}: worst dashboard p95 {worst} ms (target ≤ 20)")
        target = 150_000 if backend == "sqlite" else 100_000
        print(f"  {'PASS' if r['writer_events_per_s'] >= target else 'MISS'}  {backend}: writer {r['writer_events_per_s']:,} events/s (target ≥ {target:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
