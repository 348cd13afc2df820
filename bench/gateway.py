#!/usr/bin/env python3
"""Gateway benchmark: a fast upstream directly, nginx proxy_pass to it, and tollgate in front of it.

One run measures, on this machine:
  1. plain JSON: requests/s and p50/p99 (wrk, closed loop) for (a) nginx answering a static JSON
     body, (b) nginx proxy_pass to (a) with upstream keep-alive, (c) tollgate with a key, a route
     to (a) and usage logging to SQLite;
  2. the same for an SSE stream from tollgate-mock-upstream (`GET /sse`, 20 events);
  3. p99 added over direct at a fixed rate (oha, open loop with latency correction);
  4. tollgate's RSS idle and under load, and its usage counters (dropped must be 0).
It prints a table and writes a JSON summary to bench/results/. See bench/README.md.

Servers run on one CPU and the load generator on the other (taskset), so they do not fight for a
core. Every process the script starts is stopped when it exits, however it exits.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WRK_LUA = BENCH / "wrk-report.lua"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

# Targets.
TARGET_THROUGHPUT_RATIO = 1.0
TARGET_P99_ADDED_MS = 1.0
TARGET_RSS_IDLE_MB = 20.0
TARGET_RSS_LOAD_MB = 100.0


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# Processes: everything started here is registered and stopped on exit.


class Processes:
    """The servers this script started, stopped on exit in reverse order."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.lock = threading.Lock()

    def start(self, name: str, argv: list[str], *, log: Path, **kwargs) -> subprocess.Popen:
        out = open(log, "wb")  # noqa: SIM115 - kept open for the life of the process
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **kwargs,
        )
        with self.lock:
            self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signals the process, waits, then kills its whole process group (nginx workers too)."""
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        # The group was created by start_new_session for this process alone.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return proc.returncode

    def stop_all(self) -> None:
        with self.lock:
            procs = list(reversed(self.procs))
            self.procs.clear()
        for _, proc in procs:
            self.stop(proc, timeout=5.0)


PROCS = Processes()
atexit.register(PROCS.stop_all)


def _on_signal(signum, _frame):
    # Raising makes atexit run, so the servers are stopped on Ctrl-C or kill too.
    raise SystemExit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


# ---------------------------------------------------------------------------------------------
# Small helpers.


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(first: int, last: int, count: int) -> list[int]:
    ports = [p for p in range(first, last + 1) if port_is_free(p)][:count]
    if len(ports) < count:
        raise BenchError(f"need {count} free ports in {first}-{last}, found {len(ports)}")
    return ports


def wait_for_port(port: int, proc: subprocess.Popen, name: str, logfile: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with code {proc.returncode} before listening:\n{tail(logfile)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f} s:\n{tail(logfile)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_get(port: int, path: str, headers: dict[str, str], timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from e
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` exited with {done.returncode}:\n{done.stderr.strip()}\n{done.stdout.strip()}")
    return done.stdout


def first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def render(template: Path, dest: Path, values: dict[str, str]) -> Path:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise BenchError(f"{template}: unfilled placeholders {sorted(set(leftover))}")
    dest.write_text(text)
    return dest


def machine_info() -> dict:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def tool_versions() -> dict:
    return {
        "wrk": first_line(["wrk", "-v"]),
        "oha": first_line(["oha", "--version"]),
        "nginx": first_line(["nginx", "-v"]),
        "rustc": first_line(["rustc", "--version"]),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------------------------
# Load generators.


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv]


def wrk(args, url: str, headers: dict[str, str], duration: float) -> dict:
    """One closed-loop wrk run; returns rps and latencies in ms. Refuses runs with bad answers."""
    argv = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{duration:g}s",
            "--timeout", "5s", "-s", str(WRK_LUA)]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(url)
    out = run(pinned(args.load_cpu, argv), timeout=duration + 30)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no summary for {url}:\n{out}")
    raw = json.loads(line[len("WRK_JSON "):])
    errors = raw["errors"]
    if raw["requests"] == 0:
        raise BenchError(f"wrk completed no request against {url}:\n{out}")
    if errors["status"]:
        raise BenchError(f"{errors['status']} answers outside 2xx/3xx from {url} (of {raw['requests']})")
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "mb_per_s": raw["bytes"] / (raw["duration_us"] / 1e6) / 1e6,
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000,
        "max_ms": lat["max"] / 1000,
        "socket_errors": {k: v for k, v in errors.items() if k != "status" and v},
    }


def oha(args, url: str, headers: dict[str, str]) -> dict:
    """One open-loop oha run at a fixed rate with latency correction; latencies in ms."""
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{args.rate_duration:g}s", "-q", str(args.rate),
            "-c", str(args.rate_connections), "--latency-correction"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(url)
    out = run(pinned(args.load_cpu, argv), timeout=args.rate_duration + 30)
    doc = json.loads(out)
    codes = {str(k): v for k, v in doc.get("statusCodeDistribution", {}).items()}
    bad = {k: v for k, v in codes.items() if not k.startswith("2")}
    if bad or not codes:
        raise BenchError(f"oha against {url}: status codes {codes}, errors {doc.get('errorDistribution')}")
    pct = doc["latencyPercentiles"]
    total = sum(codes.values())
    return {
        "requests": total,
        "rps": doc["summary"]["requestsPerSec"],
        "p50_ms": pct["p50"] * 1000,
        "p90_ms": pct["p90"] * 1000,
        "p99_ms": pct["p99"] * 1000,
        "p999_ms": pct.get("p99.9", float("nan")) * 1000,
        "errors": doc.get("errorDistribution", {}),
    }


def measure(args, name: str, url: str, headers: dict[str, str]) -> dict:
    """Warm-up, then `repeat` measured wrk runs; the run with the median rps is reported."""
    sent = 0
    if args.warmup > 0:
        sent += wrk(args, url, headers, args.warmup)["requests"]
    runs = [wrk(args, url, headers, args.duration) for _ in range(args.repeat)]
    sent += sum(r["requests"] for r in runs)
    runs.sort(key=lambda r: r["rps"])
    best = dict(runs[len(runs) // 2])
    best["requests_including_warmup"] = sent
    if len(runs) > 1:
        best["rps_all_runs"] = [round(r["rps"]) for r in runs]
    log(f"  {name:<28} {best['rps']:>10.0f} req/s  p50 {best['p50_ms']:.3f} ms  p99 {best['p99_ms']:.3f} ms")
    return best


# ---------------------------------------------------------------------------------------------
# RSS of tollgate.


def rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields


class RssSampler:
    """Samples VmRSS every 50 ms in a thread and keeps the maximum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.max_kib = max(self.max_kib, rss_kib(self.pid)["VmRSS"])
                self.samples += 1
            except (OSError, KeyError):
                return
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# The servers.


