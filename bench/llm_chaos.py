#!/usr/bin/env python3
"""Chaos benchmark for `llm` routes: one target of a pool of three fails, then hangs, mid-run.

One run starts three tollgate-mock-upstream processes (targets t1, t2, t3, equal weights, one
model `gpt-4o-mini` on an `llm` route) and one `tollgate serve` on a fresh SQLite store, then
drives closed-loop chat completions from client threads for five phases:

  1. steady      all three targets answer;
  2. t2 killed   SIGKILL: connections refused and in-flight calls reset;
  3. t2 back     the process is started again on its port; its circuit's half-open probe (after
                 --cooldown-ms) lets it back in;
  4. t3 hangs    SIGSTOP: the kernel still accepts connections, nothing answers (a provider that
                 slows down to a stall); the route's timeout ends each attempt;
  5. t3 back     SIGCONT.

Per phase: calls, calls/s, the share of calls that failed as the client saw them, p50/p99.
Per fault: the time to shift (from the fault until the target's circuit was seen open, so new
calls no longer try it), the calls that failed or took longer than --slow-ms until the target
recovered (each half-open probe into a hung target costs one call the route's timeout), and the
time until the target answered
calls again after it recovered (tollgate's per-target attempt counters on /metrics, sampled every
100 ms). Writes a JSON
summary to bench/results/.

Servers run on one CPU and the clients on the other (taskset), as in bench/gateway.py.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import http.client
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as g  # noqa: E402 - the shared helpers: processes, ports, metrics, machine info

BODY = json.dumps({
    "model": "gpt-4o-mini",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Say hello to the chaos benchmark."}],
}).encode()


class Calls:
    """Every call's (start, end, ok) as the clients saw it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[float, float, bool]] = []

    def add(self, start: float, end: float, ok: bool) -> None:
        with self.lock:
            self.rows.append((start, end, ok))


