#!/usr/bin/env bash
# Benchmarks `connection-events`, the SignalR upstream, through the handler: signature check,
# dispatch of a blocking hub invocation and its framed completion. The request is the envelope
# the Functions host sends (POST /connection-events); the method is SubscribeToDashboard with
# no metrics, so no REST call leaves the process and the figure is the handler's own cost.
# Usage: bench/upstream.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-10}
connections=${2:-64}
bench_setup
export UPSTREAM_BODY_FILE
UPSTREAM_BODY_FILE=$(mktemp)
bench_upstream_envelope "$UPSTREAM_BODY_FILE"
bench_start_handler
out=$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "@$UPSTREAM_BODY_FILE" "http://127.0.0.1:$port/connection-events")
echo "$out" | grep -q '"statusCode":200' || { echo "unexpected answer: $out" >&2; exit 1; }
echo "$out" | grep -q 'subscribed' || { echo "no completion result in: $out" >&2; exit 1; }

echo "== upstream invocations (enveloped): wrk -t1 -c$connections -d${duration}s"
bench_wrk "$duration" "$connections" bench/upstream.lua "http://127.0.0.1:$port/connection-events"
rm -f "$UPSTREAM_BODY_FILE"