def start_nginx(args, run_dir: Path, name: str, template: str, values: dict[str, str], port: int) -> subprocess.Popen:
    conf = render(BENCH / "nginx" / template, run_dir / f"{name}.conf", values)
    logfile = run_dir / f"{name}.log"
    # Check the rendered file first so a typo is a clear message, not a silent exit.
    run(["nginx", "-t", "-q", "-p", str(run_dir), "-c", str(conf)], timeout=20)
    proc = PROCS.start(name, pinned(args.server_cpu, ["nginx", "-p", str(run_dir), "-c", str(conf)]), log=logfile)
    wait_for_port(port, proc, name, logfile)
    return proc


def nginx_workers(master_pid: int) -> int:
    try:
        out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return -1
    return len(out.split())


def add_bench_routes(cli: list[str], env: dict[str, str], run_dir: Path, up_port: int, mock_port: int,
                     mock_scheme: str = "http") -> None:
    """Makes the store (only `serve` and `migrate` create one; the route and key commands need it)
    and adds the two `http` routes the gateway benchmarks call: `/up` to the JSON upstream (nginx)
    and `/sse-up` to the mock's streams (over TLS with `mock_scheme="https"`)."""
    run(cli + ["migrate"], timeout=60, env=env, cwd=run_dir)
    run(cli + ["route", "add", "--name", "up", "--prefix", "/up", "--upstream", f"http://127.0.0.1:{up_port}",
               "--strip-prefix"], timeout=60, env=env, cwd=run_dir)
    run(cli + ["route", "add", "--name", "sse", "--prefix", "/sse-up", "--upstream", f"{mock_scheme}://127.0.0.1:{mock_port}",
               "--strip-prefix"], timeout=60, env=env, cwd=run_dir)


