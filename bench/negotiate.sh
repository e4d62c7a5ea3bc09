#!/usr/bin/env bash
# Benchmarks the deployed handler on loopback:
#   - negotiate requests/s and p50/p99 latency (wrk, forwarded POST /api/negotiate with a login token);
#   - time from exec to the first answered GET / (what the Functions host waits for);
#   - idle RSS.
# Usage: bench/negotiate.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
# Needs wrk (Debian package `wrk`; installed if missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-64}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p meschain-functions --bin handler >/dev/null
handler=target/release/handler

# The example settings, as the local stack uses them.
eval "$(python3 - <<'PY'
import json, shlex
for k, v in json.load(open("local.settings.example.json"))["Values"].items():
    print(f"export {k}={shlex.quote(v)}")
PY
)"
export LOGIN_TOKEN
LOGIN_TOKEN=$(python3 bench/handler_probe.py token "$AUTH_JWT_SECRET" "$AUTH_ISSUER" "$AUTH_AUDIENCE")

echo "== start-up and idle memory (20 runs)"
python3 bench/handler_probe.py startup "$handler" 20

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FUNCTIONS_CUSTOMHANDLER_PORT=$port RUST_LOG=info "$handler" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $LOGIN_TOKEN" "http://127.0.0.1:$port/api/negotiate")
[ "$status" = 200 ] || { echo "negotiate answered $status, expected 200" >&2; exit 1; }

echo "== negotiate: wrk -t1 -c$connections -d${duration}s (one log line per request, as in production)"
wrk -t1 -c"$connections" -d"${duration}s" --latency -s bench/negotiate.lua "http://127.0.0.1:$port/api/negotiate" \
  | grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|75|90|99)%'
echo "handler RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
