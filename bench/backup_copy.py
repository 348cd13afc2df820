#!/usr/bin/env python3
"""Backup, restore and SQLite → PostgreSQL copy of a store with 1 M demo events.

  1. `tollgate migrate`, a route and a key (sealed with the master key), then
     `tollgate demo --events N --days D` (default 1,000,000 over 30 days);
  2. `tollgate serve` on it, and `tollgate backup` while it runs (time, size);
  3. `tollgate restore` into an empty data folder (time); every table's rows and the usage totals
     of the restored store equal the backup's;
  4. `tollgate store copy --to postgres://…` from the original store into a new database (time);
     the command itself compares every table and the usage totals, and so does this script;
  5. `tollgate usage stats` equal on all three stores, and on the restored and the copied store a
     `serve` that accepts the key (the route's upstream is a closed port, so the accepted call
     answers 502 `upstream_unreachable`, never 401).

Prints the times and writes bench/results/backup_copy-<date>.json. Everything runs on 127.0.0.1
and stops by itself; the PostgreSQL database is dropped at the end.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN = os.environ.get("TOLLGATE_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
MASTER_KEY = "bench-master-key-0123456789abcdef0123456789"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env, cwd, timeout=3600):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout


def timed(cmd, env, cwd):
    t0 = time.monotonic()
    out = run(cmd, env, cwd)
    return out, time.monotonic() - t0


def env_for(data_dir, url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update({
        "TOLLGATE_DATA_DIR": data_dir,
        "TOLLGATE_DATABASE_URL": url,
        "TOLLGATE_MASTER_KEY": MASTER_KEY,
        "TOLLGATE_LOG_LEVEL": "warn",
        "TOLLGATE_WRITER__QUEUE_CAPACITY": "262144",
        "TOLLGATE_WRITER__BATCH_SIZE": "5000",
        # Keep every demo day: the first clean-up would otherwise delete old rows mid-run.
        "TOLLGATE_RETENTION__DAYS": "400",
        "TOLLGATE_RETENTION__ROLLUP_DAYS": "400",
    })
    return env


class Server:
    def __init__(self, bin_path, env, cwd):
        self.gateway, self.console = free_port(), free_port()
        env = dict(env, TOLLGATE_GATEWAY_LISTEN=f"127.0.0.1:{self.gateway}",
                   TOLLGATE_CONSOLE_LISTEN=f"127.0.0.1:{self.console}")
        self.proc = subprocess.Popen([bin_path, "serve"], env=env, cwd=cwd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.console}/health", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None:
                    raise SystemExit(f"serve exited: {self.proc.stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    raise SystemExit("serve not ready in 120 s")
                time.sleep(0.2)

    def call(self, key):
        req = urllib.request.Request(f"http://127.0.0.1:{self.gateway}/bench/v1/models",
                                     headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def wait_flushed(self):
        """Until the usage writer's queue and spool are empty: the backup holds what is stored."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.console}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            values = dict(line.rsplit(" ", 1) for line in text.splitlines()
                          if line.startswith(("tollgate_usage_queue_depth ", "tollgate_usage_spool_bytes ")))
            if values and all(float(v) == 0 for v in values.values()):
                time.sleep(0.5)  # the batch in flight commits
                return
            time.sleep(0.1)
        raise SystemExit("usage not flushed in 60 s")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)


def key_accepted(server, key):
    status, body = server.call(key)
    code = json.loads(body or b"{}").get("error", {}).get("code")
    if status == 401 or code in ("invalid_api_key", "revoked_api_key", "expired_api_key"):
        raise SystemExit(f"the key is refused: {status} {body[:200]!r}")
    return f"{status} {code or ''}".strip()


