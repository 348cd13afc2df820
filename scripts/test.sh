#!/usr/bin/env bash
# The whole test suite, as CI runs it: the web console's build and unit tests, format, lints, the
# dependency policy (cargo-deny), every Rust test on SQLite and PostgreSQL, then the console end
# to end in Chromium. scripts/check.sh is the quick subset for while you work.
# Installs or starts whatever a fresh machine lacks, and fails loudly when something cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

need_apt() {
  # $1 = command to look for, $2 = Debian package that provides it
  command -v "$1" >/dev/null 2>&1 && return 0
  say "installing $2"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq || die "apt-get update failed"; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || die "cannot install $2"
}

say "services"
need_apt pg_isready postgresql-client
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if ! ls /etc/postgresql >/dev/null 2>&1; then
    need_apt pg_ctlcluster postgresql
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || die "PostgreSQL is not answering on 127.0.0.1:5432"
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 \
  || die "PostgreSQL on 127.0.0.1:5432 does not accept user postgres with trust auth"
# Redis: the limit tests keep shared counters in it (two instances, fail-open and fail-closed).
need_apt redis-cli redis-tools
if [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" != "PONG" ]; then
  need_apt redis-server redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null \
    || die "cannot start redis-server"
  for _ in $(seq 1 30); do [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ] && break; sleep 1; done
fi
[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ] || die "Redis is not answering on 127.0.0.1:6379"

# promtool (Debian's prometheus package) checks the live /metrics exposition in
# crates/tollgate/tests/it/metrics.rs, which fails without it.
need_apt promtool prometheus

say "toolchain"
command -v cargo >/dev/null || die "cargo is missing: install Rust stable"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest || die "cannot install cargo-nextest"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt || true

say "python tools"
command -v python3 >/dev/null || die "python3 is missing"
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check schemathesis || die "cannot install schemathesis from PyPI"
fi
command -v schemathesis >/dev/null || die "schemathesis installed but not on PATH"
# The official LLM SDKs that it::llm_sdk drives against an llm route (tests/sdk/).
python3 -c 'import openai, anthropic' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt \
  || die "cannot install the openai and anthropic SDKs from PyPI"
python3 -c 'import openai, anthropic' || die "the openai and anthropic Python SDKs are installed but do not import"

say "web console: install, build, unit tests"
command -v node >/dev/null || die "node is missing: install Node.js 20 with npm"
command -v npm >/dev/null || die "npm is missing: install Node.js 20 with npm"
need_apt chromium chromium
# A CJK font, so that the Chinese screenshots of the end-to-end tests show characters.
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || dpkg -s fonts-noto-cjk >/dev/null 2>&1 || {
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq || die "apt-get update failed"; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null || die "cannot install fonts-wqy-microhei"
}
npm --prefix web ci --no-audit --no-fund --loglevel=error || die "npm ci failed in web/"
npm --prefix web run build || die "the web console does not build"
npm --prefix web test || die "web console unit tests failed"
npm --prefix web run lint || die "the web console has lint findings (npm --prefix web run lint)"
npm --prefix tests/sdk ci --no-audit --no-fund --loglevel=error || die "npm ci failed in tests/sdk/ (the openai Node SDK)"

say "format"
cargo fmt --all -- --check

say "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "dependencies: licences, banned and duplicate crates, sources (cargo-deny, deny.toml)"
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install --locked cargo-deny || die "cannot install cargo-deny"
fi
# cargo-deny reads every platform's manifests; fetch them (from crates.io) first. The check itself
# runs offline: only Cargo.lock, the manifests and deny.toml are read. Security advisories need
# the RustSec database from the network, so they are not checked here; run
# `cargo deny check advisories` where it can be fetched.
cargo fetch --locked >/dev/null || die "cargo fetch failed"
cargo deny --offline check --hide-inclusion-graph licenses bans sources

say "tests"
cargo nextest run --workspace --locked --no-fail-fast

say "console end to end (Chromium)"
cargo build --locked -p tollgate -p tollgate-mock-upstream
npm --prefix web run e2e

say "edge worker in workerd (Miniflare), against the real binary"
npm --prefix edge/cloudflare-worker ci --no-audit --no-fund --loglevel=error || die "npm ci failed in edge/cloudflare-worker/"
npm --prefix edge/cloudflare-worker test || die "the edge worker's tests failed"

say "Debian package: build, install, verify the unit, run as the packaged user, purge"
# The debug binary of the steps above, packaged as the dist profile would be: what is checked
# here is the package (user, paths, unit, config), not the optimiser.
TOLLGATE_DEB_PROFILE=dev TOLLGATE_DEB_NO_BUILD=1 deploy/test-deb.sh || die "the Debian package test failed"