def tollgate_env(run_dir: Path, gateway_port: int, console_port: int) -> dict[str, str]:
    # A clean TOLLGATE_* environment: the caller's settings must not leak into the measurement.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update({
        "TOLLGATE_DATA_DIR": str(run_dir / "tollgate-data"),
        "TOLLGATE_GATEWAY_LISTEN": f"127.0.0.1:{gateway_port}",
        "TOLLGATE_CONSOLE_LISTEN": f"127.0.0.1:{console_port}",
        "TOLLGATE_LOG_LEVEL": "warn",
    })
    return env


def metrics(console_port: int) -> dict[str, float]:
    status, _, body = http_get(console_port, "/metrics", {})
    if status != 200:
        raise BenchError(f"GET /metrics on the console answered {status}: {body[:300]!r}")
    values: dict[str, float] = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


# ---------------------------------------------------------------------------------------------
# Output.


def fmt(v, spec: str = ".0f") -> str:
    return "—" if v is None else format(v, spec)


def ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    if not a or not b or not b.get(key):
        return None
    return a[key] / b[key]


def print_table(summary: dict) -> None:
    print()
    for section, title in (("json", "Plain JSON (wrk, closed loop)"), ("sse", f"SSE stream, {summary['config']['sse_chunks']} events (wrk, closed loop)")):
        rows = summary["closed_loop"].get(section, {})
        if not rows:
            continue
        print(f"{title}: {summary['config']['connections']} connections, {summary['config']['duration_s']:g} s")
        print(f"  {'target':<26}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}")
        for name, r in rows.items():
            print(f"  {name:<26}{r['rps']:>10.0f}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{r['p999_ms']:>10.3f}")
        rt = summary["ratios"].get(section, {})
        if rt:
            print(f"  tollgate / nginx proxy: throughput {fmt(rt.get('throughput'), '.2f')}x, p99 {fmt(rt.get('p99'), '.2f')}x")
        print()
    fixed = summary.get("fixed_rate")
    if fixed:
        print(f"Fixed rate (oha -q {summary['config']['rate']} for {summary['config']['rate_duration_s']:g} s, "
              f"{summary['config']['rate_connections']} connections, latency correction; "
              f"median of {summary['config']['rate_rounds']} interleaved rounds)")
        print(f"  {'target':<26}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'p99 added':>11}")
        for name, r in fixed["runs"].items():
            added = fixed["p99_added_ms"].get(name)
            print(f"  {name:<26}{r['rps']:>10.0f}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{fmt(added, '>+11.3f') if added is not None else '':>11}")
        print()
    tg = summary.get("tollgate")
    if tg:
        rss = tg["rss_mib"]
        print("tollgate memory (MiB)")
        print(f"  idle after start {rss['idle_after_start']:.1f}, idle after one request {rss['idle_after_one_request']:.1f}, "
              f"peak sampled {rss['load_peak_sampled']:.1f}, VmHWM {rss['vm_hwm']:.1f}")
        print(f"usage events: written {fmt(tg['usage_events_written'])}, dropped {fmt(tg['usage_events_dropped'])}, "
              f"requests sent through tollgate ≥ {tg['requests_sent']}")
        print()
    checks = summary.get("targets", {})
    if checks:
        print("Targets")
        for name, c in checks.items():
            verdict = "n/a" if c["pass"] is None else ("PASS" if c["pass"] else "MISS")
            print(f"  {verdict:<5} {name}: {c['value']} (target {c['target']})")
        print()


def check_targets(summary: dict) -> dict:
    out = {}

    def add(name, value, target, ok, unit=""):
        out[name] = {"value": None if value is None else f"{value:.3f}{unit}".rstrip("0").rstrip("."), "target": target,
                     "pass": None if value is None else ok(value)}

    rt = summary["ratios"]
    add("JSON throughput tollgate/nginx-proxy", rt.get("json", {}).get("throughput"), "≥ 1.0", lambda v: v >= TARGET_THROUGHPUT_RATIO)
    add("SSE throughput tollgate/nginx-proxy", rt.get("sse", {}).get("throughput"), "≥ 1.0", lambda v: v >= TARGET_THROUGHPUT_RATIO)
    fixed = summary.get("fixed_rate") or {}
    add("p99 added over direct (ms)", fixed.get("p99_added_ms", {}).get("c. tollgate"), "≤ 1 ms", lambda v: v <= TARGET_P99_ADDED_MS)
    tg = summary.get("tollgate") or {}
    rss = tg.get("rss_mib") or {}
    add("RSS idle (MiB)", rss.get("idle_after_one_request"), "≤ 20", lambda v: v <= TARGET_RSS_IDLE_MB)
    add("RSS peak under load (MiB)", rss.get("vm_hwm"), "≤ 100", lambda v: v <= TARGET_RSS_LOAD_MB)
    dropped = tg.get("usage_events_dropped")
    add("usage events dropped", dropped, "0", lambda v: v == 0)
    return out


