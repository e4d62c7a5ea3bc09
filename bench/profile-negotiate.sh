#!/usr/bin/env bash
# Where negotiate's time goes: `perf` on a release handler (analytics on) under the load of
# bench/negotiate.sh, written as a flame graph (bench/results/negotiate-flame.svg) and the top
# frames as text (bench/results/negotiate-perf.txt).
# The shipped release profile strips symbols, so this builds the same profile with symbols and
# frame pointers into target/profile (a separate, full build).
# Usage: bench/profile-negotiate.sh [SECONDS=10] [CONNECTIONS=64]
# Needs perf (Debian package linux-perf), wrk, and inferno (`cargo install inferno --root .tools`,
# done here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
seconds=${1:-10}
connections=${2:-64}
results=bench/results
mkdir -p "$results"
[ -x .tools/bin/inferno-flamegraph ] || cargo install --locked inferno --root .tools >/dev/null
CARGO_PROFILE_RELEASE_STRIP=none RUSTFLAGS="-C force-frame-pointers=yes" \
  cargo build --release --target-dir target/profile -p meschain-functions --bin handler >/dev/null
# bench_setup builds the release handler unless HANDLER names one: here it is the profiling build.
HANDLER=${PROFILE_HANDLER:-target/profile/release/handler} bench_setup
export LOGIN_TOKEN
LOGIN_TOKEN=$(python3 bench/handler_probe.py token "$AUTH_JWT_SECRET" "$AUTH_ISSUER" "$AUTH_AUDIENCE")
export MESCHAIN_DATA_DIR
MESCHAIN_DATA_DIR=$(mktemp -d)
bench_start_handler
echo "== $(date -u +%FT%TZ) $(uptime)"
wrk -t1 -c"$connections" -d"$((seconds + 2))s" -s bench/negotiate.lua "http://127.0.0.1:$port/api/negotiate" \
  > "$results/negotiate-perf-wrk.txt" &
wrk_pid=$!
sleep 1
perf record -F 999 -g -p "$handler_pid" -o "$results/negotiate.perf.data" -- sleep "$seconds" 2>/dev/null
# Only wrk: a bare `wait` would also wait for the handler, which runs until the script exits.
wait "$wrk_pid"
grep 'Requests/sec' "$results/negotiate-perf-wrk.txt"
perf script -i "$results/negotiate.perf.data" 2>/dev/null | .tools/bin/inferno-collapse-perf > "$results/negotiate.folded"
.tools/bin/inferno-flamegraph --title "negotiate, analytics on, $connections connections" \
  < "$results/negotiate.folded" > "$results/negotiate-flame.svg"
perf report -i "$results/negotiate.perf.data" --stdio --no-children --percent-limit 1 2>/dev/null \
  | grep -E '^ +[0-9]' > "$results/negotiate-perf.txt" || true
head -30 "$results/negotiate-perf.txt"
echo "flame graph: $results/negotiate-flame.svg"
