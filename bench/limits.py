#!/usr/bin/env python3
"""Limits benchmark: what enforcing limits costs the gateway, embedded and with Redis.

One run starts tollgate-mock-upstream and three `tollgate serve` processes at once, on fresh
SQLite stores, each with an `openai` route to the mock and one key:
  1. no limits;
  2. embedded (in-process counters): the key has a generous rate limit (10^9 requests a minute)
     and a token budget (10^12 tokens a month), so every call is admitted, estimated (its prompt
     counted with the BPE vocabulary), reserved and settled;
  3. the same limits with every counter in Redis (`TOLLGATE_REDIS_URL`, default
     redis://127.0.0.1:6379, a namespace of its own).
Each is measured with oha, closed loop (POST /v1/chat/completions, a small JSON body), in rounds;
the cost is the median over rounds of each round's throughput against the no-limits run of the
same round. By default the three run at once (`--mode simultaneous`), each with its own oha, all
servers on one CPU: the scheduler gives each the same share of it, so each one's calls a second
follow its cost per call, and a machine whose speed drifts (other work, frequency; one after the
other, 5-second runs of the same server differed by up to 30 % here) slows all of them alike.
`--mode interleaved` runs them one after the other instead, the order turning each round. The
admission p99 comes from tollgate's `tollgate_limit_admit_duration_seconds` histogram (the
upper bound of the bucket holding the 99th percentile). It prints a table and writes a JSON
summary to bench/results/.

Targets of the limits issue: throughput cost ≤ 5 % embedded and ≤ 15 % with Redis; admission
p99 ≤ 100 µs embedded and ≤ 1 ms with Redis.

Servers run on one CPU and the load generator on the other (taskset). The limits are written
straight into the store (the table the limits API writes), so the script needs no console login.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import statistics
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as g  # noqa: E402 - the shared helpers: processes, ports, metrics, machine info

TARGET_COST_EMBEDDED = 0.05
TARGET_COST_REDIS = 0.15
TARGET_P99_EMBEDDED_US = 100.0
TARGET_P99_REDIS_US = 1000.0

BODY = json.dumps({
    "model": "gpt-4o-mini",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Say hello to the benchmark in one short sentence."}],
})


def add_limits(db: Path, key_id: int) -> None:
    """A generous rate limit and a token budget on the key, as the limits API stores them."""
    now = int(time.time() * 1000)
    specs = [
        {"kind": {"type": "requests", "per": "minute", "max": 1_000_000_000}},
        {"kind": {"type": "token_budget", "max": 1_000_000_000_000, "period": "month"}},
    ]
    with sqlite3.connect(db) as conn:
        for spec in specs:
            conn.execute(
                "INSERT INTO limits (key_id, spec, created_by, created_at, updated_at) VALUES (?, ?, 'bench', ?, ?)",
                (key_id, json.dumps(spec), now, now),
            )


def oha_closed(args, port: int, key: str) -> dict:
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{args.duration:g}s", "-c", str(args.connections),
            "-m", "POST", "-T", "application/json", "-d", BODY, "-H", f"Authorization: Bearer {key}",
            f"http://127.0.0.1:{port}/oai/v1/chat/completions"]
    doc = json.loads(g.run(g.pinned(args.load_cpu, argv), timeout=args.duration + 30))
    codes = {str(k): v for k, v in doc.get("statusCodeDistribution", {}).items()}
    bad = {k: v for k, v in codes.items() if not k.startswith("2")}
    if bad or not codes:
        raise g.BenchError(f"oha: status codes {codes}, errors {doc.get('errorDistribution')}")
    pct = doc["latencyPercentiles"]
    return {
        "requests": sum(codes.values()),
        "rps": doc["summary"]["requestsPerSec"],
        "p50_ms": pct["p50"] * 1000,
        "p99_ms": pct["p99"] * 1000,
    }


def oha_rate(args, port: int, key: str) -> dict:
    """Open loop at a fixed rate, with latency correction: the decision's cost when the server is
    not saturated (a closed loop measures queueing behind a full CPU as well)."""
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{args.rate_duration:g}s", "-q", str(args.rate),
            "--latency-correction", "-c", str(args.connections), "-m", "POST", "-T", "application/json",
            "-d", BODY, "-H", f"Authorization: Bearer {key}", f"http://127.0.0.1:{port}/oai/v1/chat/completions"]
    doc = json.loads(g.run(g.pinned(args.load_cpu, argv), timeout=args.rate_duration + 30))
    codes = {str(k): v for k, v in doc.get("statusCodeDistribution", {}).items()}
    if any(not k.startswith("2") for k in codes) or not codes:
        raise g.BenchError(f"oha at a fixed rate: status codes {codes}, errors {doc.get('errorDistribution')}")
    return {"rps": doc["summary"]["requestsPerSec"], "p99_ms": doc["latencyPercentiles"]["p99"] * 1000}


def admit_p99_us(values: dict[str, float], backend: str, before: dict[str, float] | None = None) -> float | None:
    """Upper bound (µs) of the histogram bucket holding the 99th percentile of admissions (of
    those since `before`, when given)."""
    prefix = "tollgate_limit_admit_duration_seconds_bucket{"
    buckets = []
    for name, count in values.items():
        if name.startswith(prefix) and f'backend="{backend}"' in name:
            le = name.split('le="', 1)[1].split('"', 1)[0]
            if before is not None:
                count -= before.get(name, 0.0)
            buckets.append((float("inf") if le == "+Inf" else float(le), count))
    if not buckets:
        return None
    buckets.sort()
    total = buckets[-1][1]
    if total == 0:
        return None
    for le, count in buckets:
        if count >= 0.99 * total:
            return le * 1e6
    return None


class Server:
    """One `tollgate serve` of a scenario, started once and measured over several rounds."""

    def __init__(self, args, name: str, tollgate_bin: Path, run_dir: Path, ports: list[int], mock_port: int,
                 limits: bool, redis_url: str | None):
        self.name, self.limits = name, limits
        self.gw_port, self.console_port = ports
        self.backend = "redis" if redis_url else "local"
        sdir = run_dir / name
        sdir.mkdir()
        env = g.tollgate_env(sdir, self.gw_port, self.console_port)
        if redis_url:
            env["TOLLGATE_REDIS_URL"] = redis_url
            env["TOLLGATE_LIMITS__NAMESPACE"] = f"bench-{uuid.uuid4().hex[:12]}"
        cli = [str(tollgate_bin)]
        g.run(cli + ["migrate"], timeout=60, env=env, cwd=sdir)  # only serve and migrate create a store
        g.run(cli + ["route", "add", "--name", "oai", "--prefix", "/oai", "--kind", "openai", "--upstream",
                     f"http://127.0.0.1:{mock_port}", "--strip-prefix"], timeout=60, env=env, cwd=sdir)
        created = json.loads(g.run(cli + ["key", "create", "--name", "bench", "--json"], timeout=60, env=env,
                                   cwd=sdir))
        self.key = created["key"]
        if limits:
            add_limits(sdir / "tollgate-data" / "tollgate.db", int(created["id"]))
        log = sdir / "tollgate.log"
        self.proc = g.PROCS.start(name, g.pinned(args.server_cpu, cli + ["serve"]), log=log, env=env, cwd=sdir)
        g.wait_for_port(self.gw_port, self.proc, name, log)
        g.wait_for_port(self.console_port, self.proc, name, log)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far (all its threads, the usage writer
        and SQLite's included)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def closed(self, args) -> dict:
        before = self.cpu_seconds()
        result = oha_closed(args, self.gw_port, self.key)
        # CPU per call: what the server spent, whatever else the machine did meanwhile (the
        # mock and the load generator are other processes), so steadier than calls a second.
        result["cpu_us_per_call"] = (self.cpu_seconds() - before) / max(result["requests"], 1) * 1e6
        return result

    def at_rate(self, args) -> dict:
        before = g.metrics(self.console_port)
        result = oha_rate(args, self.gw_port, self.key)
        after = g.metrics(self.console_port)
        result["admit_p99_us"] = admit_p99_us(after, self.backend, before) if self.limits else None
        return result

    def admission_figures(self) -> dict:
        values = g.metrics(self.console_port)
        return {
            "admit_p99_us": admit_p99_us(values, self.backend) if self.limits else None,
            "admissions": values.get(f'tollgate_limit_admit_duration_seconds_count{{backend="{self.backend}"}}'),
            "leased_admissions": values.get("tollgate_limit_leased_admissions_total"),
            "degraded": values.get("tollgate_limits_degraded"),
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5, help="seconds per measured run (default 5)")
    p.add_argument("--rounds", type=int, default=6, help="rounds of every scenario (default 6)")
    p.add_argument("--mode", choices=("simultaneous", "interleaved"), default="simultaneous",
                   help="simultaneous: all scenarios under load at once, sharing the server CPU (default); "
                        "interleaved: one after the other, the order turning each round")
    p.add_argument("--warmup", type=float, default=2, help="seconds of unrecorded warm-up per scenario (default 2)")
    p.add_argument("--connections", type=int, default=32, help="oha connections (default 32)")
    p.add_argument("--rate", type=int, default=1000, help="fixed rate for the admission latency, req/s (0: skip)")
    p.add_argument("--rate-duration", type=float, default=10, help="seconds at the fixed rate (default 10)")
    p.add_argument("--server-cpu", default="0", help="CPU list for the servers (default 0)")
    p.add_argument("--load-cpu", default="1", help="CPU list for the load generator (default 1)")
    p.add_argument("--ports", default="18100-18119", help="range to pick free ports from")
    p.add_argument("--redis-url", default=os.environ.get("TOLLGATE_REDIS_URL", "redis://127.0.0.1:6379"))
    p.add_argument("--no-redis", action="store_true", help="skip the Redis scenario")
    p.add_argument("--bin-dir", help="take tollgate and the mock from this directory and build nothing "
                                     "(default: build and use target/release)")
    args = p.parse_args()

    for tool in ("oha", "taskset"):
        if shutil.which(tool) is None:
            raise g.BenchError(f"`{tool}` is not installed")
    bin_dir = Path(args.bin_dir) if args.bin_dir else g.TARGET / "release"
    tollgate_bin, mock_bin = bin_dir / "tollgate", bin_dir / "tollgate-mock-upstream"
    if not args.bin_dir:
        g.log("building release binaries: cargo build --release -p tollgate -p tollgate-mock-upstream")
        import subprocess
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate", "-p", "tollgate-mock-upstream"],
                       cwd=g.ROOT, check=True)
    for binary in (tollgate_bin, mock_bin):
        if not binary.is_file():
            raise g.BenchError(f"{binary} does not exist")

    first, _, last = args.ports.partition("-")
    mock_port, *server_ports = g.pick_ports(int(first), int(last or first), 7)
    run_dir = Path(tempfile.mkdtemp(prefix="tollgate-bench-limits-"))
    atexit.register(shutil.rmtree, run_dir, True)
    summary: dict = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": g.machine_info(),
        "config": {"mode": args.mode, "duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds,
                   "connections": args.connections, "server_cpu": args.server_cpu, "load_cpu": args.load_cpu,
                   "body": BODY},
        "scenarios": {},
    }
    mock_log = run_dir / "mock.log"
    mock = g.PROCS.start("mock", g.pinned(args.server_cpu, [str(mock_bin), "--listen", f"127.0.0.1:{mock_port}"]),
                         log=mock_log)
    g.wait_for_port(mock_port, mock, "tollgate-mock-upstream", mock_log)
    # All servers are started once and measured in rounds (see --mode), so a machine that drifts
    # during the run moves every scenario alike.
    plan = [("none", False, None), ("embedded", True, None)]
    if not args.no_redis:
        plan.append(("redis", True, args.redis_url))
    servers = {}
    for i, (name, limits, redis_url) in enumerate(plan):
        servers[name] = Server(args, name, tollgate_bin, run_dir, server_ports[2 * i:2 * i + 2], mock_port,
                               limits, redis_url)
    names = list(servers)
    if args.warmup > 0:
        warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
        for name in names:
            servers[name].closed(warm)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.rounds):
        if args.mode == "simultaneous":
            # Every scenario under load at once, each server with its own load generator: the
            # servers share the server CPU fairly, so each one's calls a second follow its own
            # cost per call, and whatever else the machine does slows all of them alike.
            with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
                futures = {name: pool.submit(servers[name].closed, args) for name in names}
                for name in names:
                    runs[name].append(futures[name].result())
        else:
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                runs[name].append(servers[name].closed(args))
        g.log(f"  round {r + 1}/{args.rounds}: " + "  ".join(
            f"{name} {runs[name][-1]['rps']:,.0f} req/s {runs[name][-1]['cpu_us_per_call']:.1f} µs CPU/call"
            for name in names))
    s = summary["scenarios"]
    for name in names:
        rps = sorted(run["rps"] for run in runs[name])
        cpu = sorted(run["cpu_us_per_call"] for run in runs[name])
        s[name] = {"runs": runs[name], "rps": statistics.median(rps), "rps_min": rps[0], "rps_max": rps[-1],
                   "cpu_us_per_call": statistics.median(cpu), **servers[name].admission_figures()}
        if args.rate > 0:
            s[name]["at_rate"] = servers[name].at_rate(args)
    for name in names:
        g.PROCS.stop(servers[name].proc)

    checks = {}
    for name, cost_target, p99_target in (("embedded", TARGET_COST_EMBEDDED, TARGET_P99_EMBEDDED_US),
                                          ("redis", TARGET_COST_REDIS, TARGET_P99_REDIS_US)):
        if name not in s:
            continue
        # The cost of each round against the no-limits run of the same round; the median of those.
        per_round = sorted(1 - a["rps"] / b["rps"] for a, b in zip(runs[name], runs["none"], strict=True))
        cost = statistics.median(per_round)
        # The same from CPU per call: the capacity a CPU-bound server loses, round by round.
        cpu_round = sorted(a["cpu_us_per_call"] / b["cpu_us_per_call"] - 1
                           for a, b in zip(runs[name], runs["none"], strict=True))
        cpu_cost = statistics.median(cpu_round)
        # The decision's latency at a fixed rate; under a saturating closed loop it also holds
        # the wait for a CPU busy with other calls (reported beside it).
        saturated = s[name]["admit_p99_us"]
        p99 = s[name].get("at_rate", {}).get("admit_p99_us", saturated)
        checks[name] = {
            "throughput_cost": round(cost, 4), "cost_per_round": [round(c, 4) for c in per_round],
            "cpu_cost": round(cpu_cost, 4), "cpu_cost_per_round": [round(c, 4) for c in cpu_round],
            "cost_target": cost_target, "cost_ok": cost <= cost_target,
            "admit_p99_us": p99, "admit_p99_us_saturated": saturated, "p99_target_us": p99_target,
            "p99_ok": p99 is not None and p99 <= p99_target,
        }
        print(f"{name:<10} throughput cost {cost * 100:5.1f} % median of {len(per_round)} rounds "
              f"({per_round[0] * 100:.1f} … {per_round[-1] * 100:.1f} %; target ≤ {cost_target * 100:.0f} %); "
              f"CPU per call +{cpu_cost * 100:.1f} % ({cpu_round[0] * 100:.1f} … {cpu_round[-1] * 100:.1f} %)\n"
              f"{'':<11}"
              f"admission p99 ≤ {p99 or 0:.0f} µs at {args.rate} req/s (target ≤ {p99_target:.0f} µs; "
              f"≤ {saturated or 0:.0f} µs saturated)")
    summary["checks"] = checks
    g.RESULTS.mkdir(exist_ok=True)
    out = g.RESULTS / f"limits-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    g.log(f"summary written to {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except g.BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        sys.exit(2)
