#!/usr/bin/env bash
# Benchmarks the deployed handler on loopback:
#   - negotiate requests/s and p50/p99 latency (wrk, forwarded POST /api/negotiate with a login token);
#   - time from exec to the first answered GET / (what the Functions host waits for);
#   - idle RSS.
# Usage: bench/negotiate.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
# Needs wrk (Debian package `wrk`; installed if missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-10}
connections=${2:-64}
bench_setup
export LOGIN_TOKEN
LOGIN_TOKEN=$(python3 bench/handler_probe.py token "$AUTH_JWT_SECRET" "$AUTH_ISSUER" "$AUTH_AUDIENCE")

echo "== start-up and idle memory (20 runs)"
python3 bench/handler_probe.py startup "$handler" 20

bench_start_handler
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $LOGIN_TOKEN" "http://127.0.0.1:$port/api/negotiate")
[ "$status" = 200 ] || { echo "negotiate answered $status, expected 200" >&2; exit 1; }

echo "== negotiate: wrk -t1 -c$connections -d${duration}s"
bench_wrk "$duration" "$connections" bench/negotiate.lua "http://127.0.0.1:$port/api/negotiate"
echo "handler RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$handler_pid/status)"
