#!/usr/bin/env python3
"""Two (or more) builds of tollgate timed against each other without the machine's drift: every
server runs at once, each on its own copy of a store, and each round calls every endpoint on
every server in random order; p50 per endpoint and server.

  python3 bench/analytics_ab.py make BIN DIR EVENTS      # a demo store written by BIN
  cp -a DIR DIR-copy                                     # one copy per server
  python3 bench/analytics_ab.py ROUNDS old=BIN_A:DIR new=BIN_B:DIR-copy

A newer build migrates its copy at start; an older one cannot open a newer store."""
import json, os, subprocess, sys, time, urllib.request, socket, statistics, shutil, random
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analytics as A

def make_store(bin_path, d, events):
    if os.path.exists(d): return
    os.makedirs(d)
    env = A.base_env(f"{d}/data", f"sqlite://{d}/tollgate.db")
    A.run([bin_path, "migrate"], env, d, 600)
    t0 = time.monotonic()
    A.run([bin_path, "demo", "--events", str(events), "--days", "90"], env, d, 3600)
    print(f"demo {bin_path} {events} events: {events/(time.monotonic()-t0):.0f} ev/s", flush=True)

def serve(bin_path, d):
    env = A.base_env(f"{d}/data", f"sqlite://{d}/tollgate.db")
    gw, console = A.free_port(), A.free_port()
    env.update({"TOLLGATE_GATEWAY_LISTEN": f"127.0.0.1:{gw}", "TOLLGATE_CONSOLE_LISTEN": f"127.0.0.1:{console}"})
    p = subprocess.Popen([bin_path, "serve"], env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=open(f"{d}/serve.log", "a"))
    base = f"http://127.0.0.1:{console}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/health", timeout=1); break
        except Exception: time.sleep(0.1)
    tok = json.loads(A.run([bin_path, "token", "create", "--email", A.ADMIN_EMAIL, "--name", f"b{time.time()}", "--json"], env, d, 60))["token"]
    return p, base, tok

EPS = [("summary 90d", "/api/v1/usage/summary?range=90d"),
       ("series 7d hourly", "/api/v1/usage/series?range=7d&bucket=hour"),
       ("top keys 30d", "/api/v1/usage/top?by=key&range=30d"),
       ("call log page", "/api/v1/logs?limit=50"),
       ("call log 5xx", "/api/v1/logs?limit=50&status=5xx"),
       ("teams", "/api/v1/teams")]

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make_store(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    rounds = int(sys.argv[1])
    servers = []
    for spec in sys.argv[2:]:
        label, rest = spec.split("=", 1)
        bin_path, store = rest.split(":", 1)
        servers.append((label,) + serve(bin_path, store))
    res = {(l, e): [] for l, *_ in servers for e, _ in EPS}
    try:
        for r in range(rounds):
            for e, path in EPS:
                for l, p, base, tok in random.sample(servers, len(servers)):
                    t0 = time.perf_counter(); A.request(base + path, tok); res[(l, e)].append((time.perf_counter() - t0) * 1000)
        for e, _ in EPS:
            print(f"{e:20s} " + "  ".join(f"{l}: {statistics.median(res[(l,e)]):7.2f}" for l, *_ in servers))
    finally:
        for l, p, *_ in servers: p.terminate(); p.wait()
