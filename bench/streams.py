#!/usr/bin/env python3
"""Concurrency benchmark: thousands of SSE streams open at once through nginx and through tollgate.

For each proxy in turn (nginx proxy_pass with `proxy_buffering off`, then `tollgate serve`), one run:
  1. opens N concurrent streams (default 10,000) to tollgate-mock-upstream's `GET /sse`, which sends
     one event per second for `--duration` seconds (`x-mock-chunks`, `x-mock-chunk-delay-ms`);
  2. once all N are open, reads the proxy's RSS (nginx: master + workers) and computes the memory
     per open stream against the RSS measured before the first stream;
  3. while they stay open, makes new small calls at a fixed rate through the proxy and directly to
     the upstream (nginx answering a small JSON body), alternating, and reports p50/p99 of each and
     the p99 added by the proxy;
  4. waits for every stream to end and checks that each one got every event, in order, with no
     error (connect, status, cut short or timeout).
It prints a table and writes a JSON summary to bench/results/streams-<date>.json. Loopback only;
every process it starts is stopped when it exits, however it exits; the whole run is bounded
(each phase has a deadline). See bench/README.md for the machine notes shared with gateway.py.

Upstream (`--upstream`): `http` (default) streams from the mock over plain HTTP/1.1, one upstream
connection per stream for both proxies. `tls` streams from the mock over TLS offering `h2` and
`http/1.1` by ALPN, as the LLM providers' APIs do: tollgate speaks h2 (up to 100 streams per
upstream connection), nginx speaks HTTP/1.1 over TLS (it has no h2 to upstreams), each verifying
the mock's certificate.

File descriptors: N streams need about N descriptors in the load generator, 2N in the proxy (N
and a few with `--upstream tls` for tollgate; nginx's workers share them) and N in the mock. The script raises its own limit as far as it may (children inherit it) and stops with
a clear message when it is still too low: where the hard limit is 20,000 and cannot be raised (a
container without CAP_SYS_RESOURCE), about 9,400 streams fit, not 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as gw  # noqa: E402 - the shared process, port and machine helpers

ROOT = gw.ROOT
BENCH = gw.BENCH
RESULTS = gw.RESULTS
BenchError = gw.BenchError
log = gw.log

# Targets (issue 13).
TARGET_RSS_MB = 250.0
TARGET_P99_ADDED_MS = 1.0


# ---------------------------------------------------------------------------------------------
# The small-call prober: a separate process (`--probe`), so that the asyncio loop holding the
# streams does not delay its timings.


def probe(port: int, path: str, auth: str, rate: float, seconds: float) -> dict:
    """Calls GET path at a fixed rate on one keep-alive connection; latency is measured from each
    call's scheduled start (a late call counts its wait), so a stall is not hidden."""
    headers = {"Authorization": f"Bearer {auth}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval = 1.0 / rate
    count = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = time.perf_counter() + 0.05
    for i in range(count):
        scheduled = start + i * interval
        now = time.perf_counter()
        if now < scheduled:
            time.sleep(scheduled - now)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors[str(resp.status)] = errors.get(str(resp.status), 0) + 1
        except (OSError, http.client.HTTPException) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append(time.perf_counter() - scheduled)
    conn.close()
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"calls": count, "answered": len(latencies), "errors": errors,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0)}


def run_probe(args, port: int, path: str, auth: str, seconds: float) -> dict:
    spec = json.dumps({"port": port, "path": path, "auth": auth, "rate": args.probe_rate, "seconds": seconds})
    argv = gw.pinned(args.load_cpu, [sys.executable, str(Path(__file__).resolve()), "--probe", spec])
    out = gw.run(argv, timeout=seconds + 60)
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The streams: asyncio, one coroutine per stream, raw HTTP/1.1 with a chunked body.


