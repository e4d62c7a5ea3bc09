#!/usr/bin/env bash
# Runs the whole system locally, no Azure account needed: `meschain dev` starts the local
# Functions host on http://localhost:7071, the real `handler` under it, the local SignalR
# service (its upstream wired to connection-events) and the durable local queue, with the
# settings of local.settings.json (or, when absent, local.settings.example.json).
# Extra arguments go to `meschain dev` (e.g. --port 0, --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p meschain-functions -p meschain --bins
# The dashboard `meschain dev` serves at /: npm packages installed when the lock file changed.
(cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run build --silent)
exec target/release/meschain dev --app-root . --handler target/release/handler "$@"