# ---------------------------------------------------------------------------------------------
# The benchmark.


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="seconds per measured wrk run (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of unrecorded wrk warm-up per target (default 2)")
    p.add_argument("--repeat", type=int, default=1, help="measured wrk runs per target; the median is reported")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: it has one core)")
    p.add_argument("--rate", type=int, default=1000, help="fixed rate for the p99-added runs, req/s (default 1000)")
    p.add_argument("--rate-duration", type=float, default=15, help="seconds per fixed-rate run (default 15)")
    p.add_argument("--rate-rounds", type=int, default=3,
                   help="interleaved rounds of fixed-rate runs; medians are reported (default 3)")
    p.add_argument("--rate-connections", type=int, default=32, help="oha connections (default 32)")
    p.add_argument("--sse-chunks", type=int, default=20, help="events per SSE stream (default 20)")
    p.add_argument("--server-cpu", default="0", help="CPU list for the servers (default 0)")
    p.add_argument("--load-cpu", default="1", help="CPU list for the load generator (default 1)")
    p.add_argument("--nginx-workers", default="auto",
                   help="nginx worker_processes (default auto: nginx counts all CPUs, not the pinned ones)")
    p.add_argument("--ports", default="18080-18099", help="range to pick free ports from")
    p.add_argument("--no-build", action="store_true", help="use the existing release binaries")
    p.add_argument("--nginx-only", action="store_true",
                   help="no tollgate: only (a) and (b), SSE too when the mock binary exists (checks the set-up)")
    p.add_argument("--bin-dir", help="take tollgate and the mock from this directory and build nothing "
                                     "(default: build and use target/release)")
    p.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    args = p.parse_args()

    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"`{tool}` is not installed: apt-get install -y wrk nginx-light util-linux")
    have_oha = shutil.which("oha") is not None
    if not have_oha and not args.nginx_only:
        raise BenchError("`oha` is not installed: cargo install oha --locked")

    bin_dir = Path(args.bin_dir).resolve() if args.bin_dir else TARGET / "release"
    tollgate_bin, mock_bin = bin_dir / "tollgate", bin_dir / "tollgate-mock-upstream"
    use_mock = not args.nginx_only or mock_bin.is_file()
    if not args.nginx_only and not args.no_build and not args.bin_dir:
        log("building release binaries: cargo build --release -p tollgate -p tollgate-mock-upstream")
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate", "-p", "tollgate-mock-upstream"],
                       cwd=ROOT, check=True)
    if not args.nginx_only:
        for binary in (tollgate_bin, mock_bin):
            if not binary.is_file():
                raise BenchError(f"{binary} does not exist: build it or drop --no-build")

    first, _, last = args.ports.partition("-")
    up_port, proxy_port, mock_port, gw_port, console_port = pick_ports(int(first), int(last or first), 5)
    run_dir = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    os.chmod(run_dir, 0o755)  # nginx workers run as an unprivileged user
    if not args.keep:
        atexit.register(shutil.rmtree, run_dir, True)

    started = dt.datetime.now().astimezone()
    summary: dict = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "tools": tool_versions(),
        "config": {
            "duration_s": args.duration, "warmup_s": args.warmup, "repeat": args.repeat,
            "connections": args.connections, "wrk_threads": args.wrk_threads,
            "rate": args.rate, "rate_duration_s": args.rate_duration, "rate_rounds": args.rate_rounds, "rate_connections": args.rate_connections,
            "sse_chunks": args.sse_chunks, "server_cpu": args.server_cpu, "load_cpu": args.load_cpu,
            "ports": {"upstream": up_port, "nginx_proxy": proxy_port, "mock": mock_port,
                      "tollgate_gateway": gw_port, "tollgate_console": console_port},
        },
        "closed_loop": {"json": {}, "sse": {}},
        "ratios": {},
    }
    log(f"machine: {summary['machine']['nproc']} CPUs, {summary['machine']['cpu_model']}, "
        f"load {summary['machine']['loadavg_at_start'][0]:.2f}; servers on CPU {args.server_cpu}, load on CPU {args.load_cpu}")

    values = {"RUN_DIR": str(run_dir), "UPSTREAM_PORT": str(up_port), "PROXY_PORT": str(proxy_port),
              "MOCK_PORT": str(mock_port), "WORKERS": args.nginx_workers}
    up_proc = start_nginx(args, run_dir, "upstream", "upstream.conf", values, up_port)
    proxy_proc = start_nginx(args, run_dir, "proxy", "proxy.conf", values, proxy_port)
    summary["config"]["nginx_workers"] = {"upstream": nginx_workers(up_proc.pid), "proxy": nginx_workers(proxy_proc.pid)}

    key = ""
    tg_proc = None
    if use_mock:
        mock_log = run_dir / "mock.log"
        mock_proc = PROCS.start("mock", pinned(args.server_cpu, [str(mock_bin), "--listen", f"127.0.0.1:{mock_port}"]),
                                log=mock_log)
        wait_for_port(mock_port, mock_proc, "tollgate-mock-upstream", mock_log)
    if not args.nginx_only:
        env = tollgate_env(run_dir, gw_port, console_port)
        cli = [str(tollgate_bin)]
        add_bench_routes(cli, env, run_dir, up_port, mock_port)
        created = run(cli + ["key", "create", "--name", "bench", "--json"], timeout=60, env=env, cwd=run_dir)
        try:
            key = json.loads(created)["key"]
        except (ValueError, KeyError, TypeError) as e:
            raise BenchError(f"`tollgate key create --json` printed no key: {created!r}") from e
        tg_log = run_dir / "tollgate.log"
        tg_proc = PROCS.start("tollgate", pinned(args.server_cpu, cli + ["serve"]), log=tg_log, env=env, cwd=run_dir)
        wait_for_port(gw_port, tg_proc, "tollgate", tg_log)
        wait_for_port(console_port, tg_proc, "tollgate console", tg_log)

    headers = {"Authorization": f"Bearer {key or 'none'}"}
    sse_headers = {**headers, "x-mock-chunks": str(args.sse_chunks)}
    json_targets = {
        "a. nginx direct": (up_port, "/ok"),
        "b. nginx proxy_pass": (proxy_port, "/up/ok"),
    }
    sse_targets = {}
    if use_mock:
        sse_targets = {
            "a. mock direct": (mock_port, "/sse"),
            "b. nginx proxy_pass": (proxy_port, "/sse-up/sse"),
        }
    if not args.nginx_only:
        json_targets["c. tollgate"] = (gw_port, "/up/ok")
        sse_targets["c. tollgate"] = (gw_port, "/sse-up/sse")
    # For information only: is the mock's fixed body faster than nginx's? (nginx is preferred
    # as the upstream unless it is.) Not part of any ratio.
    json_info = {"info: mock /static direct": (mock_port, "/static")} if use_mock else {}

    # Check every target answers what it should before measuring anything: a 401 is very fast.
    for name, (port, path) in json_targets.items():
        status, hdrs, body = http_get(port, path, headers)
        if status != 200 or json.loads(body) != {"ok": True}:
            raise BenchError(f"{name} GET {path} answered {status} {body[:300]!r}")
    for name, (port, path) in sse_targets.items():
        status, hdrs, body = http_get(port, path, sse_headers)
        events = body.count(b"data:")
        if status != 200 or not hdrs.get("content-type", "").startswith("text/event-stream") or events != args.sse_chunks:
            raise BenchError(f"{name} GET {path} answered {status} {hdrs.get('content-type')} with {events} events: {body[:300]!r}")

    rss = {}
    tg_requests = 0
    if tg_proc is not None:
        time.sleep(1.0)
        rss["idle_after_start"] = rss_kib(tg_proc.pid)["VmRSS"] / 1024  # preflight made one JSON + one SSE request
        http_get(gw_port, "/up/ok", headers)
        time.sleep(1.0)
        rss["idle_after_one_request"] = rss_kib(tg_proc.pid)["VmRSS"] / 1024
        tg_requests += 3

    sampler = RssSampler(tg_proc.pid) if tg_proc is not None else None
    if sampler:
        sampler.__enter__()
    try:
        log(f"plain JSON: {args.connections} connections, {args.warmup:g} s warm-up + {args.repeat} × {args.duration:g} s")
        for name, (port, path) in json_targets.items():
            r = measure(args, name, f"http://127.0.0.1:{port}{path}", headers)
            summary["closed_loop"]["json"][name] = r
            if port == gw_port:
                tg_requests += r["requests_including_warmup"]
        for name, (port, path) in json_info.items():
            status, _, body = http_get(port, path, headers)
            if status != 200:
                raise BenchError(f"{name} GET {path} answered {status} {body[:300]!r}")
            summary["closed_loop"]["json"][name] = measure(args, name, f"http://127.0.0.1:{port}{path}", headers)
        if sse_targets:
            log(f"SSE ({args.sse_chunks} events per stream)")
            for name, (port, path) in sse_targets.items():
                r = measure(args, name, f"http://127.0.0.1:{port}{path}", sse_headers)
                summary["closed_loop"]["sse"][name] = r
                if port == gw_port:
                    tg_requests += r["requests_including_warmup"]

        fixed_runs: dict[str, dict] = {}
        if have_oha:
            log(f"fixed rate: {args.rate} req/s for {args.rate_duration:g} s, {args.rate_rounds} interleaved rounds")
        else:
            log("oha is not installed: the fixed-rate part is skipped")
        # A p99 of well under a millisecond moves by whole milliseconds from one 15 s run to the
        # next on a shared machine: interleave the targets over several rounds and take medians.
        rounds: dict[str, list[dict]] = {name: [] for name in json_targets}
        for round_no in range(args.rate_rounds if have_oha else 0):
            for name, (port, path) in json_targets.items():
                r = oha(args, f"http://127.0.0.1:{port}{path}", headers)
                rounds[name].append(r)
                if port == gw_port:
                    tg_requests += r["requests"]
                log(f"  round {round_no + 1} {name:<20} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:.3f} ms  "
                    f"p99 {r['p99_ms']:.3f} ms")
        for name, runs in rounds.items():
            if not runs:
                continue
            fixed_runs[name] = {
                "rps": statistics.median(r["rps"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "p99_ms_all_rounds": [round(r["p99_ms"], 3) for r in runs],
                "requests": sum(r["requests"] for r in runs),
                "errors": [r["errors"] for r in runs if r["errors"]],
            }
        base = fixed_runs.get("a. nginx direct")
        summary["fixed_rate"] = base and {
            "runs": fixed_runs,
            "p99_added_ms": {n: r["p99_ms"] - base["p99_ms"] for n, r in fixed_runs.items() if r is not base},
            "p50_added_ms": {n: r["p50_ms"] - base["p50_ms"] for n, r in fixed_runs.items() if r is not base},
        }
    finally:
        if sampler:
            sampler.__exit__(None, None, None)

    for section in ("json", "sse"):
        rows = summary["closed_loop"][section]
        proxy = rows.get("b. nginx proxy_pass")
        tg = rows.get("c. tollgate")
        if proxy and tg:
            summary["ratios"][section] = {"throughput": ratio(tg, proxy, "rps"), "p99": ratio(tg, proxy, "p99_ms")}

    if tg_proc is not None:
        hwm = rss_kib(tg_proc.pid)["VmHWM"] / 1024
        rss["load_peak_sampled"] = max(sampler.max_kib / 1024 if sampler else 0, rss["idle_after_one_request"])
        rss["vm_hwm"] = hwm
        time.sleep(2.0)  # let the usage writer flush its last batch
        m = metrics(console_port)
        written = m.get("tollgate_usage_events_written_total")
        dropped = m.get("tollgate_usage_events_dropped_total")
        summary["tollgate"] = {
            "rss_mib": rss,
            "usage_events_written": written,
            "usage_events_dropped": dropped,
            "usage_metrics": {k: v for k, v in m.items() if k.startswith("tollgate_usage_")},
            "requests_sent": tg_requests,
        }
        t0 = time.monotonic()
        code = PROCS.stop(tg_proc, signal.SIGTERM, timeout=30)
        summary["tollgate"]["shutdown"] = {"exit_code": code, "seconds": round(time.monotonic() - t0, 2)}
        if written is None or dropped is None:
            log("WARNING: /metrics has no tollgate_usage_events_written_total / _dropped_total")

    summary["targets"] = check_targets(summary)
    summary["machine"]["loadavg_at_end"] = os.getloadavg()
    print_table(summary)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "gateway-nginx-only" if args.nginx_only else "gateway"
    out = RESULTS / f"{stem}-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    shutil.copyfile(out, RESULTS / f"{stem}-latest.json")
    log(f"summary written to {out.relative_to(ROOT)}")
    tg = summary.get("tollgate")
    if tg and tg.get("usage_events_dropped"):
        log("FAIL: usage events were dropped")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        sys.exit(2)
