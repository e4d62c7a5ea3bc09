#!/usr/bin/env bash
# Benchmarks the deployed handler's negotiate on loopback, side by side with a Node peer:
#   - time from exec to the first answered GET / (what the Functions host waits for), idle RSS;
#   - negotiate requests/s and p50/p99 latency (wrk, forwarded POST /api/negotiate with a login
#     token) for three servers started together and measured in turn, ROUNDS times:
#       on   the handler, analytics on (the recorder counting every negotiate; the default)
#       off  the handler, ANALYTICS_ENABLED=false
#       node bench/node-peer: Node 20 `cluster` with 2 workers and fast-jwt, the same work
#   - the ratios on/node and off/on per round and their medians. Alternating the three means a
#     busy machine slows each about equally, so the ratios hold where absolute figures do not.
# Every figure is printed with `uptime` (load average) at the time.
# Usage: bench/negotiate.sh [DURATION_SECONDS=10] [CONNECTIONS=64] [ROUNDS=3]
# Needs wrk (Debian package `wrk`; installed if missing and running as root) and Node 20+.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-10}
connections=${2:-64}
rounds=${3:-3}
bench_setup
export LOGIN_TOKEN
LOGIN_TOKEN=$(python3 bench/handler_probe.py token "$AUTH_JWT_SECRET" "$AUTH_ISSUER" "$AUTH_AUDIENCE")
(cd bench/node-peer && npm ci --silent --no-audit --no-fund)
results=bench/results
mkdir -p "$results"

echo "== $(date -u +%FT%TZ) $(uptime)"
echo "== start-up and idle memory (20 runs)"
python3 bench/handler_probe.py startup "$handler" 20

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # PORT: until negotiate answers 200
  for _ in $(seq 400); do
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $LOGIN_TOKEN" \
      "http://127.0.0.1:$1/api/negotiate" || true)
    [ "$status" = 200 ] && return 0
    sleep 0.05
  done
  echo "nothing answered negotiate with 200 on port $1" >&2
  return 1
}
declare -A ports
for mode in on off; do
  ports[$mode]=$(free_port)
  ANALYTICS_ENABLED=$([ $mode = on ] && echo true || echo false) MESCHAIN_DATA_DIR=$(mktemp -d) \
    FUNCTIONS_CUSTOMHANDLER_PORT=${ports[$mode]} RUST_LOG=info "$handler" >/dev/null 2>&1 &
  pids+=($!)
  [ $mode = on ] && on_pid=$!
  wait_for "${ports[$mode]}"
done
ports[node]=$(free_port)
node bench/node-peer/server.mjs "${ports[node]}" 2 >/dev/null 2>&1 &
pids+=($!)
wait_for "${ports[node]}"

# One wrk run; prints "RPS P50_MS P99_MS NON2XX".
measure() {
  wrk -t1 -c"$connections" -d"${duration}s" --latency -s bench/negotiate.lua "http://127.0.0.1:$1/api/negotiate" \
    | python3 -c '
import re, sys
out = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {bad.group(1) if bad else 0}")'
}

echo "== negotiate: wrk -t1 -c$connections -d${duration}s, $rounds rounds of on / off / node"
log=$results/negotiate-$(date -u +%Y%m%dT%H%M%SZ).txt
for round in $(seq "$rounds"); do
  for mode in on off node; do
    read -r rps p50 p99 bad < <(measure "${ports[$mode]}")
    load=$(uptime | sed 's/.*load average: //')
    printf 'round %d %-4s %8s req/s  p50 %6s ms  p99 %6s ms  non-2xx %s  load %s\n' \
      "$round" "$mode" "$rps" "$p50" "$p99" "$bad" "$load" | tee -a "$log"
  done
done
echo "handler (analytics on) RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$on_pid/status)"
python3 - "$log" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    runs.setdefault(int(f[1]), {})[f[2]] = (float(f[3]), float(f[9]))
on_node = [r["on"][0] / r["node"][0] for r in runs.values()]
off_on = [1 - r["on"][0] / r["off"][0] for r in runs.values()]
med = lambda xs: statistics.median(xs)
print("== ratios per round: on/node " + " ".join(f"{x:.2f}x" for x in on_node)
      + "; analytics cost (1 - on/off) " + " ".join(f"{x:+.1%}" for x in off_on))
print(f"== median: negotiate {med(on_node):.2f}x the Node peer (target >= 2.5x); "
      f"analytics on {med(off_on):+.1%} vs off (target <= 10%); "
      f"p99 on {med([r['on'][1] for r in runs.values()]):.2f} ms (target <= 2 ms)")
PY
echo "== $(date -u +%FT%TZ) $(uptime); log in $log"