def client_loop(port: int, key: str, stop_at: float, calls: Calls, timeout: float) -> None:
    conn = None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    while True:
        start = time.monotonic()
        if start >= stop_at:
            break
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.request("POST", "/llm/v1/chat/completions", body=BODY, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
        calls.add(start, time.monotonic(), ok)
    if conn is not None:
        conn.close()


def attempts_ok(console_port: int, target: str) -> float:
    values = g.metrics(console_port)
    return values.get(f'tollgate_gateway_llm_attempts_total{{target="{target}",outcome="ok"}}', 0.0)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", type=float, default=10, help="seconds per phase (default 10)")
    p.add_argument("--clients", type=int, default=16, help="client threads, closed loop (default 16)")
    p.add_argument("--timeout", default="2s", help="the llm route's upstream timeout (default 2s)")
    p.add_argument("--cooldown-ms", type=int, default=5000,
                   help="gateway.llm_circuit_cooldown_ms: how long an open circuit waits before its probe (default 5000)")
    p.add_argument("--slow-ms", type=float, default=500, help="a call slower than this counts as hurt (default 500)")
    p.add_argument("--server-cpu", default="0", help="CPU list for the servers (default 0)")
    p.add_argument("--load-cpu", default="1", help="CPU list for the clients (default 1)")
    p.add_argument("--ports", default="18140-18159", help="range to pick free ports from")
    p.add_argument("--bin-dir", help="take tollgate and the mock from this directory and build nothing "
                                     "(default: build and use target/release)")
    args = p.parse_args()

    if shutil.which("taskset") is None:
        raise g.BenchError("`taskset` is not installed")
    bin_dir = Path(args.bin_dir) if args.bin_dir else g.TARGET / "release"
    tollgate_bin, mock_bin = bin_dir / "tollgate", bin_dir / "tollgate-mock-upstream"
    if not args.bin_dir:
        import subprocess
        g.log("building release binaries: cargo build --release -p tollgate -p tollgate-mock-upstream")
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate", "-p", "tollgate-mock-upstream"],
                       cwd=g.ROOT, check=True)
    for binary in (tollgate_bin, mock_bin):
        if not binary.is_file():
            raise g.BenchError(f"{binary} does not exist")

    first, _, last = args.ports.partition("-")
    ports = g.pick_ports(int(first), int(last or first), 5)
    mock_ports, (gw_port, console_port) = ports[:3], ports[3:]
    run_dir = Path(tempfile.mkdtemp(prefix="tollgate-bench-chaos-"))
    atexit.register(shutil.rmtree, run_dir, True)
    # The clients are this process's threads: pin it to the load CPU.
    import os
    os.sched_setaffinity(0, {int(c) for c in args.load_cpu.split(",")})

    mocks: dict[str, object] = {}

    def start_mock(name: str, port: int):
        log = run_dir / f"{name}.log"
        proc = g.PROCS.start(name, g.pinned(args.server_cpu, [str(mock_bin), "--listen", f"127.0.0.1:{port}",
                                                               "--threads", "1"]), log=log)
        g.wait_for_port(port, proc, name, log)
        mocks[name] = proc
        return proc

    names = ["t1", "t2", "t3"]
    for name, port in zip(names, mock_ports):
        start_mock(name, port)

    env = g.tollgate_env(run_dir, gw_port, console_port)
    env["KEY"] = "sk-chaos-upstream"
    env["TOLLGATE_GATEWAY__LLM_CIRCUIT_COOLDOWN_MS"] = str(args.cooldown_ms)
    env["TOLLGATE_MASTER_KEY"] = "bench-chaos-master-key-0123456789abcdef01"  # seals the targets' credential
    cli = [str(tollgate_bin)]
    g.run(cli + ["migrate"], timeout=60, env=env, cwd=run_dir)
    for name, port in zip(names, mock_ports):
        g.run(cli + ["target", "add", name, "--provider", "openai_compatible", "--base-url",
                     f"http://127.0.0.1:{port}/v1", "--key-env", "KEY", "--json"], timeout=60, env=env, cwd=run_dir)
    model = [cli[0], "model", "add", "gpt-4o-mini", "--json"]
    for name in names:
        model += ["--target", name]
    g.run(model, timeout=60, env=env, cwd=run_dir)
    g.run(cli + ["route", "add", "--name", "llm", "--prefix", "/llm", "--kind", "llm", "--timeout", args.timeout,
                 "--json"], timeout=60, env=env, cwd=run_dir)
    key = json.loads(g.run(cli + ["key", "create", "--name", "chaos", "--json"], timeout=60, env=env,
                           cwd=run_dir))["key"]
    log = run_dir / "tollgate.log"
    server = g.PROCS.start("tollgate", g.pinned(args.server_cpu, cli + ["serve"]), log=log, env=env, cwd=run_dir)
    g.wait_for_port(gw_port, server, "tollgate", log)
    g.wait_for_port(console_port, server, "tollgate", log)

    calls = Calls()
    t0 = time.monotonic()
    stop_at = t0 + 5 * args.phase
    client_timeout = 30.0
    threads = [threading.Thread(target=client_loop, args=(gw_port, key, stop_at, calls, client_timeout), daemon=True)
               for _ in range(args.clients)]
    for t in threads:
        t.start()

    marks: dict[str, float] = {}
    samples: list[tuple[float, dict[str, float]]] = []
    circuits: list[tuple[float, dict[str, float]]] = []

    def watch() -> None:
        # The per-target answered attempts every 100 ms, to see when a recovered target is used.
        while time.monotonic() < stop_at:
            try:
                values = g.metrics(console_port)
                now = time.monotonic()
                samples.append((now, {n: values.get(
                    f'tollgate_gateway_llm_attempts_total{{target="{n}",outcome="ok"}}', 0.0) for n in names}))
                circuits.append((now, {n: values.get(f'tollgate_gateway_llm_circuit_open{{target="{n}"}}', 0.0)
                                       for n in names}))
            except (OSError, g.BenchError):
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    def wait_until(offset: float) -> None:
        time.sleep(max(0.0, t0 + offset - time.monotonic()))

    wait_until(args.phase)
    marks["t2 killed"] = time.monotonic()
    mocks["t2"].send_signal(signal.SIGKILL)
    mocks["t2"].wait()
    wait_until(2 * args.phase)
    marks["t2 back"] = time.monotonic()
    start_mock("t2", mock_ports[1])
    wait_until(3 * args.phase)
    marks["t3 hangs"] = time.monotonic()
    mocks["t3"].send_signal(signal.SIGSTOP)
    wait_until(4 * args.phase)
    marks["t3 back"] = time.monotonic()
    mocks["t3"].send_signal(signal.SIGCONT)
    for t in threads:
        t.join(timeout=client_timeout + 5)
    watcher.join(timeout=5)
    metrics = g.metrics(console_port)
    g.PROCS.stop(server)

    def used_again(target: str, since: float) -> float | None:
        """Seconds from `since` until the target's answered attempts grew again."""
        base = next((c[target] for t, c in samples if t >= since), None)
        if base is None:
            return None
        return next((t - since for t, c in samples if t >= since and c[target] > base), None)

    back_after = {"t2": used_again("t2", marks["t2 back"]), "t3": used_again("t3", marks["t3 back"])}

    bounds = [("steady", t0), ("t2 killed", marks["t2 killed"]), ("t2 back", marks["t2 back"]),
              ("t3 hangs", marks["t3 hangs"]), ("t3 back", marks["t3 back"])]
    phases = []
    for i, (name, start) in enumerate(bounds):
        end = bounds[i + 1][1] if i + 1 < len(bounds) else stop_at
        rows = [r for r in calls.rows if start <= r[0] < end]
        lat = sorted((r[1] - r[0]) * 1000 for r in rows)
        failed = sum(1 for r in rows if not r[2])
        phases.append({
            "phase": name, "calls": len(rows), "rps": len(rows) / (end - start) if end > start else 0.0,
            "failed": failed, "failed_share": failed / len(rows) if rows else None,
            "p50_ms": percentile(lat, 0.50), "p99_ms": percentile(lat, 0.99),
        })

    def opened_after(fault: str, target: str) -> float | None:
        """Seconds from the fault until the target's circuit was seen open (sampled every 100 ms)."""
        start = marks[fault]
        return next((t - start for t, c in circuits if t >= start and c[target] >= 1.0), None)

    def hurt(fault: str, until: float) -> int:
        """Calls started between the fault and the recovery that failed or took over --slow-ms."""
        start = marks[fault]
        return sum(1 for r in calls.rows
                   if start <= r[0] < until and (not r[2] or (r[1] - r[0]) * 1000 > args.slow_ms))

    shifts = {"t2 killed": opened_after("t2 killed", "t2"), "t3 hangs": opened_after("t3 hangs", "t3")}
    hurt_calls = {"t2 killed": hurt("t2 killed", marks["t2 back"]), "t3 hangs": hurt("t3 hangs", marks["t3 back"])}
    total = len(calls.rows)
    failed_total = sum(1 for r in calls.rows if not r[2])
    per_target = {k: v for k, v in metrics.items() if k.startswith("tollgate_gateway_llm_")}

    g.log(f"llm chaos: {args.clients} clients, phases of {args.phase:g} s, route timeout {args.timeout}, "
          f"circuit cooldown {args.cooldown_ms} ms")
    g.log(f"{'phase':<10} {'calls':>7} {'calls/s':>8} {'failed':>7} {'failed %':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for ph in phases:
        g.log(f"{ph['phase']:<10} {ph['calls']:>7} {ph['rps']:>8.0f} {ph['failed']:>7} "
              f"{100 * (ph['failed_share'] or 0):>8.2f}% {g.fmt(ph['p50_ms'], '.1f'):>8} {g.fmt(ph['p99_ms'], '.1f'):>8}")
    g.log(f"all: {total} calls, {failed_total} failed ({100 * failed_total / max(total, 1):.3f} %)")
    for fault, secs in shifts.items():
        g.log(f"'{fault}': circuit open {('%.0f ms' % (secs * 1000)) if secs is not None else 'never'} after the fault; "
              f"{hurt_calls[fault]} calls failed or took > {args.slow_ms:g} ms until it recovered")
    for target, secs in back_after.items():
        g.log(f"{target} used again {('%.0f ms' % (secs * 1000)) if secs is not None else 'never'} after it recovered")

    summary = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": g.machine_info(),
        "args": vars(args),
        "phases": phases,
        "calls": total,
        "failed": failed_total,
        "circuit_open_after_s": shifts,
        "hurt_calls": hurt_calls,
        "back_after_s": back_after,
        "metrics": per_target,
    }
    g.RESULTS.mkdir(parents=True, exist_ok=True)
    out = g.RESULTS / f"llm-chaos-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    g.log(f"summary written to {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except g.BenchError as e:
        print(f"llm_chaos: {e}", file=sys.stderr)
        sys.exit(1)
