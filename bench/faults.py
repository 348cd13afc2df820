#!/usr/bin/env python3
"""Fault bench: does the usage pipeline keep every acknowledged call through crashes and outages?

Starts the real `tollgate` binary (release if built, else debug) and `tollgate-mock-upstream` on
127.0.0.1, sends load from a few client threads (each call carries its own `X-Request-Id`), injects
a fault, restarts the gateway when the fault killed it, waits until the writer has flushed, and
counts per scenario:

  sent     calls attempted
  2xx      calls answered 2xx and read to the end (acknowledged)
  stored   acknowledged calls found in the store
  lost     acknowledged calls missing from the store
  doubled  request ids stored more than once

Scenarios (names for --only):
  kill9-sqlite-memory, kill9-sqlite-spool, kill9-pg-memory, kill9-pg-spool
      SIGKILL under load. `memory` may lose up to its stated window; `spool` must lose 0.
  pg-outage-kill-replay, pg-outage-kill-replay-spool
      (memory / spool durability) PostgreSQL refuses connections (ALLOW_CONNECTIONS false + pg_terminate_backend) under load,
      comes back, and the gateway is SIGKILLed while it replays its spool.
  disk-full-sqlite
      The SQLite file lives on a small tmpfs (else: a max_page_count-free fallback is skipped),
      a filler file fills it under load, then the filler is removed: the same process recovers.
  sigterm-sqlite
      SIGTERM under load: a clean stop loses nothing.

Python 3.11, stdlib only (PostgreSQL through `psql`). Bounded: every wait has a deadline and
every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-Atq"]
PROCS: list[subprocess.Popen] = []


class BenchError(Exception):
    """A step failed; the message says which."""


def log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop_all() -> None:
    for proc in reversed(PROCS):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


atexit.register(stop_all)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {port} within {timeout:.0f} s")


def psql(sql: str, db: str = "postgres") -> str:
    done = subprocess.run(PG_ADMIN + ["-d", db, "-c", sql], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"psql failed: {done.stderr.strip()}")
    return done.stdout


class Gateway:
    """One tollgate configuration: its env, and the serve process currently running."""

    def __init__(self, bins: Path, run_dir: Path, db_url: str, durability: str, extra: dict[str, str]):
        self.bins, self.run_dir = bins, run_dir
        self.gw_port, self.console_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        self.env.update({
            "TOLLGATE_DATA_DIR": str(run_dir / "data"),
            "TOLLGATE_DATABASE_URL": db_url,
            "TOLLGATE_GATEWAY_LISTEN": f"127.0.0.1:{self.gw_port}",
            "TOLLGATE_CONSOLE_LISTEN": f"127.0.0.1:{self.console_port}",
            "TOLLGATE_LOG_LEVEL": "warn",
            **extra,
        })
        # Only when asked: a binary from before `usage.durability` refuses the unknown key.
        if durability != "memory":
            self.env["TOLLGATE_USAGE__DURABILITY"] = durability
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def cli(self, *args: str) -> str:
        done = subprocess.run([str(self.bins / "tollgate"), *args], capture_output=True, text=True,
                              timeout=120, env=self.env, cwd=self.run_dir)
        if done.returncode != 0:
            raise BenchError(f"tollgate {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        self.starts += 1
        out = open(self.run_dir / f"serve-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([str(self.bins / "tollgate"), "serve"], env=self.env, cwd=self.run_dir,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        PROCS.append(self.proc)
        wait_port(self.gw_port, self.proc, "tollgate gateway")
        wait_port(self.console_port, self.proc, "tollgate console")

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=90)

    def metrics(self) -> dict[str, float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.console_port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode(errors="replace")
        finally:
            conn.close()
        values = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
        return values

    def wait_flushed(self, timeout: float = 60.0) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.metrics()
            if m.get("tollgate_usage_queue_depth") == 0 and m.get("tollgate_usage_spool_bytes") == 0:
                time.sleep(0.5)
                return self.metrics()
            time.sleep(0.2)
        raise BenchError("the usage writer did not flush within the deadline")


class Load:
    """Client threads sending calls until stopped; remembers which were acknowledged."""

    def __init__(self, port: int, key: str, threads: int):
        self.port, self.key, self.threads = port, key, threads
        self.sent = 0
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        for w in self.workers:
            w.join(timeout=30)

    def _run(self) -> None:
        conn = None
        while not self.stop.is_set():
            rid = str(uuid.uuid4())
            with self.lock:
                self.sent += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/echo/x", headers={"Authorization": f"Bearer {self.key}", "X-Request-Id": rid})
                resp = conn.getresponse()
                resp.read()
                if 200 <= resp.status < 300:
                    with self.lock:
                        self.acked.append(rid)
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)


def stored_counts(db_url: str, sqlite_path: Path | None, pg_db: str | None) -> dict[str, int]:
    sql = "SELECT request_id, COUNT(*) FROM usage_events WHERE request_id IS NOT NULL GROUP BY request_id"
    if sqlite_path is not None:
        with sqlite3.connect(sqlite_path) as conn:
            return {rid: n for rid, n in conn.execute(sql)}
    out = psql(sql.replace("COUNT(*)", "COUNT(*)") + ";", pg_db or "postgres")
    counts = {}
    for line in out.splitlines():
        rid, _, n = line.partition("|")
        counts[rid] = int(n)
    return counts


def scenario(args, name: str) -> dict:
    backend = "pg" if "pg" in name.split("-") else "sqlite"
    durability = "spool" if name.endswith("-spool") else "memory"
    run_dir = Path(tempfile.mkdtemp(prefix=f"tollgate-faults-{name}-"))
    pg_db = None
    sqlite_path: Path | None = None
    mounted = None
    extra = {"TOLLGATE_WRITER__BATCH_INTERVAL_MS": "200"}
    if backend == "pg":
        pg_db = f"tollgate_faults_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE DATABASE {pg_db}")
        db_url = f"postgres://postgres@127.0.0.1:5432/{pg_db}"
    else:
        db_dir = run_dir / "db"
        db_dir.mkdir()
        if name == "disk-full-sqlite":
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(db_dir)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return {"scenario": name, "skipped": f"cannot mount a tmpfs: {done.stderr.strip()}"}
            mounted = db_dir
        sqlite_path = db_dir / "tollgate.db"
        db_url = f"sqlite://{sqlite_path}"
    mock_port = free_port()
    mock = subprocess.Popen([str(args.bins / "tollgate-mock-upstream"), "--listen", f"127.0.0.1:{mock_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(mock)
    gw = Gateway(args.bins, run_dir, db_url, durability, extra)
    notes = ""
    try:
        wait_port(mock_port, mock, "mock upstream")
        gw.cli("migrate")  # only `serve` and `migrate` create a store
        gw.cli("route", "add", "--name", "echo", "--prefix", "/echo", "--upstream", f"http://127.0.0.1:{mock_port}")
        key = json.loads(gw.cli("key", "create", "--name", "faults", "--json"))["key"]
        gw.start()
        half = args.duration / 2
        with Load(gw.gw_port, key, args.threads) as load:
            if name.startswith("kill9"):
                time.sleep(half)
                gw.signal(signal.SIGKILL)
                if durability == "memory":
                    notes = "memory mode: the window is queue + batch in flight"
            elif name == "sigterm-sqlite":
                time.sleep(half)
                gw.signal(signal.SIGTERM)
            elif name.startswith("pg-outage-kill-replay"):
                time.sleep(half / 2)
                psql(f"ALTER DATABASE {pg_db} ALLOW_CONNECTIONS false")
                psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{pg_db}'")
                time.sleep(half)
                spooled = gw.metrics().get("tollgate_usage_spool_bytes", 0)
                psql(f"ALTER DATABASE {pg_db} ALLOW_CONNECTIONS true")
                # Kill as soon as the replay has begun (the spool starts shrinking), or after 3 s.
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    if gw.metrics().get("tollgate_usage_spool_bytes", 0) < spooled:
                        break
                    time.sleep(0.05)
                gw.signal(signal.SIGKILL)
                notes = f"spool {spooled / 1024:.0f} KiB when the store came back"
            elif name == "disk-full-sqlite":
                time.sleep(half / 2)
                filler = mounted / "filler"
                subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"],
                               capture_output=True)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and gw.metrics().get("tollgate_usage_store_write_ok", 1) != 0:
                    time.sleep(0.2)
                m = gw.metrics()
                degraded = m.get("tollgate_usage_store_write_ok", 1) == 0
                time.sleep(half / 2)
                filler.unlink()
                notes = f"degraded={'yes' if degraded else 'NO'} write_failures={m.get('tollgate_usage_store_write_failures_total', 0):.0f}"
            else:
                raise BenchError(f"unknown scenario {name}")
            time.sleep(max(0.0, half / 2))
        if gw.proc is None or gw.proc.poll() is not None:
            gw.start()
        try:
            final = gw.wait_flushed()
        except BenchError as e:
            # Counted anyway: what is not in the store by now is lost to the reader.
            final = gw.metrics()
            notes = f"{notes} NOT RECOVERED ({e})".strip()
        dropped = final.get("tollgate_usage_events_dropped_total", 0)
        gw.signal(signal.SIGTERM)
        counts = stored_counts(db_url, sqlite_path, pg_db)
        acked = load.acked
        stored = sum(1 for rid in acked if rid in counts)
        return {
            "scenario": name, "sent": load.sent, "2xx": len(acked), "stored": stored,
            "lost": len(acked) - stored, "doubled": sum(1 for n in counts.values() if n > 1),
            "dropped_metric": dropped, "notes": notes,
        }
    finally:
        gw.signal(signal.SIGKILL)
        mock.kill()
        mock.wait(timeout=10)
        if pg_db:
            try:
                psql(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
            except BenchError as e:
                log(f"cannot drop {pg_db}: {e}")
        if mounted:
            subprocess.run(["umount", str(mounted)], capture_output=True)
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


ALL = ["kill9-sqlite-memory", "kill9-sqlite-spool", "kill9-pg-memory", "kill9-pg-spool",
       "pg-outage-kill-replay", "pg-outage-kill-replay-spool", "disk-full-sqlite", "sigterm-sqlite"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=ALL, help="scenarios to run (default: all)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of load per scenario")
    p.add_argument("--threads", type=int, default=16, help="client threads")
    p.add_argument("--bins", type=Path, help="folder of tollgate and tollgate-mock-upstream")
    p.add_argument("--keep", action="store_true", help="keep run folders (logs)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if args.bins is None:
        release = TARGET / "release"
        args.bins = release if (release / "tollgate").exists() and (release / "tollgate-mock-upstream").exists() \
            else TARGET / "debug"
    for b in ("tollgate", "tollgate-mock-upstream"):
        if not (args.bins / b).exists():
            log(f"{args.bins / b} is missing: cargo build -p tollgate -p tollgate-mock-upstream")
            return 2
    args.bins = args.bins.resolve()
    log(f"binaries from {args.bins}")
    rows = []
    for name in args.only or ALL:
        log(f"scenario {name}")
        try:
            rows.append(scenario(args, name))
        except BenchError as e:
            rows.append({"scenario": name, "error": str(e)})
        log(json.dumps(rows[-1]))
    print(f"\n{'scenario':24} {'sent':>7} {'2xx':>7} {'stored':>7} {'lost':>6} {'doubled':>7}  notes")
    for r in rows:
        if "sent" in r:
            print(f"{r['scenario']:24} {r['sent']:7} {r['2xx']:7} {r['stored']:7} {r['lost']:6} {r['doubled']:7}  "
                  f"dropped={r['dropped_metric']:.0f} {r['notes']}")
        else:
            print(f"{r['scenario']:24} {r.get('error') or r.get('skipped')}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