class Streams:
    """N streams through one proxy; counts what each one saw."""

    def __init__(self, port: int, path: str, headers: dict[str, str], n: int, events: int) -> None:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.port = port
        self.n = n
        self.events = events
        self.open = 0
        self.max_open = 0
        self.completed = 0
        self.events_seen = 0
        self.errors: dict[str, int] = {}
        self.all_open = asyncio.Event()
        self.first_end: float | None = None

    def fail(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def one(self, connect_slots: asyncio.Semaphore, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        opened = False
        writer = None
        try:
            async with asyncio.timeout_at(deadline):
                async with connect_slots:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 16)
                    writer.write(self.request)
                    status = await reader.readline()
                    chunked = False
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                            chunked = True
                    if not status.startswith(b"HTTP/1.1 200"):
                        self.fail(f"status {status.decode(errors='replace').strip()[:40]}")
                        return
                    if not chunked:
                        self.fail("not chunked")
                        return
                opened = True
                self.open += 1
                self.max_open = max(self.max_open, self.open)
                if self.open >= self.n:
                    self.all_open.set()
                expected_seq = 0
                pending = b""
                while True:
                    size_line = await reader.readline()
                    if not size_line:
                        raise asyncio.IncompleteReadError(b"", None)
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        await reader.readline()  # the blank line after the last chunk
                        break
                    data = await reader.readexactly(size + 2)
                    pending += data[:-2]
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.startswith(b"data:"):
                            # `data: {"seq":N}`: the number without a JSON parse per event.
                            seq = int(line[line.rindex(b":") + 1:line.rindex(b"}")])
                            if seq != expected_seq:
                                self.fail("event out of order or missing")
                                return
                            expected_seq += 1
                            self.events_seen += 1
                if expected_seq != self.events:
                    self.fail(f"ended after {expected_seq} of {self.events} events")
                    return
                self.completed += 1
        except TimeoutError:
            self.fail("timed out")
        except asyncio.IncompleteReadError:
            self.fail("connection closed mid-stream")
        except (OSError, ValueError) as e:
            self.fail(f"{type(e).__name__}: {str(e)[:60]}")
        finally:
            if opened:
                self.open -= 1
                if self.first_end is None:
                    self.first_end = loop.time()
            if writer is not None:
                writer.close()


async def run_streams(args, name: str, port: int, path: str, headers: dict[str, str],
                      server_pids, auth: str, direct_port: int) -> dict:
    n, events = args.streams, args.duration
    sse_headers = {**headers, "x-mock-chunks": str(events), "x-mock-chunk-delay-ms": "1000"}
    streams = Streams(port, path, sse_headers, n, events)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    # Every stream must end by then: the ramp, the streams' own length, and a margin.
    deadline = t0 + args.ramp_timeout + events + 60
    slots = asyncio.Semaphore(args.connect_concurrency)
    rss_before = rss_total(server_pids())
    tasks = [asyncio.create_task(streams.one(slots, deadline)) for _ in range(n)]
    result: dict = {"rss_before_mib": rss_before / 1024}
    try:
        await asyncio.wait_for(streams.all_open.wait(), timeout=args.ramp_timeout)
    except TimeoutError:
        result["ramp_failed"] = f"only {streams.open} of {n} open after {args.ramp_timeout:g} s"
    ramp = loop.time() - t0
    result["ramp_s"] = ramp
    result["open_at_plateau"] = streams.open
    log(f"  {name}: {streams.open} of {n} streams open after {ramp:.1f} s")
    # Let the first events of the last streams through, then read the memory.
    await asyncio.sleep(1.0)
    pids = server_pids()
    rss_open = rss_total(pids)
    result["rss_open_mib"] = rss_open / 1024
    result["open_when_measured"] = streams.open
    if streams.open:
        result["kib_per_stream"] = (rss_open - rss_before) / streams.open
    log(f"  {name}: RSS {rss_before / 1024:.1f} MiB before, {rss_open / 1024:.1f} MiB with {streams.open} open "
        f"({result.get('kib_per_stream', 0):.1f} KiB per stream)")
    # New small calls while the streams stay open: direct and through the proxy, alternating.
    remaining = events - (loop.time() - t0) - 3
    probe_s = max(1.0, min(args.probe_seconds, remaining / (2 * args.probe_rounds)))
    probes: dict[str, list[dict]] = {"direct": [], "proxy": []}
    for _ in range(args.probe_rounds):
        for which, (p, pth) in (("direct", (direct_port, "/ok")), ("proxy", (port, "/up/ok"))):
            r = await asyncio.to_thread(run_probe, args, p, pth, auth, probe_s)
            r["open_streams_during"] = streams.open
            probes[which].append(r)
            log(f"  {name}: small calls {which:<6} p50 {r['p50_ms'] or 0:.3f} ms  p99 {r['p99_ms'] or 0:.3f} ms  "
                f"errors {r['errors'] or 0}  ({streams.open} streams open)")
    result["probe_seconds"] = probe_s
    result["probes"] = probes
    result["rss_peak_mib"] = max(rss_open, rss_total(server_pids())) / 1024
    await asyncio.gather(*tasks)
    result["elapsed_s"] = loop.time() - t0
    result["completed"] = streams.completed
    result["events_seen"] = streams.events_seen
    result["events_expected"] = n * events
    result["errors"] = streams.errors
    result["max_open"] = streams.max_open
    for which in probes:
        runs = [r for r in probes[which] if r["p99_ms"] is not None]
        result[f"{which}_p99_ms"] = statistics.median(r["p99_ms"] for r in runs) if runs else None
        result[f"{which}_p50_ms"] = statistics.median(r["p50_ms"] for r in runs) if runs else None
        result[f"{which}_errors"] = sum(sum(r["errors"].values()) for r in probes[which])
    if result["direct_p99_ms"] is not None and result["proxy_p99_ms"] is not None:
        result["p99_added_ms"] = result["proxy_p99_ms"] - result["direct_p99_ms"]
    log(f"  {name}: {streams.completed} of {n} streams complete, {streams.events_seen} of {n * events} events, "
        f"errors {streams.errors or 'none'}")
    return result


# ---------------------------------------------------------------------------------------------
# Memory and descriptors.


def rss_total(pids: list[int]) -> int:
    """VmRSS summed over the processes, KiB (a process that is gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            total += gw.rss_kib(pid)["VmRSS"]
        except (OSError, KeyError):
            pass
    return total


def nginx_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, timeout=5).stdout
    return [master, *(int(p) for p in out.split())]


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(needed, soft)
    if hard < want:
        try:
            nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            nr_open = want
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, nr_open), min(want, nr_open)))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise BenchError(f"{needed} open files per process are needed and the limit is {soft} (hard {hard}, which "
                         f"only a process with CAP_SYS_RESOURCE can raise): raise it first (`ulimit -Hn {needed}`, "
                         f"as root) or use at most --streams {max(1, (soft - 1024) // 2)}")
    return soft


# ---------------------------------------------------------------------------------------------
# The benchmark.


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=10_000, help="concurrent streams (default 10000)")
    p.add_argument("--duration", type=int, default=60,
                   help="seconds each stream lasts, one event per second (default 60; try 15 first)")
    p.add_argument("--ramp-timeout", type=float, default=60, help="longest wait for all streams to open (default 60 s)")
    p.add_argument("--connect-concurrency", type=int, default=1024,
                   help="streams connecting at once during the ramp (default 1024)")
    p.add_argument("--probe-rate", type=float, default=200, help="small calls per second meanwhile (default 200)")
    p.add_argument("--probe-seconds", type=float, default=5, help="longest run of small calls (default 5 s)")
    p.add_argument("--probe-rounds", type=int, default=2, help="direct/proxy alternations (default 2)")
    p.add_argument("--only", choices=["nginx", "tollgate"], help="run one proxy only")
    p.add_argument("--upstream", choices=["http", "tls"], default="http",
                   help="the streams' upstream: the mock over plain HTTP/1.1 (default), or over TLS "
                        "offering h2 and http/1.1 (tollgate then speaks h2, nginx HTTP/1.1 over TLS)")
    p.add_argument("--server-cpu", default="0", help="CPU list for the servers (default 0)")
    p.add_argument("--load-cpu", default="1", help="CPU list for the load generator (default 1)")
    p.add_argument("--nginx-workers", default="auto", help="nginx worker_processes (default auto)")
    p.add_argument("--ports", default="18100-18149", help="range to pick free ports from")
    p.add_argument("--bin-dir", help="take tollgate and the mock from this directory "
                                     "(default target/release, built if missing)")
    p.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    p.add_argument("--probe", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.probe:
        spec = json.loads(args.probe)
        print(json.dumps(probe(spec["port"], spec["path"], spec["auth"], spec["rate"], spec["seconds"])))
        return 0
    if args.streams < 1 or args.duration < 5:
        raise BenchError("--streams must be at least 1 and --duration at least 5")

    for tool in ("nginx", "taskset", "pgrep"):
        if shutil.which(tool) is None:
            raise BenchError(f"`{tool}` is not installed: apt-get install -y nginx-light util-linux procps")
    # The proxy holds two descriptors per stream (client and upstream), plus its own files; over
    # h2 the upstream side is a connection per 100 streams, and nginx splits the streams over its
    # workers (each a process with its own limit).
    if args.upstream == "tls" and args.only != "nginx":
        nginx_workers = 2 if args.nginx_workers == "auto" else int(args.nginx_workers)
        per_process = max(args.streams + args.streams // 100, 2 * args.streams // max(1, nginx_workers))
        nofile = raise_nofile(per_process + 1024)
    else:
        nofile = raise_nofile(2 * args.streams + 1024)

    bin_dir = (Path(args.bin_dir) if args.bin_dir else gw.TARGET / "release").resolve()
    tollgate_bin, mock_bin = bin_dir / "tollgate", bin_dir / "tollgate-mock-upstream"
    if not args.bin_dir and not (tollgate_bin.is_file() and mock_bin.is_file()):
        log("building release binaries: cargo build --release -p tollgate -p tollgate-mock-upstream")
        subprocess.run(["cargo", "build", "--release", "-p", "tollgate", "-p", "tollgate-mock-upstream"],
                       cwd=ROOT, check=True)
    for binary in (tollgate_bin, mock_bin):
        if not binary.is_file():
            raise BenchError(f"{binary} does not exist")

    first, _, last = args.ports.partition("-")
    up_port, proxy_port, mock_port, gw_port, console_port = gw.pick_ports(int(first), int(last or first), 5)
    run_dir = Path(tempfile.mkdtemp(prefix="tollgate-streams-"))
    os.chmod(run_dir, 0o755)  # nginx workers run as an unprivileged user
    if not args.keep:
        import atexit
        atexit.register(shutil.rmtree, run_dir, True)

    started = dt.datetime.now().astimezone()
    summary: dict = {
        "date": started.isoformat(timespec="seconds"),
        "machine": gw.machine_info(),
        "tools": {"nginx": gw.first_line(["nginx", "-v"]), "python": sys.version.split()[0]},
        "config": {"streams": args.streams, "duration_s": args.duration, "event_interval_s": 1,
                   "upstream": args.upstream,
                   "probe_rate": args.probe_rate, "probe_rounds": args.probe_rounds,
                   "server_cpu": args.server_cpu, "load_cpu": args.load_cpu, "open_file_limit": nofile,
                   "bin_dir": str(bin_dir)},
        "runs": {},
    }
    log(f"machine: {summary['machine']['nproc']} CPUs, {summary['machine']['cpu_model']}, "
        f"load {summary['machine']['loadavg_at_start'][0]:.2f}; {args.streams} streams × {args.duration} s; "
        f"open-file limit {nofile}")

    values = {"RUN_DIR": str(run_dir), "UPSTREAM_PORT": str(up_port), "PROXY_PORT": str(proxy_port),
              "MOCK_PORT": str(mock_port), "WORKERS": args.nginx_workers,
              "NOFILE": str(nofile), "WORKER_CONNECTIONS": str(2 * args.streams + 1024)}
    gw.start_nginx(args, run_dir, "upstream", "upstream.conf", values, up_port)
    mock_log = run_dir / "mock.log"
    mock_argv = [str(mock_bin), "--listen", f"127.0.0.1:{mock_port}"]
    mock_ca = run_dir / "mock-ca.pem"
    if args.upstream == "tls":
        mock_argv += ["--tls", "h2", "--cert-out", str(mock_ca)]
    values["MOCK_SCHEME"] = "https" if args.upstream == "tls" else "http"
    values["MOCK_CA"] = str(mock_ca)
    values["MOCK_SSL"] = "on" if args.upstream == "tls" else "off"
    mock_proc = gw.PROCS.start("mock", gw.pinned(args.server_cpu, mock_argv), log=mock_log)
    gw.wait_for_port(mock_port, mock_proc, "tollgate-mock-upstream", mock_log)

    # nginx does not check the key; every request carries the same header either way.
    key = "none"
    order = [args.only] if args.only else ["nginx", "tollgate"]
    # The streams' event loop is load: it runs on the load CPU (the servers are pinned apart).
    os.sched_setaffinity(0, {int(c) for c in args.load_cpu.split(",")})
    for which in order:
        log(f"{which}: {args.streams} streams of {args.duration} events")
        if which == "nginx":
            proc = gw.start_nginx(args, run_dir, "streams-proxy", "streams-proxy.conf", values, proxy_port)
            port = proxy_port

            def pids(master=proc.pid):
                return nginx_pids(master)
        else:
            env = gw.tollgate_env(run_dir, gw_port, console_port)
            # Room for every stream and the small calls besides; the console needs few, which
            # leaves the gateway's cap (fitted to the open-file limit) as much room as it can have.
            env["TOLLGATE_GATEWAY__MAX_CONNECTIONS"] = str(args.streams + 64)
            env["TOLLGATE_CONSOLE__MAX_CONNECTIONS"] = "64"
            cli = [str(tollgate_bin)]
            if args.upstream == "tls":
                env["TOLLGATE_GATEWAY__UPSTREAM_CA_FILE"] = str(mock_ca)
            gw.add_bench_routes(cli, env, run_dir, up_port, mock_port,
                                mock_scheme="https" if args.upstream == "tls" else "http")
            created = gw.run(cli + ["key", "create", "--name", "bench", "--json"], timeout=60, env=env, cwd=run_dir)
            key = json.loads(created)["key"]
            tg_log = run_dir / "tollgate.log"
            proc = gw.PROCS.start("tollgate", gw.pinned(args.server_cpu, cli + ["serve"]), log=tg_log, env=env, cwd=run_dir)
            gw.wait_for_port(gw_port, proc, "tollgate", tg_log)
            gw.wait_for_port(console_port, proc, "tollgate console", tg_log)
            port = gw_port

            def pids(pid=proc.pid):
                return [pid]
        headers = {"Authorization": f"Bearer {key}"}
        # Pre-flight: a small call and a short stream answer as they should.
        status, _, body = gw.http_get(port, "/up/ok", headers)
        if status != 200 or json.loads(body) != {"ok": True}:
            raise BenchError(f"{which} GET /up/ok answered {status} {body[:300]!r}")
        status, hdrs, body = gw.http_get(port, "/sse-up/sse", {**headers, "x-mock-chunks": "3"})
        if status != 200 or body.count(b"data:") != 3:
            raise BenchError(f"{which} GET /sse-up/sse answered {status} {body[:300]!r}")
        time.sleep(1.0)
        result = asyncio.run(run_streams(args, which, port, "/sse-up/sse", headers, pids, key, up_port))
        if which == "tollgate":
            time.sleep(2.0)  # the usage writer's last batch
            m = gw.metrics(console_port)
            result["usage_events_written"] = m.get("tollgate_usage_events_written_total")
            result["usage_events_dropped"] = m.get("tollgate_usage_events_dropped_total")
            result["connections_refused"] = m.get('tollgate_connections_refused_total{listener="gateway"}')
            result["upstream_calls_h2"] = m.get('tollgate_gateway_upstream_calls_total{protocol="h2"}')
            result["upstream_calls_http1"] = m.get('tollgate_gateway_upstream_calls_total{protocol="http/1.1"}')
            lines = gw.tail(tg_log, 200).splitlines()
            result["warnings_logged"] = [ln for ln in lines if "WARN" in ln or "ERROR" in ln][:20]
        summary["runs"][which] = result
        gw.PROCS.stop(proc, signal.SIGTERM, timeout=30)

    summary["machine"]["loadavg_at_end"] = os.getloadavg()
    summary["targets"] = check_targets(summary, args)
    print_table(summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"streams-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    shutil.copyfile(out, RESULTS / "streams-latest.json")
    log(f"summary written to {out.relative_to(ROOT)}")
    failed = [n for n, r in summary["runs"].items() if r["errors"] or r["completed"] != args.streams]
    if failed:
        log(f"FAIL: streams with errors through {', '.join(failed)}")
        return 1
    return 0


def check_targets(summary: dict, args) -> dict:
    tg = summary["runs"].get("tollgate")
    if not tg:
        return {}
    return {
        "every stream carried to the end": {"value": f"{tg['completed']} of {args.streams}",
                                            "pass": tg["completed"] == args.streams and not tg["errors"]},
        f"RSS with {args.streams} open ≤ {TARGET_RSS_MB:g} MiB": {"value": f"{tg['rss_open_mib']:.1f}",
                                                                  "pass": tg["rss_open_mib"] <= TARGET_RSS_MB},
        f"p99 added for new calls ≤ {TARGET_P99_ADDED_MS:g} ms": {
            "value": None if tg.get("p99_added_ms") is None else f"{tg['p99_added_ms']:+.3f}",
            "pass": tg.get("p99_added_ms") is not None and tg["p99_added_ms"] <= TARGET_P99_ADDED_MS},
        "usage events dropped": {"value": tg.get("usage_events_dropped"), "pass": tg.get("usage_events_dropped") == 0},
    }


def print_table(summary: dict) -> None:
    cfg = summary["config"]
    print()
    print(f"{cfg['streams']} concurrent SSE streams, one event per second for {cfg['duration_s']} s, upstream "
          f"{cfg['upstream']}; small calls at {cfg['probe_rate']:g}/s meanwhile")
    print(f"  {'proxy':<10}{'open':>7}{'done':>7}{'errors':>8}{'RSS before':>12}{'RSS open':>10}{'KiB/stream':>12}"
          f"{'p99 direct':>12}{'p99 proxy':>11}{'added':>9}")
    for name, r in summary["runs"].items():
        def f(v, spec):
            return "—" if v is None else format(v, spec)
        print(f"  {name:<10}{r['open_when_measured']:>7}{r['completed']:>7}{sum(r['errors'].values()):>8}"
              f"{r['rss_before_mib']:>11.1f}M{r['rss_open_mib']:>9.1f}M{f(r.get('kib_per_stream'), '.1f'):>12}"
              f"{f(r.get('direct_p99_ms'), '.3f'):>12}{f(r.get('proxy_p99_ms'), '.3f'):>11}"
              f"{f(r.get('p99_added_ms'), '+.3f'):>9}")
        if r["errors"]:
            print(f"    errors: {r['errors']}")
    tg = summary["runs"].get("tollgate")
    if tg:
        print(f"  tollgate usage events written {tg.get('usage_events_written')}, dropped {tg.get('usage_events_dropped')}, "
              f"connections refused {tg.get('connections_refused')}, upstream calls h2 {tg.get('upstream_calls_h2')} "
              f"http/1.1 {tg.get('upstream_calls_http1')}")
    print()
    for name, c in summary.get("targets", {}).items():
        print(f"  {'PASS' if c['pass'] else 'MISS':<5} {name}: {c['value']}")
    print()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        sys.exit(2)
