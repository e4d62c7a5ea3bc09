#!/usr/bin/env bash
# Dashboard page weight and load → first live figure, in Debian's Chromium on loopback against
# `meschain dev` with release binaries. Usage: bench/dashboard.sh [runs=10]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p meschain-functions -p meschain --bins >/dev/null 2>&1
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
[ -x /usr/bin/chromium ] || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
uptime
MESCHAIN_PROFILE=release node bench/dashboard.mjs "${1:-10}"
