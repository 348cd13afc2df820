#!/usr/bin/env python3
"""The edge key snapshot at scale, on SQLite and PostgreSQL.

For each backend:
  1. `tollgate migrate`, one route, then N keys (default 100,000) written straight into the store
     with one SQL statement (a tenth of them limited to the route, a tenth with a model list), so
     that the set-up takes seconds rather than N CLI calls; with the store's triggers on, so the
     write time (`write_s`) is that of a bulk key import, and every key is in the change feed;
  2. `tollgate token create-edge` and `tollgate serve`;
  3. GET /api/v1/edge/snapshot R times with the edge token: time to the first byte, total time,
     size, keys counted in the parsed document; the server's peak RSS (VmHWM) before and after;
  4. one key revoked, then GET /api/v1/edge/changes?since=<snapshot revision>: time, and that the
     revocation is in it.

Target: the 100,000-key snapshot answered in well under a second, streamed (the server's memory
does not grow with the key count). Everything runs on 127.0.0.1 and stops by itself.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN = os.environ.get("TOLLGATE_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env, timeout=600):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout


def base_env(data_dir, url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update({
        "TOLLGATE_DATA_DIR": data_dir,
        "TOLLGATE_DATABASE_URL": url,
        "TOLLGATE_LOG_LEVEL": "warn",
    })
    return env


def insert_keys_sql(dialect, n, team_id, route_id):
    """One statement writing n keys with distinct 64-hex hashes."""
    if dialect == "sqlite":
        return f"""
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
INSERT INTO api_keys (team_id, name, key_hash, prefix, created_by, created_at, all_routes)
SELECT {team_id}, 'bench-' || i, printf('%064x', i), 'ntk_bench…' || i, 'bench', 0,
       CASE WHEN i % 10 = 0 THEN 0 ELSE 1 END
FROM seq;
INSERT INTO api_key_routes (key_id, route_id) SELECT id, {route_id} FROM api_keys WHERE all_routes = 0;
INSERT INTO key_models (key_id, patterns) SELECT id, 'gpt-4o*,o3' FROM api_keys WHERE id % 10 = 3;
"""
    # With the store's triggers on: since migration 0010 they take a statement's revisions in one
    # step (before it, one update of the revision row per key made this write take minutes).
    return f"""
INSERT INTO api_keys (team_id, name, key_hash, prefix, created_by, created_at, all_routes)
SELECT {team_id}, 'bench-' || i, lpad(to_hex(i), 64, '0'), 'ntk_bench…' || i, 'bench', 0, i % 10 <> 0
FROM generate_series(1, {n}) AS i;
INSERT INTO api_key_routes (key_id, route_id) SELECT id, {route_id} FROM api_keys WHERE NOT all_routes;
INSERT INTO key_models (key_id, patterns) SELECT id, 'gpt-4o*,o3' FROM api_keys WHERE id % 10 = 3;
"""


def sql(dialect, target, statement):
    if dialect == "sqlite":
        cmd = ["sqlite3", target]
    else:
        cmd = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-At", target]
    out = subprocess.run(cmd, input=statement, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{dialect}: {out.stderr.strip()}")
    return out.stdout.strip()


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get(url, token):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:
        first = resp.read(1)
        ttfb = time.perf_counter() - start
        body = first + resp.read()
    return ttfb, time.perf_counter() - start, body


def bench_backend(binary, backend, n, runs):
    work = tempfile.mkdtemp(prefix=f"tollgate-edge-{backend}-")
    db_name = None
    if backend == "sqlite":
        path = os.path.join(work, "tollgate.db")
        url = f"sqlite://{path}"
        target = path
    else:
        db_name = f"tollgate_edge_bench_{os.getpid()}"
        sql("postgres", PG_ADMIN, f"CREATE DATABASE {db_name};")
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
        target = url
    env = base_env(work, url)
    server = None
    try:
        run([binary, "migrate"], env)
        route = json.loads(run([binary, "route", "add", "--name", "svc", "--prefix", "/svc",
                                "--upstream", "http://127.0.0.1:9", "--json"], env))
        team_id = sql(backend, target, "SELECT id FROM teams WHERE name = 'default';")
        started = time.perf_counter()
        sql(backend, target, insert_keys_sql(backend, n, team_id, route["id"]))
        write_s = time.perf_counter() - started
        log(f"{backend}: {n} keys written in {write_s:.1f} s")
        feed_rows = int(sql(backend, target, "SELECT count(*) FROM edge_changes;"))
        if feed_rows < n:
            raise SystemExit(f"{backend}: {feed_rows} changes in the feed for {n} keys")
        token = json.loads(run([binary, "token", "create-edge", "--name", "bench", "--json"], env))["token"]
        gw, console = free_port(), free_port()
        server = subprocess.Popen(
            [binary, "serve", "--gateway-listen", f"127.0.0.1:{gw}", "--console-listen", f"127.0.0.1:{console}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{console}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{backend}: the server did not start")
        # Start-up work that reads every key (caches, budgets, alert checks) settles first, so
        # that what is measured is the snapshot's own memory.
        settled = vm_rss_kib(server.pid)
        for _ in range(30):
            time.sleep(1)
            now = vm_rss_kib(server.pid)
            if abs(now - settled) < settled // 100:
                break
            settled = now
        rss_idle = vm_rss_kib(server.pid)
        hwm_before = vm_hwm_kib(server.pid)
        ttfbs, totals, size, revision = [], [], 0, 0
        for i in range(runs):
            ttfb, total, body = get(base + "/api/v1/edge/snapshot", token)
            doc = json.loads(body)
            if len(doc["keys"]) != n:
                raise SystemExit(f"{backend}: {len(doc['keys'])} keys in the snapshot, not {n}")
            ttfbs.append(ttfb * 1000)
            totals.append(total * 1000)
            size, revision = len(body), doc["revision"]
        hwm_after = vm_hwm_kib(server.pid)
        revoked = doc["keys"][n // 2]
        run([binary, "key", "revoke", str(revoked["id"])], env)
        _, changes_ms, body = get(base + f"/api/v1/edge/changes?since={revision}", token)
        changes = json.loads(body)
        statuses = {k["key_hash"]: k["status"] for k in changes["keys"]}
        if statuses.get(revoked["key_hash"]) != "revoked":
            raise SystemExit(f"{backend}: the revocation is not in the feed: {changes}")
        return {
            "backend": backend,
            "keys": n,
            "write_s": round(write_s, 2),
            "bytes": size,
            "ttfb_ms_median": round(statistics.median(ttfbs), 1),
            "total_ms_median": round(statistics.median(totals), 1),
            "total_ms_max": round(max(totals), 1),
            "rss_settled_mib": round(rss_idle / 1024, 1),
            "rss_after_mib": round(vm_rss_kib(server.pid) / 1024, 1),
            "hwm_before_mib": round(hwm_before / 1024, 1),
            "hwm_after_mib": round(hwm_after / 1024, 1),
            "changes_ms": round(changes_ms * 1000, 1),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if db_name is not None:
            sql("postgres", PG_ADMIN, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE);")
        shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "debug"),
                   help="directory holding the tollgate binary (default target/debug)")
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--backends", default="sqlite,postgres")
    args = p.parse_args()
    binary = os.path.join(args.bin_dir, "tollgate")
    if not os.path.exists(binary):
        sys.exit(f"no {binary}: cargo build -p tollgate first")
    results = [bench_backend(binary, b, args.keys, args.runs) for b in args.backends.split(",")]
    for r in results:
        log(json.dumps(r))


if __name__ == "__main__":
    main()
