#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine with dpkg, checks the systemd unit with
# `systemd-analyze verify`, starts the packaged binary as the packaged user with the packaged
# configuration, calls it (console /health, the gateway, the CLI on the packaged store), and
# purges the package, checking that nothing is left. Needs root (dpkg); installs cargo-deb when
# missing. TOLLGATE_DEB_PROFILE picks the cargo profile (default: dist, what ships; `release`
# or `dev` are quicker for trying the script itself); TOLLGATE_DEB_NO_BUILD=1 packages the
# binary that profile already built instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${TOLLGATE_DEB_PROFILE:-dist}"
STATE=/var/lib/tollgate
CONFIG=/etc/tollgate/tollgate.toml

say() { printf 'test-deb: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i)"
if dpkg -s tollgate >/dev/null 2>&1; then
    fail "a tollgate package is installed already; this test would remove it"
fi
for tool in dpkg systemd-analyze curl runuser setpriv; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done
if ! command -v cargo-deb >/dev/null; then
    say "installing cargo-deb"
    cargo install cargo-deb --locked
fi
if [ ! -f web/dist/index.html ]; then
    say "building the web console"
    npm --prefix web ci
    npm --prefix web run build
fi

server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if dpkg -s tollgate >/dev/null 2>&1; then
        dpkg --purge tollgate >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

say "building the package (profile $PROFILE)"
started=$(date +%s)
build_flag=()
if [ "${TOLLGATE_DEB_NO_BUILD:-}" = 1 ]; then
    build_flag=(--no-build)
fi
# --strip: the dist profile keeps its symbols (see Cargo.toml); the package does not need them.
cargo deb -p tollgate --profile "$PROFILE" "${build_flag[@]}" --strip --output target/debian/
say "package built in $(( $(date +%s) - started )) s"
deb=$(ls -t target/debian/tollgate_*.deb | head -n 1)
say "$deb: $(du -h "$deb" | cut -f1)"

contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/tollgate ./etc/tollgate/tollgate.toml tollgate.service; do
    grep -q -- "$path" <<<"$contents" || fail "the package lacks $path"
done

say "installing"
dpkg -i "$deb"
getent passwd tollgate >/dev/null || fail "postinst did not create the tollgate user"
[ "$(stat -c %U "$STATE")" = tollgate ] || fail "$STATE is not owned by tollgate"
[ "$(stat -c '%U:%G %a' "$CONFIG")" = "root:tollgate 640" ] || fail "$CONFIG is not root:tollgate 640"
unit=$(dpkg -L tollgate | grep '/tollgate.service$' | head -n 1)
[ -n "$unit" ] || fail "no unit installed"
say "systemd-analyze verify $unit"
systemd-analyze verify "$unit"
for hardening in "User=tollgate" "StateDirectory=tollgate" "ProtectSystem=strict" \
    "NoNewPrivileges=yes" "LimitNOFILE="; do
    grep -q "^$hardening" "$unit" || fail "the unit lacks $hardening"
done

say "starting /usr/bin/tollgate as tollgate with $CONFIG"
ready="$STATE/ready.json"
rm -f "$ready"
# The packaged configuration; only the ports are moved to free ones, so the test never collides
# with a service on 8080 or 8317.
# setpriv (not runuser) execs tollgate itself, so the SIGTERM below reaches it directly, as
# systemd's would.
setpriv --reuid=tollgate --regid=tollgate --init-groups --reset-env \
    env -i PATH=/usr/bin:/bin \
    TOLLGATE_GATEWAY_LISTEN=127.0.0.1:0 TOLLGATE_CONSOLE_LISTEN=127.0.0.1:0 \
    TOLLGATE_MASTER_KEY=deb-test-master-key-0123456789abcdef \
    /usr/bin/tollgate --config "$CONFIG" serve --ready-file "$ready" \
    >"$STATE/test.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
    [ -s "$ready" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$STATE/test.log" >&2; fail "the server exited"; }
    sleep 0.2
done
[ -s "$ready" ] || fail "the server was not ready in 30 s"
console=$(sed -E 's/.*"console":"([^"]+)".*/\1/' "$ready")
gateway=$(sed -E 's/.*"gateway":"([^"]+)".*/\1/' "$ready")
health=$(curl -fsS "http://$console/health")
say "GET /health: $health"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$gateway/no-such-route")
[ "$code" = 401 ] || [ "$code" = 404 ] || fail "the gateway answered $code"
[ -f "$STATE/tollgate.db" ] || fail "the store is not in $STATE"
[ "$(stat -c %U "$STATE/tollgate.db")" = tollgate ] || fail "the store is not the user's"
# A second server on the same store refuses (one instance per SQLite store).
if runuser -u tollgate -- env -i PATH=/usr/bin:/bin \
    TOLLGATE_GATEWAY_LISTEN=127.0.0.1:0 TOLLGATE_CONSOLE_LISTEN=127.0.0.1:0 \
    /usr/bin/tollgate --config "$CONFIG" serve >/dev/null 2>&1; then
    fail "a second server started on the same store"
fi
key=$(runuser -u tollgate -- env -i PATH=/usr/bin:/bin TOLLGATE_MASTER_KEY=deb-test-master-key-0123456789abcdef \
    /usr/bin/tollgate --config "$CONFIG" key create --name deb-test 2>/dev/null)
case "$key" in ntk_*) ;; *) fail "key create printed '$key'" ;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://$gateway/no-such-route")
[ "$code" = 404 ] || fail "the gateway answered $code to a packaged key on an unknown route"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not stop cleanly"
server_pid=""

say "purging"
dpkg --purge tollgate
[ ! -e /usr/bin/tollgate ] || fail "/usr/bin/tollgate is left"
[ ! -e "$unit" ] || fail "$unit is left"
[ ! -e /etc/tollgate ] || fail "/etc/tollgate is left"
[ ! -e /etc/systemd/system/multi-user.target.wants/tollgate.service ] || fail "the unit is still enabled"
[ ! -e "$STATE" ] || fail "$STATE is left"
! getent passwd tollgate >/dev/null || fail "the tollgate user is left"
say "ok"
