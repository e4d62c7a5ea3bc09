#!/usr/bin/env bash
# Where a function's time goes: `perf` on a release handler (analytics on) under the load of
# bench/negotiate.sh or bench/upstream.sh, written as a flame graph
# (bench/results/<target>-flame.svg) and the top frames as text (bench/results/<target>-perf.txt).
# The shipped release profile strips symbols, so this builds the same profile with symbols and
# frame pointers into target/profile (a separate, full build); PROFILE_HANDLER=path uses that
# binary instead.
# Usage: bench/profile.sh [negotiate|upstream] [SECONDS=10] [CONNECTIONS=64]
# Needs perf (Debian package linux-perf), wrk, and inferno (`cargo install inferno --root .tools`,
# done here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target=${1:-negotiate}
seconds=${2:-10}
connections=${3:-64}
case $target in
  negotiate | upstream) ;;
  *) echo "usage: bench/profile.sh [negotiate|upstream] [SECONDS] [CONNECTIONS]" >&2; exit 2 ;;
esac
results=bench/results
mkdir -p "$results"
[ -x .tools/bin/inferno-flamegraph ] || cargo install --locked inferno --root .tools >/dev/null
if [ -z "${PROFILE_HANDLER:-}" ]; then
  CARGO_PROFILE_RELEASE_STRIP=none RUSTFLAGS="-C force-frame-pointers=yes" \
    cargo build --release --target-dir target/profile -p meschain-functions --bin handler >/dev/null
fi
# bench_setup builds the release handler unless HANDLER names one: here it is the profiling build.
HANDLER=${PROFILE_HANDLER:-target/profile/release/handler} bench_setup
export MESCHAIN_DATA_DIR
MESCHAIN_DATA_DIR=$(mktemp -d)
if [ "$target" = negotiate ]; then
  export LOGIN_TOKEN
  LOGIN_TOKEN=$(python3 bench/handler_probe.py token "$AUTH_JWT_SECRET" "$AUTH_ISSUER" "$AUTH_AUDIENCE")
  script=bench/negotiate.lua path=api/negotiate
else
  export UPSTREAM_BODY_FILE
  UPSTREAM_BODY_FILE=$(mktemp)
  bench_upstream_envelope "$UPSTREAM_BODY_FILE"
  script=bench/upstream.lua path=connection-events
fi
bench_start_handler
echo "== $(date -u +%FT%TZ) $(uptime)"
wrk -t1 -c"$connections" -d"$((seconds + 2))s" -s "$script" "http://127.0.0.1:$port/$path" \
  > "$results/$target-perf-wrk.txt" &
wrk_pid=$!
sleep 1
perf record -F 999 -g -p "$handler_pid" -o "$results/$target.perf.data" -- sleep "$seconds" 2>/dev/null
# Only wrk: a bare `wait` would also wait for the handler, which runs until the script exits.
wait "$wrk_pid"
grep 'Requests/sec' "$results/$target-perf-wrk.txt"
perf script -i "$results/$target.perf.data" 2>/dev/null | .tools/bin/inferno-collapse-perf > "$results/$target.folded"
.tools/bin/inferno-flamegraph --title "$target, analytics on, $connections connections" \
  < "$results/$target.folded" > "$results/$target-flame.svg"
perf report -i "$results/$target.perf.data" --stdio --no-children --percent-limit 1 2>/dev/null \
  | grep -E '^ +[0-9]' > "$results/$target-perf.txt" || true
head -30 "$results/$target-perf.txt"
echo "flame graph: $results/$target-flame.svg"
