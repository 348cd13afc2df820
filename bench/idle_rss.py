#!/usr/bin/env python3
"""Where tollgate's idle RSS goes: starts it as bench/gateway.py does, then reads /proc.

The set-up is gateway.py's own (its functions are imported): nginx as the JSON upstream, the mock
as the SSE upstream, `tollgate migrate`, the two HTTP routes and a key, `tollgate serve` pinned to
the servers' CPU with gateway.py's environment; one JSON and one SSE request (gateway.py's
pre-flight), one second, one more JSON request, one second. Then it reads VmRSS, RssAnon, RssFile
(/proc/PID/status) and splits the resident set by mapping (/proc/PID/smaps): the tollgate binary,
shared libraries, the main heap, thread stacks, glibc's per-thread malloc arenas and other
anonymous mappings. `--openai` adds an openai route too, so the gateway loads its tokenizer
vocabulary in the background as it does in production (waited for with --settle).

    python3 bench/idle_rss.py --bin-dir DIR [--repeat 3] [--openai] [--json out.json]

`--wrap "valgrind --tool=massif"` runs `serve` under a tool (the figures are then the tool's, not
tollgate's) and `--at-idle "vgdb --pid={pid} detailed_snapshot /tmp/idle.massif"` takes the heap
profile at the moment the figures are read; `--text-by-crate N` shows which crates' code is resident.
"""

from __future__ import annotations

import argparse
import bisect
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as gw  # noqa: E402  (bench/gateway.py: processes, ports, nginx, tollgate's environment)

ARENA = 64 * 1024 * 1024  # glibc's HEAP_MAX_SIZE on 64-bit: per-thread arenas are aligned to it


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM", "Threads"):
            out[key] = int(rest.split()[0])
    return out


def mappings(pid: int) -> list[dict]:
    """Every mapping of /proc/PID/smaps: range, permissions, path and its kB fields."""
    maps: list[dict] = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            start, end = (int(x, 16) for x in head[0].split("-"))
            maps.append({"start": start, "end": end, "perms": head[1], "offset": int(head[2], 16),
                         "path": head[5] if len(head) > 5 else "", "kb": {}})
        elif head and head[0].endswith(":") and len(head) >= 2 and head[1].isdigit():
            maps[-1]["kb"][head[0][:-1]] = int(head[1])
    return maps


def classify(maps: list[dict], binary: str) -> dict[str, dict[str, int]]:
    """Rss and Anonymous kB by kind of mapping."""
    kinds: dict[str, dict[str, int]] = {}
    for i, m in enumerate(maps):
        path = m["path"]
        if path.endswith(binary) or path == binary:
            kind = "binary " + ("text" if "x" in m["perms"] else "data" if "w" in m["perms"] else "rodata")
        elif path.startswith("/"):
            kind = "shared libraries"
        elif path == "[heap]":
            kind = "main heap (brk)"
        elif path == "[stack]":
            kind = "main thread stack"
        elif path.startswith("["):
            kind = "kernel ([vdso] etc.)"
        elif "rw" in m["perms"]:
            prev = maps[i - 1] if i else None
            guard = prev is not None and prev["end"] == m["start"] and prev["perms"].startswith("---") \
                and prev["end"] - prev["start"] <= 64 * 1024 and not prev["path"]
            if guard:
                kind = "thread stacks"
            elif m["start"] % ARENA == 0:
                kind = "malloc arenas (threads)"
            else:
                kind = "other anonymous (mmap)"
        else:
            kind = "other anonymous (mmap)"
        k = kinds.setdefault(kind, {"Rss": 0, "Anonymous": 0, "count": 0})
        k["Rss"] += m["kb"].get("Rss", 0)
        k["Anonymous"] += m["kb"].get("Anonymous", 0)
        k["count"] += 1
    return kinds


