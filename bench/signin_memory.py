#!/usr/bin/env python3
"""Failed sign-ins for N minutes against tollgate's console, printing the server's RSS over time.

Every sign-in runs Argon2id (19 MiB); before the bounded hash pool, RSS grew
by ~19 MiB per concurrent attempt and never came back. This script keeps `--concurrency` clients
failing sign-ins (half to an existing account, half to unknown e-mails, so both the real and the
dummy hash are checked), each attempt from its own `X-Forwarded-For` address so the per-address
throttle does not stop the load, and samples `VmRSS` / `VmHWM` from /proc/<pid>/status.

Two ways to run it:

    # start a server itself (debug build by default; 127.0.0.1 trusted as a proxy):
    python3 bench/signin_memory.py --minutes 3
    python3 bench/signin_memory.py --binary target/release/tollgate --minutes 10

    # against a running server (it must trust 127.0.0.1 in `trusted_proxies`, or most attempts
    # are refused with 429 by the throttle instead of being hashed):
    python3 bench/signin_memory.py --console http://127.0.0.1:8081 --pid 12345 --email a@b.co

Answers other than 401 (wrong credentials) and 429 (throttled, or the hash pool is full) are an
error. The summary gives the RSS after warm-up (the first sample), the highest and the last, and
exits non-zero when growth after warm-up exceeds `--max-growth-mib` (default 64).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench passphrase nobody guesses"


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_server(binary, workdir):
    ready = os.path.join(workdir, "ready.json")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", workdir),
        "TOLLGATE_DATA_DIR": os.path.join(workdir, "data"),
        "TOLLGATE_GATEWAY_LISTEN": "127.0.0.1:0",
        "TOLLGATE_CONSOLE_LISTEN": "127.0.0.1:0",
        "TOLLGATE_LOG_LEVEL": "warn",
        "TOLLGATE_ADMIN_EMAIL": ADMIN_EMAIL,
        "TOLLGATE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TOLLGATE_TRUSTED_PROXIES": '["127.0.0.1"]',
    }
    log = open(os.path.join(workdir, "server.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--ready-file", ready],
        env=env, cwd=workdir, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if proc.poll() is not None:
            raise SystemExit(f"tollgate serve exited with {proc.returncode}; see {log.name}")
        if time.time() > deadline:
            proc.kill()
            raise SystemExit("tollgate serve not ready in 60 s")
        time.sleep(0.05)
    with open(ready) as f:
        console = json.load(f)["console"]
    return proc, f"http://{console}"


class Load:
    def __init__(self, console, email, concurrency):
        self.url = console.rstrip("/") + "/api/v1/auth/login"
        self.email = email
        self.concurrency = concurrency
        self.lock = threading.Lock()
        self.counts = {}
        self.sent = 0
        self.stop = threading.Event()
        self.errors = []

    def attempt(self, n):
        email = self.email if n % 2 else f"nobody{n}@example.com"
        body = json.dumps({"email": email, "password": "not the password at all"}).encode()
        addr = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "content-type": "application/json", "x-forwarded-for": addr,
        })
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            e.read()
            return e.code

    def worker(self):
        while not self.stop.is_set():
            with self.lock:
                n = self.sent
                self.sent += 1
            try:
                status = self.attempt(n)
            except Exception as e:  # connection refused, timeout: the server is in trouble
                status = f"error: {e}"
            with self.lock:
                self.counts[status] = self.counts.get(status, 0) + 1
                if status not in (401, 429):
                    self.errors.append(status)

    def start(self):
        self.threads = [threading.Thread(target=self.worker, daemon=True)
                        for _ in range(self.concurrency)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=40)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to load (default 10)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between RSS lines (default 10)")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "tollgate"),
                    help="binary to start when --console is not given (default target/debug/tollgate)")
    ap.add_argument("--console", help="URL of a running console (needs --pid)")
    ap.add_argument("--pid", type=int, help="pid of the running server, for /proc")
    ap.add_argument("--email", default=ADMIN_EMAIL, help="an existing account's e-mail")
    ap.add_argument("--max-growth-mib", type=float, default=64.0,
                    help="fail when RSS grows more than this after warm-up (default 64)")
    ap.add_argument("--json", help="also write the samples and summary to this file")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)  # the server runs in a temporary folder

    proc = workdir = None
    if args.console:
        if not args.pid:
            ap.error("--console needs --pid")
        console, pid = args.console, args.pid
    else:
        if not os.path.exists(args.binary):
            ap.error(f"{args.binary} does not exist: build it (cargo build -p tollgate) or pass --binary")
        workdir = tempfile.mkdtemp(prefix="tollgate-signin-")
        proc, console = start_server(args.binary, workdir)
        pid = proc.pid

    start_rss = proc_kib(pid, "VmRSS")
    print(f"server pid {pid} at {console}; RSS at start {start_rss / 1024:.1f} MiB; "
          f"{args.concurrency} clients for {args.minutes:g} min", flush=True)
    print(f"{'t(s)':>6} {'RSS MiB':>8} {'HWM MiB':>8} {'sent':>7} {'401':>7} {'429':>7} {'att/s':>6}",
          flush=True)
    load = Load(console, args.email, args.concurrency)
    began = time.time()
    load.start()
    samples = []
    last_sent, last_t = 0, began
    end = began + args.minutes * 60
    try:
        while time.time() < end:
            time.sleep(min(args.interval, max(0.0, end - time.time())))
            now = time.time()
            rss, hwm = proc_kib(pid, "VmRSS"), proc_kib(pid, "VmHWM")
            with load.lock:
                sent, counts = load.sent, dict(load.counts)
            rate = (sent - last_sent) / max(now - last_t, 1e-9)
            last_sent, last_t = sent, now
            sample = {"t": round(now - began, 1), "rss_kib": rss, "hwm_kib": hwm, "sent": sent,
                      "401": counts.get(401, 0), "429": counts.get(429, 0)}
            samples.append(sample)
            print(f"{sample['t']:>6.0f} {rss / 1024:>8.1f} {hwm / 1024:>8.1f} {sent:>7} "
                  f"{sample['401']:>7} {sample['429']:>7} {rate:>6.1f}", flush=True)
    finally:
        load.finish()
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(workdir, ignore_errors=True)

    if not samples:
        raise SystemExit("no samples: run for longer than --interval")
    warm = samples[0]["rss_kib"]
    peak = max(s["rss_kib"] for s in samples)
    last = samples[-1]["rss_kib"]
    growth = (peak - warm) / 1024
    summary = {
        "rss_start_mib": round(start_rss / 1024, 1), "rss_after_warmup_mib": round(warm / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1), "rss_last_mib": round(last / 1024, 1),
        "growth_after_warmup_mib": round(growth, 1), "hwm_mib": round(samples[-1]["hwm_kib"] / 1024, 1),
        "attempts": load.sent, "answers": {str(k): v for k, v in load.counts.items()},
        "minutes": args.minutes, "concurrency": args.concurrency,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "samples": samples}, f, indent=2)
    if load.errors:
        raise SystemExit(f"unexpected answers: {sorted(set(map(str, load.errors)))}")
    if growth > args.max_growth_mib:
        raise SystemExit(f"RSS grew {growth:.1f} MiB after warm-up (limit {args.max_growth_mib:g})")


if __name__ == "__main__":
    sys.exit(main())
