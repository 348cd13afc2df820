#!/usr/bin/env python3
"""Instructions (valgrind callgrind) one gateway call costs `tollgate serve` with no limits, with
the limits of bench/limits.py counted in the process, and with them in Redis: repeatable
whatever else the machine runs, unlike throughput on a shared machine.

  python3 bench/limits_callgrind.py BIN_DIR [N] [--redis-url URL]

BIN_DIR holds release builds of tollgate and tollgate-mock-upstream. For each scenario the
server runs under callgrind (the mock does not); after CG_SETTLE seconds (default 20) and 50
warm-up calls, counting is switched on for N calls (default 2000) made one after another over
one keep-alive connection, and the instructions are divided by N. Background work of the server
during those calls (the lease flusher, the usage writer) is counted with them, and also shown
apart (see PARTS): the comparison without the writer is the one that holds from run to run. A fourth scenario
turns Redis leases off (`limits.redis_lease_calls = 0`: every call decided in Redis). CG_KEEP=1
keeps the callgrind files for callgrind_annotate.
"""
from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as g  # noqa: E402
import limits as L  # noqa: E402


# Parts of the count reported apart (inclusive instructions of these functions):
# - the usage writer (its task and SQLite's thread): it writes the same events in every scenario,
#   but under callgrind each call takes milliseconds, so its batches are small and their size
#   follows the machine's load, which moved the whole count by ±6 % between runs;
# - the Redis lease flusher, which runs on a 10 ms timer while blocks have work: per call it is
#   counted ~50 times more often than at real speed, where one flush covers a hundred calls.
# Each part is a list of alternatives (how the build inlined the function), each a tuple of
# strings that must all occur in the function's line.
PARTS = {
    "writer": [("sqlx-sqlite", "worker.rs:std::sys::backtrace::__rust_begin_short_backtrace"),
               ("worker.rs:sqlx_sqlite::connection::worker::ConnectionWorker::establish::{{closure}}::{{closure}}",)],
    "writer_task": [("writer.rs:tollgate_gateway::writer::WriterTask::run::{{closure}}",)],
    "flusher": [("tollgate_limits::counters::redis::spawn_flusher::{{closure}}",)],
}