def same(a, b):
    """Equal, except floats in their last bits: the databases add costs in different orders."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def stats(bin_path, env, cwd):
    return json.loads(run([bin_path, "usage", "stats", "--since", "400d", "--json"], env, cwd))["summary"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="demo events (default 1M)")
    p.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    p.add_argument("--bin-dir", help="take tollgate from this folder instead of building it")
    args = p.parse_args()
    if args.bin_dir:
        bin_path = os.path.join(os.path.abspath(args.bin_dir), "tollgate")
    else:
        log("building the release binary")
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate"], cwd=ROOT, check=True)
        bin_path = os.path.join(ROOT, "target", "release", "tollgate")
    tmp = tempfile.mkdtemp(prefix="tollgate-backup-bench-")
    dbname = f"tollgate_bench_{uuid.uuid4().hex[:12]}"
    pg_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}"
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "events": args.events,
               "days": args.days, "cpus": os.cpu_count()}
    server = None
    try:
        src = env_for(f"{tmp}/source", f"sqlite://{tmp}/source/tollgate.db")
        run([bin_path, "migrate"], src, tmp)
        run([bin_path, "route", "add", "--name", "bench", "--prefix", "/bench", "--upstream",
             "http://127.0.0.1:1", "--strip-prefix", "--json"], src, tmp)
        key = json.loads(run([bin_path, "key", "create", "--name", "bench", "--json"], src, tmp))["key"]
        log(f"demo: {args.events:,} events over {args.days} days")
        _, secs = timed([bin_path, "demo", "--events", str(args.events), "--days", str(args.days)], src, tmp)
        results["demo_seconds"] = round(secs, 1)

        server = Server(bin_path, src, tmp)
        key_accepted(server, key)
        server.wait_flushed()
        backup = f"{tmp}/tollgate.backup"
        out, secs = timed([bin_path, "backup", "--out", backup, "--json"], src, tmp)
        made = json.loads(out)
        results["backup"] = {"seconds": round(secs, 2), "bytes": made["bytes"], "online": True}
        log(f"backup (serve running): {made['bytes'] / 1e6:.1f} MB in {secs:.1f} s")
        server.stop()
        server = None
        source_stats = stats(bin_path, src, tmp)

        dst = env_for(f"{tmp}/restored", f"sqlite://{tmp}/restored/tollgate.db")
        out, secs = timed([bin_path, "restore", backup, "--json"], dst, tmp)
        restored = json.loads(out)
        identical = restored["tables"] == made["tables"] and restored["usage"] == made["usage"]
        results["restore"] = {"seconds": round(secs, 2), "tables_and_totals_equal": identical}
        log(f"restore: {secs:.1f} s; every table and total equal: {identical}")
        if not identical:
            raise SystemExit(f"restore differs: {restored} vs {made}")

        run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {dbname}"], os.environ.copy(), tmp, 60)
        out, secs = timed([bin_path, "store", "copy", "--to", pg_url, "--json"], src, tmp)
        copied = json.loads(out)
        equal = all(t["source"] == t["target"] for t in copied["tables"])
        results["store_copy"] = {"seconds": round(secs, 2), "tables": len(copied["tables"]),
                                 "events": copied["target"]["usage"]["events"], "tables_equal": equal,
                                 "rows_per_s": round(sum(t["target"] for t in copied["tables"]) / secs)}
        log(f"store copy to PostgreSQL: {secs:.1f} s ({results['store_copy']['rows_per_s']:,} rows/s); "
            f"every table equal: {equal}")
        if not equal or copied["source"]["usage"]["events"] != copied["target"]["usage"]["events"]:
            raise SystemExit("the copy differs")

        pg = env_for(f"{tmp}/pg-data", pg_url)
        restored_stats, pg_stats = stats(bin_path, dst, tmp), stats(bin_path, pg, tmp)
        equal_stats = same(restored_stats, source_stats) and same(pg_stats, source_stats)
        results["usage_stats_equal"] = equal_stats
        log(f"usage stats equal on the source, the restored and the copied store: {equal_stats}")
        if not equal_stats:
            raise SystemExit(f"usage stats differ:\n{source_stats}\n{restored_stats}\n{pg_stats}")
        for name, env in (("restored", dst), ("postgres", pg)):
            server = Server(bin_path, env, tmp)
            results[f"key_on_{name}"] = key_accepted(server, key)
            server.stop()
            server = None
            log(f"{name}: the key is accepted ({results[f'key_on_{name}']})")
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"backup_copy-{time.strftime('%Y%m%d-%H%M%S')}.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
