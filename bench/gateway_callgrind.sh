#!/bin/bash
# Instructions per gateway call, counted by callgrind: a load-robust A/B of two builds on a shared
# machine (timed runs move with whatever else runs; instruction counts barely do).
#
# usage: bench/gateway_callgrind.sh BIN_DIR [MOCK_BIN_DIR]
#   BIN_DIR holds `tollgate` (release); the mock upstream comes from MOCK_BIN_DIR (default BIN_DIR)
#   and runs outside valgrind. tollgate serves a plain `http` route to the mock, key checked, usage
#   written to SQLite, under `valgrind --tool=callgrind`. After a warm-up the counters are zeroed,
#   then 1000 JSON calls (`/static`) and 300 SSE streams of 20 events are made one after another on
#   one keep-alive connection; each line printed is the whole process's instructions (every
#   thread, the SQLite writer's included) divided by the calls. Ports 18580-18582 on 127.0.0.1.
set -e
BIN=$1; MBIN=${2:-$1}
[ -x "$BIN/tollgate" ] || { echo "usage: $0 BIN_DIR [MOCK_BIN_DIR] (no $BIN/tollgate)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install -y valgrind)" >&2; exit 2; }
D=$(mktemp -d /tmp/tollgate-callgrind.XXXX)
trap 'kill $TG $MOCK 2>/dev/null; rm -rf "$D"' EXIT
export TOLLGATE_DATA_DIR=$D/data TOLLGATE_GATEWAY_LISTEN=127.0.0.1:18580 TOLLGATE_CONSOLE_LISTEN=127.0.0.1:18581 TOLLGATE_LOG_LEVEL=warn
$MBIN/tollgate-mock-upstream --listen 127.0.0.1:18582 > $D/mock.log 2>&1 & MOCK=$!
$BIN/tollgate migrate >/dev/null
$BIN/tollgate route add --name up --prefix /up --upstream http://127.0.0.1:18582 --strip-prefix >/dev/null
KEY=$($BIN/tollgate key create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
valgrind --tool=callgrind --callgrind-out-file=$D/cg.out --dump-instr=no --collect-atstart=yes $BIN/tollgate serve > $D/tg.log 2>&1 & TG=$!
for i in $(seq 1 120); do curl -s -o /dev/null http://127.0.0.1:18580/ && break; sleep 1; done
python3 - "$KEY" "$D" "$TG" <<'PY'
import http.client, subprocess, sys, re, glob, os
key, d, pid = sys.argv[1], sys.argv[2], sys.argv[3]
h = {"Authorization": f"Bearer {key}"}
def run(path, n, extra={}):
    c = http.client.HTTPConnection("127.0.0.1", 18580)
    for _ in range(n):
        c.request("GET", path, headers={**h, **extra}); r = c.getresponse(); b = r.read()
        assert r.status == 200, (r.status, b)
    c.close()
    return b
def total():
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    files = sorted(glob.glob(d + "/cg.out*"), key=os.path.getmtime)
    txt = open(files[-1]).read()
    m = re.search(r"^(?:summary|totals): (\d+)", txt, re.M)
    return int(m.group(1))
run("/up/static", 50); run("/up/sse", 20, {"x-mock-chunks": "20"})
for name, path, n, extra in [("json", "/up/static", 1000, {}), ("sse20", "/up/sse", 300, {"x-mock-chunks": "20"})]:
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    b = run(path, n, extra)
    t = total()
    print(f"{name}: {t/n:,.0f} instructions per call ({n} calls, sequential, keep-alive)")
PY