def inclusive(path: str, parts: dict[str, list[tuple[str, ...]]]) -> dict[str, float]:
    """Inclusive instructions of the functions named by `parts` (every string of one alternative
    must occur in the function's line of callgrind_annotate), 0 when a function did not run."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    got = {k: 0.0 for k in parts}
    for line in text.splitlines():
        line = line.strip()
        if not line or not line[0].isdigit() or "=>" in line or "<" in line.split("%)", 1)[-1][:4]:
            continue
        for k, alternatives in parts.items():
            if got[k] == 0.0 and any(all(x in line for x in needles) for needles in alternatives):
                got[k] = float(line.split()[0].replace(",", ""))
    return got


def scenario(bin_dir: Path, run_dir: Path, name: str, mock_port: int, limits: bool, redis_url: str | None,
             n: int, extra_env: dict[str, str]) -> float:
    tollgate = str(bin_dir / "tollgate")
    gw, console = g.pick_ports(18140, 18199, 2)
    sdir = run_dir / name
    sdir.mkdir()
    env = g.tollgate_env(sdir, gw, console)
    if redis_url:
        env["TOLLGATE_REDIS_URL"] = redis_url
        env["TOLLGATE_LIMITS__NAMESPACE"] = f"bench-{uuid.uuid4().hex[:12]}"
    env.update(extra_env)
    g.run([tollgate, "migrate"], timeout=60, env=env, cwd=sdir)
    g.run([tollgate, "route", "add", "--name", "oai", "--prefix", "/oai", "--kind", "openai", "--upstream",
           f"http://127.0.0.1:{mock_port}", "--strip-prefix"], timeout=60, env=env, cwd=sdir)
    key = json.loads(g.run([tollgate, "key", "create", "--name", "bench", "--json"], timeout=60, env=env, cwd=sdir))
    if limits:
        L.add_limits(sdir / "tollgate-data" / "tollgate.db", int(key["id"]))
    out = sdir / "cg"
    out.mkdir()
    log = open(sdir / "valgrind.log", "w")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                          f"--callgrind-out-file={out}/cg.%p", tollgate, "serve"],
                         env=env, cwd=sdir, stdout=subprocess.DEVNULL, stderr=log)
    try:
        g.wait_for_port(gw, p, name, sdir / "valgrind.log", timeout=300)
        time.sleep(float(os.environ.get("CG_SETTLE", "20")))
        conn = http.client.HTTPConnection("127.0.0.1", gw, timeout=60)
        headers = {"Authorization": f"Bearer {key['key']}", "Content-Type": "application/json"}

        def call() -> None:
            conn.request("POST", "/oai/v1/chat/completions", body=L.BODY, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise g.BenchError(f"{name}: status {r.status}")

        for _ in range(50):
            call()
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True)
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True)
        for _ in range(n):
            call()
        subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True)
        subprocess.run(["callgrind_control", "-d", name, str(p.pid)], capture_output=True)
        time.sleep(1)
        files = sorted(glob.glob(f"{out}/cg.*"), key=os.path.getmtime)
        total = 0
        for line in open(files[-1]):
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
        parts = inclusive(files[-1], PARTS)
        return {"total": total / n, **{k: v / n for k, v in parts.items()}}
    finally:
        p.terminate()
        p.wait()


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    redis_url = "redis://127.0.0.1:6379"
    if "--redis-url" in sys.argv:
        redis_url = sys.argv[sys.argv.index("--redis-url") + 1]
        args = [a for a in args if a != redis_url]
    bin_dir = Path(args[0])
    n = int(args[1]) if len(args) > 1 else 2000
    run_dir = Path(tempfile.mkdtemp(prefix="tollgate-cg-limits-"))
    mock_port = g.pick_ports(18130, 18139, 1)[0]
    mock_log = run_dir / "mock.log"
    mock = g.PROCS.start("mock", [str(bin_dir / "tollgate-mock-upstream"), "--listen", f"127.0.0.1:{mock_port}"],
                         log=mock_log)
    try:
        g.wait_for_port(mock_port, mock, "tollgate-mock-upstream", mock_log)
        got = {}
        scenarios = (
            ("none", False, None, {}),
            ("embedded", True, None, {}),
            ("redis", True, redis_url, {}),
            # Every call decided in Redis, as before leases: what they save.
            ("redis-per-call", True, redis_url, {"TOLLGATE_LIMITS__REDIS_LEASE_CALLS": "0"}),
        )
        for name, limits, redis, extra in scenarios:
            got[name] = scenario(bin_dir, run_dir, name, mock_port, limits, redis, n, extra)
            c = got[name]
            print(f"{name:14s} {c['total'] / 1e3:9.1f} k instructions/call; usage writer "
                  f"{(c['writer'] + c['writer_task']) / 1e3:.1f} k, lease flusher {c['flusher'] / 1e3:.1f} k",
                  flush=True)

        def serving(c: dict) -> float:
            return c["total"] - c["writer"] - c["writer_task"]

        print("\nover no limits:      all counted  without the writer  without writer and flusher")
        for name in ("embedded", "redis", "redis-per-call"):
            c, base = got[name], got["none"]
            print(f"{name:14s} {(c['total'] / base['total'] - 1) * 100:+11.1f} %"
                  f" {(serving(c) / serving(base) - 1) * 100:+18.1f} %"
                  f" {((serving(c) - c['flusher']) / serving(base) - 1) * 100:+26.1f} %")
        if os.environ.get("CG_JSON"):
            Path(os.environ["CG_JSON"]).write_text(json.dumps(got, indent=2))
    finally:
        g.PROCS.stop(mock)
        if os.environ.get("CG_KEEP"):
            print(f"callgrind files kept in {run_dir}/*/cg")
        else:
            shutil.rmtree(run_dir, True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
