#!/usr/bin/env bash
# Runs the system locally with the settings in local.settings.json (or, when absent, the
# example settings in local.settings.example.json).
#
# Today this starts the `handler` alone on http://127.0.0.1:7071, serving the forwarded HTTP
# functions at /api/... exactly as the Functions host would forward them. The full local stack
# (`meschain dev`: local SignalR service, Functions-style host, durable queue) replaces it when
# it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
settings=local.settings.json
[ -f "$settings" ] || settings=local.settings.example.json
cargo build --release -p meschain-functions --bin handler
eval "$(python3 - "$settings" <<'PY'
import json, shlex, sys
for k, v in json.load(open(sys.argv[1]))["Values"].items():
    print(f"export {k}={shlex.quote(v)}")
PY
)"
echo "settings: $settings; negotiate: http://127.0.0.1:7071/api/negotiate"
exec target/release/handler --port "${PORT:-7071}"
