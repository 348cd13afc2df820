#!/usr/bin/env bash
# Builds everything (the web console, then the binary with it inside) and runs tollgate on its
# embedded defaults: SQLite in ./tollgate-data/, gateway on 127.0.0.1:8080, console on 127.0.0.1:8317.
# Extra arguments go to `tollgate serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null 2>&1; then
  npm --prefix web ci --no-audit --no-fund --loglevel=error
  npm --prefix web run build
else
  echo "run.sh: npm not found: building without the web console (the console page says how to add it)" >&2
fi
exec cargo run --release --locked -p tollgate -- serve "$@"
