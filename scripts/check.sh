#!/usr/bin/env bash
# The inner loop, meant to take a minute or two on a warm build: format, lints, the unit tests
# inside each crate (no integration tests, no database, no browser), and the web console's type
# check, lint and unit tests when web/node_modules is there. Installs nothing and starts nothing;
# scripts/test.sh is the full suite CI runs.
# Usage: scripts/check.sh [extra arguments for cargo nextest, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'check.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust stable (rust-toolchain.toml)"
cargo nextest --version >/dev/null 2>&1 || die "cargo-nextest is missing: cargo install --locked cargo-nextest"

say "format"
cargo fmt --all -- --check || die "not formatted: run cargo fmt --all"

say "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "unit tests"
# --lib and --bins: the #[cfg(test)] modules only; tests/ (servers, PostgreSQL) are for test.sh.
cargo nextest run --workspace --locked --lib --bins --no-fail-fast "$@"

if [ -d web/node_modules ]; then
  say "web console: type check, lint, unit tests"
  npm --prefix web run --silent typecheck
  if node -e 'process.exit(require("./web/package.json").scripts?.lint ? 0 : 1)'; then
    npm --prefix web run --silent lint
  fi
  npm --prefix web test --silent
else
  say "web console: skipped (no web/node_modules; npm --prefix web ci --prefer-offline to include it)"
fi

say "check.sh: all green"
