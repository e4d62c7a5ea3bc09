#!/usr/bin/env bash
# Store benchmark: events/s into each store through the recorder (as the handler writes them),
# and the time to read one dashboard snapshot with the events stored.
#   - embedded (SQLite in a fresh temporary folder): EVENTS events (default 1,000,000);
#   - Cosmos DB: @vercel/cosmosdb-server from npm on a free port (in memory, JavaScript: far
#     slower than the service, so fewer events: COSMOS_EVENTS, default 20,000).
# Usage: bench/store.sh [EVENTS=1000000] [COSMOS_EVENTS=20000]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
cosmos_events=${2:-20000}
cargo build --release -p meschain-store --example store_bench >/dev/null
bin=target/release/examples/store_bench
echo "load before: $(uptime)"

data=$(mktemp -d)
trap 'rm -rf "$data"; [ -n "${server_pid:-}" ] && pkill -P "$server_pid" 2>/dev/null; true' EXIT
echo "== embedded"
"$bin" embedded "$data" "$events"
echo "database file: $(du -h "$data/store.sqlite3" | cut -f1)"

echo "== cosmos (@vercel/cosmosdb-server)"
[ -d tests/node_modules/@vercel/cosmosdb-server ] || (cd tests && npm ci --no-audit --no-fund --loglevel=error)
# The server exits when its stdin closes: `sleep` holds the pipe open until this script ends.
exec 3< <(cd tests && sleep 86400 | exec node support/cosmosdb-server.mjs 0)
server_pid=$!
read -r ready port <&3
[ "$ready" = READY ] || { echo "Cosmos DB server did not start" >&2; exit 1; }
AZURE_COSMOS_EMULATOR_SERVER_CERT_VALIDATION_DISABLED=true AZURE_COSMOS_CONNECTION_POOL_IS_HTTP2_ALLOWED=false \
AZURE_COSMOS_PARTITION_TOPOLOGY_CACHE_MODE=lazy AZURE_COSMOS_BINARY_ENCODING_ENABLED=false \
  "$bin" cosmos "https://localhost:$port/" "$cosmos_events"
echo "load after: $(uptime)"
