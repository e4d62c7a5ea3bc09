#!/usr/bin/env bash
# Benchmarks of the local Functions host (`meschain dev`), release build, loopback only:
#   1. time from `meschain dev` start to ready (handler answering, banner printed), 5 runs;
#   2. local queue throughput through a trivial handler (enqueue over the control endpoint,
#      Service Bus trigger, complete), N messages, maxConcurrentCalls 16;
#   3. invocation overhead per call: p50/p99 of an HTTP trigger through the host (wrapped JSON
#      envelope, and forwarded) minus the same request sent straight to the handler.
# The trivial handler is crates/functions-host/tests/handler/handler.mjs (node), so figures
# include Node's HTTP server; the difference "via host - direct" is the host's own cost.
# Usage: bench/local-host.sh [messages=2000] [calls=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
CALLS=${2:-2000}
OUT=bench/results/local-host
rm -rf "$OUT" && mkdir -p "$OUT"

cargo build --release -p meschain >/dev/null 2>&1
BIN=$PWD/target/release/meschain
HANDLER=$PWD/crates/functions-host/tests/handler/handler.mjs

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

make_app() { # $1 = dir, $2 = forwarding true|false
  mkdir -p "$1/q" "$1/echo"
  cat >"$1/host.json" <<JSON
{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"node","arguments":["$HANDLER"]},"enableForwardingHttpRequest":$2},
 "extensions":{"http":{"routePrefix":"api"},"serviceBus":{"maxConcurrentCalls":16}},"functionTimeout":"00:01:00"}
JSON
  echo '{"IsEncrypted":false,"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom"}}' >"$1/local.settings.json"
  echo '{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"msg","queueName":"bench"}]}' >"$1/q/function.json"
  echo '{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"anonymous","methods":["post"],"route":"echo"},{"type":"http","direction":"out","name":"res"}]}' >"$1/echo/function.json"
}

start_dev() { # $1 = app dir, $2 = port; sets DEV_PID; waits for the handler
  "$BIN" dev --app-root "$1" --data-dir "$1/.data" --port "$2" >"$1/dev.log" 2>&1 &
  DEV_PID=$!
  for _ in $(seq 1 400); do
    if curl -fs "http://127.0.0.1:$2/admin/host/status" | grep -q '"Running"'; then return 0; fi
    sleep 0.025
  done
  echo "dev host did not start; log:" >&2; cat "$1/dev.log" >&2; exit 1
}
stop_dev() { kill "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; }
trap stop_dev EXIT

echo "== 1. start to ready (5 runs; 'Ready in' as printed by meschain dev)"
APP=$OUT/app-wrapped; make_app "$APP" false
for i in 1 2 3 4 5; do
  PORT=$(free_port)
  t0=$(date +%s%N); start_dev "$APP" "$PORT"; t1=$(date +%s%N)
  printf 'run %d: %d ms until /admin/host/status says Running; %s\n' "$i" $(((t1 - t0) / 1000000)) "$(grep -o 'Ready in [0-9]* ms' "$APP/dev.log")"
  stop_dev
done

echo "== 2. queue throughput ($N messages, 16 concurrent producers, maxConcurrentCalls 16)"
rm -rf "$APP/.data"; PORT=$(free_port); start_dev "$APP" "$PORT"
node bench/local-host-client.mjs queue "http://127.0.0.1:$PORT" bench "$N" 16

echo "== 2b. processing only: $N messages pre-filled while the function was disabled, then drained"
stop_dev; rm -rf "$APP/.data"; PORT=$(free_port)
env 'AzureWebJobs.q.Disabled=true' "$BIN" dev --app-root "$APP" --data-dir "$APP/.data" --port "$PORT" >"$APP/dev.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 400); do curl -fs "http://127.0.0.1:$PORT/admin/host/status" | grep -q '"Running"' && break; sleep 0.025; done
node bench/local-host-client.mjs fill "http://127.0.0.1:$PORT" bench "$N" 16
stop_dev
start_dev "$APP" "$PORT"
node bench/local-host-client.mjs drain "http://127.0.0.1:$PORT" bench "$N"

echo "== 3. invocation overhead ($CALLS sequential POSTs each)"
HPORT=$(curl -fs "http://127.0.0.1:$PORT/admin/host/status" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).handler.port))')
printf 'direct to handler (forwarded-style path): '; node bench/local-host-client.mjs latency "http://127.0.0.1:$HPORT/api/echo" "$CALLS"
printf 'direct to handler (JSON envelope path):   '; node bench/local-host-client.mjs latency "http://127.0.0.1:$HPORT/other" "$CALLS"
printf 'through host, wrapped envelope:           '; node bench/local-host-client.mjs latency "http://127.0.0.1:$PORT/api/echo" "$CALLS"
stop_dev
APPF=$OUT/app-forwarded; make_app "$APPF" true; PORT=$(free_port); start_dev "$APPF" "$PORT"
printf 'through host, forwarded:                  '; node bench/local-host-client.mjs latency "http://127.0.0.1:$PORT/api/echo" "$CALLS"
stop_dev
