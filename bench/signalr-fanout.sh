#!/usr/bin/env bash
# Fan-out benchmark of the local SignalR service (`meschain signalr`): holds N WebSocket clients
# (N = 1,000 and 10,000 by default), broadcasts through the REST API at a fixed rate, and
# reports delivered messages/s, p50/p99 latency from the REST call to receipt, and the server's
# RSS per idle connection. Goals (2 cores): 10,000 connections held; >= 200,000 delivered
# messages/s with p99 <= 100 ms; <= 20 KB RSS per idle connection.
#
# Usage: bench/signalr-fanout.sh            # both sizes, rates chosen for 200,000 msgs/s
#        N_LIST="1000" RATE_1000=400 DURATION=5 bench/signalr-fanout.sh
# Results are printed and also written to bench/results/signalr-fanout-<timestamp>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

N_LIST=${N_LIST:-"1000 10000"}
DURATION=${DURATION:-10}
# Broadcasts per second per size: N x rate = 200,000 deliveries/s.
RATE_1000=${RATE_1000:-200}
RATE_10000=${RATE_10000:-20}
KEY=${KEY:-benchmark-key-0123456789abcdefghijklmnopqrstu}

# 10,000 clients need 10,000+ descriptors in each process.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 12000 ]; then
  echo "warning: open-file limit $(ulimit -n) is below what 10,000 connections need" >&2
fi

cargo build --release --locked -p meschain -p meschain-loadgen
mkdir -p bench/results
out="bench/results/signalr-fanout-$(date -u +%Y%m%dT%H%M%SZ).txt"

server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

{
  echo "# signalr-fanout $(date -u +%FT%TZ) on $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# The load generator runs on the same cores as the server; its CPU share is reported below."
  for n in $N_LIST; do
    rate_var="RATE_$n"
    rate=${!rate_var:-20}
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    RUST_LOG=warn target/release/meschain signalr --port "$PORT" --access-key "$KEY" >/dev/null &
    server_pid=$!
    for _ in $(seq 1 50); do
      if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then break; fi
      sleep 0.1
    done
    echo
    echo "## N=$n, $rate broadcasts/s for ${DURATION}s"
    target/release/meschain-loadgen --port "$PORT" --key "$KEY" --server-pid "$server_pid" \
      --connections "$n" --rate "$rate" --duration "$DURATION"
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  done
} 2>&1 | tee "$out"
echo "results written to $out"