def resident_pages(pid: int, start: int, end: int) -> list[int]:
    """Addresses of the pages of [start, end) that are in memory (/proc/PID/pagemap, bit 63)."""
    page = 4096
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // page * 8)
        data = f.read((end - start) // page * 8)
    return [start + i * page for i in range(len(data) // 8)
            if int.from_bytes(data[i * 8:i * 8 + 8], "little") >> 63]


def crate_of(name: str) -> str:
    """The first path segment of a demangled Rust symbol (of the self type for impls)."""
    name = name.lstrip("<&*")
    for prefix in ("mut ", "const ", "dyn "):
        name = name.removeprefix(prefix)
    head = name.split("::", 1)[0]
    return head if head and head.replace("_", "").isalnum() else "(other)"


def text_by_crate(pid: int, maps: list[dict], binary: Path) -> dict[str, int]:
    """Resident bytes of the binary's executable mapping, by the crate of the symbols in them."""
    base = next(m["start"] - m["offset"] for m in maps if m["path"] == str(binary) and m["offset"] == 0)
    resident: set[int] = set()
    for m in maps:
        if m["path"] == str(binary) and "x" in m["perms"]:
            resident.update(a - base for a in resident_pages(pid, m["start"], m["end"]))
    out = subprocess.run(["nm", "--defined-only", "-S", "-C", "--size-sort", str(binary)],
                         capture_output=True, text=True, check=True).stdout
    by_crate: dict[str, int] = {}
    covered: set[int] = set()
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[2] not in "tTwW":
            continue
        addr, size = int(parts[0], 16), int(parts[1], 16)
        inside = 0
        for page in range(addr // 4096 * 4096, addr + size, 4096):
            if page in resident:
                inside += min(addr + size, page + 4096) - max(addr, page)
                covered.add(page)
        if inside:
            by_crate[crate_of(parts[3])] = by_crate.get(crate_of(parts[3]), 0) + inside
    by_crate["(pages)"] = len(resident) * 4096
    return by_crate


def executed_addresses(callgrind_out: Path, binary: Path) -> set[int]:
    """Addresses of the instructions of `binary` that ran, from callgrind's `--dump-instr=yes` file
    (object-relative: the binary's own link addresses)."""
    names: dict[str, str] = {}
    current, addr, out = None, 0, set()
    for line in callgrind_out.open(errors="replace"):
        c = line[0]
        if c in "0+-*":
            tok = line.split(None, 1)[0]
            if tok.startswith("0x"):
                addr = int(tok, 16)
            elif tok[0] in "+-":
                step = int(tok[1:], 16) if tok[1:].startswith("0x") else int(tok[1:])
                addr += step if tok[0] == "+" else -step
            if current == str(binary):
                out.add(addr)
        elif line.startswith(("ob=", "cob=")):
            key, _, rest = line.strip().partition("=")
            num, _, name = rest.partition(" ")
            if name:
                names[num] = name
            if key == "ob":
                current = names.get(num)
    return out


def executed_symbols(addresses: set[int], binary: Path) -> list[str]:
    """The (mangled) functions of `binary` that hold these addresses, in address order."""
    out = subprocess.run(["nm", "-S", "--defined-only", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    symbols = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            symbols.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    symbols.sort()
    starts = [s[0] for s in symbols]
    ran: dict[str, int] = {}
    for a in addresses:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and symbols[i][0] <= a < symbols[i][0] + symbols[i][1]:
            ran[symbols[i][2]] = symbols[i][0]
    return sorted(ran, key=ran.__getitem__)


def one_run(args, bin_dir: Path) -> dict:
    tollgate_bin, mock_bin = bin_dir / "tollgate", bin_dir / "tollgate-mock-upstream"
    up_port, proxy_port, mock_port, gw_port, console_port = gw.pick_ports(18200, 18299, 5)
    run_dir = Path(tempfile.mkdtemp(prefix="tollgate-rss-"))
    run_dir.chmod(0o755)
    values = {"RUN_DIR": str(run_dir), "UPSTREAM_PORT": str(up_port), "PROXY_PORT": str(proxy_port),
              "MOCK_PORT": str(mock_port), "WORKERS": "auto"}
    procs = []
    try:
        procs.append(gw.start_nginx(args, run_dir, "upstream", "upstream.conf", values, up_port))
        mock_log = run_dir / "mock.log"
        mock = gw.PROCS.start("mock", gw.pinned(args.server_cpu, [str(mock_bin), "--listen", f"127.0.0.1:{mock_port}"]),
                              log=mock_log)
        procs.append(mock)
        gw.wait_for_port(mock_port, mock, "tollgate-mock-upstream", mock_log)
        env = gw.tollgate_env(run_dir, gw_port, console_port)
        cli = [str(tollgate_bin)]
        gw.add_bench_routes(cli, env, run_dir, up_port, mock_port)
        if args.openai:
            gw.run(cli + ["route", "add", "--name", "oai", "--prefix", "/oai", "--kind", "openai", "--upstream",
                          f"http://127.0.0.1:{mock_port}", "--strip-prefix"], timeout=60, env=env, cwd=run_dir)
        key = json.loads(gw.run(cli + ["key", "create", "--name", "bench", "--json"], timeout=60, env=env,
                                cwd=run_dir))["key"]
        wrap = shlex.split(args.wrap) if args.wrap else []
        tg_log = run_dir / "tollgate.log"
        tg = gw.PROCS.start("tollgate", gw.pinned(args.server_cpu, wrap + cli + ["serve"]), log=tg_log, env=env,
                            cwd=run_dir)
        procs.append(tg)
        gw.wait_for_port(gw_port, tg, "tollgate", tg_log, timeout=120)
        gw.wait_for_port(console_port, tg, "tollgate console", tg_log, timeout=120)
        headers = {"Authorization": f"Bearer {key}"}
        status_code, _, body = gw.http_get(gw_port, "/up/ok", headers)
        if status_code != 200:
            raise gw.BenchError(f"GET /up/ok answered {status_code}: {body[:200]!r}")
        status_code, _, body = gw.http_get(gw_port, "/sse-up/sse", {**headers, "x-mock-chunks": "20"})
        if status_code != 200 or body.count(b"data:") != 20:
            raise gw.BenchError(f"GET /sse-up/sse answered {status_code}: {body[:200]!r}")
        time.sleep(args.settle)
        gw.http_get(gw_port, "/up/ok", headers)
        time.sleep(1.0)
        pid = tg.pid  # taskset and valgrind exec in place: the pid is tollgate's (or the tool's, with it)
        st = status(pid)
        if args.at_idle:
            subprocess.run(shlex.split(args.at_idle.replace("{pid}", str(pid))), check=False, timeout=120)
        maps = mappings(pid)
        kinds = classify(maps, str(tollgate_bin))
        crates = text_by_crate(pid, maps, tollgate_bin) if args.text_by_crate else {}
        return {"status_kib": st, "kinds_kib": kinds, "text_by_crate": crates}
    finally:
        for proc in reversed(procs):
            gw.PROCS.stop(proc)
        subprocess.run(["rm", "-rf", str(run_dir)], check=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", required=True, help="directory with tollgate and tollgate-mock-upstream")
    p.add_argument("--repeat", type=int, default=1, help="start tollgate this many times; medians are printed")
    p.add_argument("--openai", action="store_true", help="add an openai route (its vocabulary loads at start)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds between the pre-flight requests and the last one (default 1, as gateway.py)")
    p.add_argument("--server-cpu", default="0", help="CPU list tollgate is pinned to (default 0, as gateway.py)")
    p.add_argument("--wrap", help="a command to run `serve` under, e.g. valgrind --tool=massif …")
    p.add_argument("--at-idle", metavar="CMD",
                   help="run CMD ({pid} replaced) at the moment of measuring, e.g. "
                        "'vgdb --pid={pid} detailed_snapshot /tmp/idle.massif' with --wrap valgrind --tool=massif")
    p.add_argument("--json", help="write every run's figures to this file")
    p.add_argument("--text-by-crate", type=int, default=0, metavar="N",
                   help="also print the N crates with the most resident bytes of the binary's code (first run)")
    p.add_argument("--code-order", metavar="FILE",
                   help="run `serve` under callgrind and write the functions it executed (start, the requests, "
                        "idle) to FILE, the symbol ordering file of crates/tollgate/build.rs (two runs: without and with --openai)")
    args = p.parse_args()
    bin_dir = Path(args.bin_dir).resolve()
    if args.code_order:
        binary = bin_dir / "tollgate"
        addresses: set[int] = set()
        # One run with the http routes alone and one with an openai route too (its vocabulary
        # loads; under callgrind that takes tens of seconds, so the wait is longer): what a run
        # executes depends a little on timing, the union covers both set-ups.
        for openai, settle in ((False, args.settle), (True, max(args.settle, 60.0))):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "callgrind.out"
                args.wrap = f"valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file={out}"
                args.openai, args.settle = openai, settle
                one_run(args, bin_dir)
                addresses |= executed_addresses(out, binary)
        symbols = executed_symbols(addresses, binary)
        header = [
            "# The functions `tollgate serve` executes from start to idle (SQLite store, http routes, and an",
            "# openai route in a second run; JSON and SSE calls), in address order: the linker places them",
            "# together (build.rs) so that they fill as few pages of memory as they can. Made by",
            "#   python3 bench/idle_rss.py --bin-dir target/release --code-order crates/tollgate/code-order.txt",
            "# from a release build (code-order-dist.txt: from a `dist` build with CARGO_PROFILE_DIST_STRIP=false);",
            "# a name that no longer exists is skipped (comment lines are such names).",
        ]
        Path(args.code_order).write_text("\n".join(header + symbols) + "\n")
        print(f"{args.code_order}: {len(symbols)} functions")
        return 0
    runs = [one_run(args, bin_dir) for _ in range(args.repeat)]

    def med(values: list[int]) -> float:
        return statistics.median(values) / 1024

    print(f"{bin_dir}: {args.repeat} start(s){', openai route' if args.openai else ''}; MiB, median")
    for key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
        vals = [r["status_kib"][key] for r in runs]
        print(f"  {key:9} {med(vals):7.2f}   ({', '.join(f'{v / 1024:.2f}' for v in vals)})")
    print(f"  threads   {statistics.median([r['status_kib']['Threads'] for r in runs]):.0f}")
    kinds = sorted({k for r in runs for k in r["kinds_kib"]})
    print(f"  {'mapping kind':28} {'Rss':>7} {'of it anon':>10} {'mappings':>8}")
    for kind in sorted(kinds, key=lambda k: -statistics.median([r["kinds_kib"].get(k, {}).get("Rss", 0) for r in runs])):
        rss = [r["kinds_kib"].get(kind, {}).get("Rss", 0) for r in runs]
        anon = [r["kinds_kib"].get(kind, {}).get("Anonymous", 0) for r in runs]
        count = [r["kinds_kib"].get(kind, {}).get("count", 0) for r in runs]
        print(f"  {kind:28} {med(rss):7.2f} {med(anon):10.2f} {statistics.median(count):8.0f}")
    if args.text_by_crate:
        crates = runs[0]["text_by_crate"]
        print(f"  resident code pages {crates.pop('(pages)') / 2**20:.2f} MiB; by crate of the symbols in them (MiB):")
        for name, size in sorted(crates.items(), key=lambda kv: -kv[1])[:args.text_by_crate]:
            print(f"    {name:40} {size / 2**20:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"bin_dir": str(bin_dir), "openai": args.openai, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except gw.BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
