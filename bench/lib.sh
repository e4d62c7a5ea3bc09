# Shared by the handler benchmarks: build, settings, start and stop. Source it, don't run it.

# Builds the release handler and exports the example settings, as the local stack uses them.
# HANDLER=path measures that binary instead (the static package: target/x86_64-unknown-linux-musl/release/handler
# after `bash scripts/package.sh`), without building.
bench_setup() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  if [ -n "${HANDLER:-}" ]; then
    [ -x "$HANDLER" ] || { echo "HANDLER=$HANDLER is not an executable" >&2; return 1; }
    handler=$HANDLER
  else
    cargo build --release -p meschain-functions --bin handler >/dev/null
    handler=target/release/handler
  fi
  eval "$(python3 - <<'PY'
import json, shlex
for k, v in json.load(open("local.settings.example.json"))["Values"].items():
    # Host-only settings such as AzureWebJobs.<function>.Disabled are not shell names; the handler does not read them.
    if k.isidentifier():
        print(f"export {k}={shlex.quote(v)}")
PY
)"
}

# Starts the handler on a free port with RUST_LOG=info (one line per invocation, as in
# production, written to /dev/null); sets $port and $handler_pid and stops it on exit.
bench_start_handler() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  FUNCTIONS_CUSTOMHANDLER_PORT=$port RUST_LOG=info "$handler" >/dev/null 2>&1 &
  handler_pid=$!
  trap 'kill $handler_pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && return 0; sleep 0.05; done
  echo "handler did not start" >&2
  return 1
}

# wrk with latency percentiles; prints requests/s, p50/p99 and any non-2xx count.
bench_wrk() {
  local duration=$1 connections=$2 script=$3 url=$4
  wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$script" "$url" \
    | grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%'
}

# Writes to $1 the envelope the Functions host sends for one SignalR upstream hub invocation
# (SubscribeToDashboard with no metrics, so no REST call leaves the handler), signed with the
# access key of the example settings (bench_setup exports them).
bench_upstream_envelope() {
  python3 - "$1" <<'PY'
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
}
