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
python3 - "$UPSTREAM_BODY_FILE" <<'PY'
import hashlib, hmac, json, os, re, sys
cs = os.environ["AzureSignalRConnectionString"]
key = re.search(r"AccessKey=([^;]+)", cs).group(1)
conn = "bench-connection-0001"
sig = "sha256=" + hmac.new(key.encode(), conn.encode(), hashlib.sha256).hexdigest().upper()
body = json.dumps({"type": 1, "invocationId": "1", "target": "SubscribeToDashboard", "arguments": [[]]})
headers = {
    "Content-Type": ["application/json"],
    "X-ASRS-Connection-Id": [conn],
    "X-ASRS-Hub": ["meschaindashboardhub"],
    "X-ASRS-Category": ["messages"],
    "X-ASRS-Event": ["SubscribeToDashboard"],
    "X-ASRS-Signature": [sig],
    "X-ASRS-User-Id": ["bench-user"],
    "X-ASRS-User-Claims": ["asrs.s.uid: bench-user, role: viewer"],
}
envelope = {"Data": {"req": {"Url": "http://localhost:7071/api/signalr/upstream", "Method": "POST",
                             "Query": {}, "Headers": headers, "Params": {}, "Body": body}},
            "Metadata": {"sys": {"MethodName": "connection-events"}}}
open(sys.argv[1], "w").write(json.dumps(envelope))
PY
bench_start_handler
out=$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "@$UPSTREAM_BODY_FILE" "http://127.0.0.1:$port/connection-events")
echo "$out" | grep -q '"statusCode":200' || { echo "unexpected answer: $out" >&2; exit 1; }
echo "$out" | grep -q 'subscribed' || { echo "no completion result in: $out" >&2; exit 1; }

echo "== upstream invocations (enveloped): wrk -t1 -c$connections -d${duration}s"
bench_wrk "$duration" "$connections" bench/upstream.lua "http://127.0.0.1:$port/connection-events"
rm -f "$UPSTREAM_BODY_FILE"
