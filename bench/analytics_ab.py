#!/usr/bin/env python3
"""Two (or more) builds of tollgate timed against each other without the machine's drift: every
server runs at once, each on its own copy of a store, and each round calls every endpoint on
every server in random order; p50 per endpoint and server.

  python3 bench/analytics_ab.py make BIN DIR EVENTS      # a demo store written by BIN
  cp -a DIR DIR-copy                                     # one copy per server
  python3 bench/analytics_ab.py ROUNDS old=BIN_A:DIR new=BIN_B:DIR-copy

A newer build migrates its copy at start; an older one cannot open a newer store. To compare a
build without latency sketches (before migration 0014) with one that has them on the same events,
write the store with the newer build and strip the sketches from the older build's copy:

  python3 bench/analytics_ab.py make NEW_BIN DIR EVENTS
  cp -a DIR DIR-old && python3 bench/analytics_ab.py strip-sketches DIR-old
  python3 bench/analytics_ab.py ROUNDS old=OLD_BIN:DIR-old new=NEW_BIN:DIR

Each line prints p50 and p95 (ms) per server.

  python3 bench/analytics_ab.py writer EVENTS ROUNDS DIR old=BIN_A new=BIN_B

times the usage writer: each round, each build in turn (order alternating) writes EVENTS demo events
over 90 days into a fresh SQLite store under DIR with `tollgate demo`, under /usr/bin/time; prints
the events/s `demo` reports and the process's elapsed, user and system seconds and peak RSS."""
import json, os, subprocess, sys, time, urllib.request, socket, statistics, shutil, random, sqlite3
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

def strip_sketches(d):
    """The store as a build before migration 0014 has it: the sketch tables and the migration's
    row gone (its pages stay free in the file; every other table is untouched)."""
    db = sqlite3.connect(f"{d}/tollgate.db")
    db.execute("DROP TABLE IF EXISTS summary_hourly")
    db.execute("DROP TABLE IF EXISTS summary_daily")
    db.execute("DELETE FROM _sqlx_migrations WHERE version = 14")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()

def writer_rounds(events, rounds, root, builds):
    """`demo --events` on a fresh store per run, builds alternating; the store is removed after."""
    for r in range(rounds):
        for label, bin_path in (builds if r % 2 == 0 else builds[::-1]):
            d = os.path.join(root, f"writer-{label}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            env = A.base_env(f"{d}/data", f"sqlite://{d}/tollgate.db")
            A.run([bin_path, "migrate"], env, d, 600)
            out = subprocess.run(["/usr/bin/time", "-f", "%e s elapsed, %U s user, %S s sys, %M KB max RSS",
                                  bin_path, "demo", "--events", str(events), "--days", "90"],
                                 env=env, cwd=d, capture_output=True, text=True, timeout=7200)
            if out.returncode != 0:
                raise SystemExit(f"demo failed: {out.stderr.strip()}")
            line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
            print(f"round {r + 1} {label:6s} {line} | {out.stderr.strip().splitlines()[-1]}", flush=True)
            shutil.rmtree(d, ignore_errors=True)

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

EPS = [("summary 24h", "/api/v1/usage/summary?range=24h"),
       ("summary 90d", "/api/v1/usage/summary?range=90d"),
       ("series 7d hourly", "/api/v1/usage/series?range=7d&bucket=hour"),
       ("series 90d daily", "/api/v1/usage/series?range=90d&bucket=day"),
       ("top keys 30d", "/api/v1/usage/top?by=key&range=30d"),
       ("top routes 30d", "/api/v1/usage/top?by=route&range=30d"),
       ("top models 90d tokens", "/api/v1/usage/top?by=model&order=tokens&range=90d"),
       ("top teams 90d", "/api/v1/usage/top?by=team&range=90d"),
       ("one key, models 90d", "/api/v1/usage/top?by=model&range=90d&key_id=1"),
       ("call log page", "/api/v1/logs?limit=50"),
       ("call log 5xx", "/api/v1/logs?limit=50&status=5xx"),
       ("teams", "/api/v1/teams")]

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make_store(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    if sys.argv[1] == "writer":
        builds = [tuple(spec.split("=", 1)) for spec in sys.argv[5:]]
        writer_rounds(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], builds)
        sys.exit(0)
    if sys.argv[1] == "strip-sketches":
        strip_sketches(sys.argv[2])
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
            print(f"{e:24s} " + "  ".join(f"{l}: {statistics.median(res[(l,e)]):7.2f} / {A.pct(res[(l,e)], 0.95):7.2f}" for l, *_ in servers))
    finally:
        for l, p, *_ in servers: p.terminate(); p.wait()
