#!/usr/bin/env python3
"""Instructions (valgrind callgrind) one request of each endpoint costs the server: repeatable
whatever else the machine runs. Counts only while N requests run, after the server settled
(CG_SETTLE seconds, default 90: the vocabularies load in the background at start); `idle`
counts N pauses with no request (the background's share).

  python3 bench/analytics_callgrind.py BIN STORE_DIR N token|session [endpoint ...]

STORE_DIR is a store made by `analytics_ab.py make`; endpoints are named as in analytics_ab.py."""
import sys, json, time, os, subprocess, urllib.request, glob
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analytics_ab as M, analytics as A
bin_path, store, n, auth = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
names = sys.argv[5:] or [e for e, _ in M.EPS]
env = A.base_env(f"{store}/data", f"sqlite://{store}/tollgate.db")
gw, console = A.free_port(), A.free_port()
env.update({"TOLLGATE_GATEWAY_LISTEN": f"127.0.0.1:{gw}", "TOLLGATE_CONSOLE_LISTEN": f"127.0.0.1:{console}"})
out = f"/tmp/cg-{os.getpid()}"
os.makedirs(out, exist_ok=True)
p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.%p", bin_path, "serve"], env=env, cwd=store, stdout=subprocess.DEVNULL, stderr=open(f"{out}/err", "w"))
base = f"http://127.0.0.1:{console}"
for _ in range(1200):
    try: urllib.request.urlopen(base + "/health", timeout=2); break
    except Exception: time.sleep(0.5)
time.sleep(float(os.environ.get("CG_SETTLE", "90")))
tok = json.loads(A.run([bin_path, "token", "create", "--email", A.ADMIN_EMAIL, "--name", f"cg{time.time()}", "--json"], env, store, 120))["token"]
if auth == "token":
    h = {"Authorization": f"Bearer {tok}"}
else:
    req = urllib.request.Request(base + "/api/v1/auth/login", data=json.dumps({"email": A.ADMIN_EMAIL, "password": A.ADMIN_PASSWORD}).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        h = {"Cookie": [v for k, v in r.getheaders() if k.lower() == "set-cookie" and "tollgate_session" in v][0].split(";")[0]}
def get(path):
    with urllib.request.urlopen(urllib.request.Request(base + path, headers=h), timeout=120) as r: r.read()
try:
    for name in names:
        path = dict(M.EPS).get(name)
        if path: get(path); get(path)  # warm
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True)
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True)
        for _ in range(n):
            if path: get(path)
            time.sleep(0.3)  # let the periodic checkpoint run between requests, as in the bench
        subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True)
        r = subprocess.run(["callgrind_control", "-d", name.replace(" ", "_"), str(p.pid)], capture_output=True, text=True)
        time.sleep(1)
        files = sorted(glob.glob(f"{out}/cg.*"), key=os.path.getmtime)
        tot = 0
        for line in open(files[-1]):
            if line.startswith("summary:") or line.startswith("totals:"):
                tot = int(line.split()[1])
        print(f"{name:20s} {auth:8s} {tot/n/1e6:10.2f} M instr/request", flush=True)
finally:
    p.terminate(); p.wait()
