#!/usr/bin/env bash
# Cold-start cost of Key Vault references: RUNS fresh processes (default 20) each resolve five
# settings from the local fake vault with the managed-identity credential (App Service's identity
# endpoint, served by the fake), over TLS with the challenge flow, as the handler does at start.
# Prints p50 / max of the in-process resolve time and of exec-to-exit; then the release handler's
# exec -> first answered GET / (what the Functions host waits for) with those five settings as
# references, against the same settings as literals.
# Usage: bench/secrets.sh [RUNS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build --release -q -p meschain-fake-keyvault --bin fake-keyvault
cargo build --release -q -p meschain-secrets --example cold_start
work=$(mktemp -d)
coproc FAKE { exec target/release/fake-keyvault --ca-file "$work/ca.pem" \
  --secret signalr=Endpoint=http://localhost --secret signalr-secondary=x --secret jwt=0123456789abcdef0123456789abcdef \
  --secret cosmos-key=y --secret trendyol-api-secret=z; }
trap 'kill $FAKE_PID 2>/dev/null || true; rm -rf "$work"' EXIT
read -r ready <&"${FAKE[0]}"
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$ready" "$1"; }
export IDENTITY_ENDPOINT IDENTITY_HEADER SECRETS_VAULT_ADDRESS SECRETS_VAULT_CA_FILE
IDENTITY_ENDPOINT=$(field identityEndpoint)
IDENTITY_HEADER=$(field identityHeader)
SECRETS_VAULT_ADDRESS=$(field address)
SECRETS_VAULT_CA_FILE=$(field caFile)
ref() { echo "@Microsoft.KeyVault(VaultName=myvault;SecretName=$1)"; }
python3 - "$runs" \
  "AzureSignalRConnectionString=$(ref signalr)" "AzureSignalRSecondaryConnectionString=$(ref signalr-secondary)" \
  "AUTH_JWT_SECRET=$(ref jwt)" "COSMOS_KEY=$(ref cosmos-key)" "TRENDYOL_API_SECRET=$(ref trendyol-api-secret)" <<'PY'
import json, statistics, subprocess, sys, time
runs, settings = int(sys.argv[1]), sys.argv[2:]
inner, outer = [], []
for _ in range(runs):
    t = time.perf_counter()
    out = subprocess.run(["target/release/examples/cold_start", *settings], check=True, capture_output=True, text=True)
    outer.append((time.perf_counter() - t) * 1000)
    result = json.loads(out.stdout)
    assert result["secrets"] == 5, result
    inner.append(result["ms"])
print(f"resolve 5 secrets (in process): p50 {statistics.median(inner):.1f} ms, max {max(inner):.1f} ms ({runs} runs)")
print(f"exec to exit:                   p50 {statistics.median(outer):.1f} ms, max {max(outer):.1f} ms")
PY

cargo build --release -q -p meschain-functions --bin handler
eval "$(python3 - <<'PY'
import json, shlex
for k, v in json.load(open("local.settings.example.json"))["Values"].items():
    # Host-only settings such as AzureWebJobs.<function>.Disabled are not shell names; the handler does not read them.
    if k.isidentifier():
        print(f"export {k}={shlex.quote(v)}")
PY
)"
echo "== handler exec -> first answered GET / with literal settings"
python3 bench/handler_probe.py startup target/release/handler "$runs"
# The fake holds the same values the literals have; five settings become references.
for pair in "signalr=$AzureSignalRConnectionString" "signalr-secondary=$AzureSignalRConnectionString" \
            "jwt=$AUTH_JWT_SECRET" "servicebus=$ServiceBusConnection" "audience=$AUTH_AUDIENCE"; do
  curl -fsS -X PUT -H 'content-type: application/json' "$(field control)/secrets/${pair%%=*}" \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"value": sys.argv[1]}))' "${pair#*=}")" >/dev/null
done
export AzureSignalRConnectionString AzureSignalRSecondaryConnectionString AUTH_JWT_SECRET ServiceBusConnection AUTH_AUDIENCE
AzureSignalRConnectionString=$(ref signalr)
AzureSignalRSecondaryConnectionString=$(ref signalr-secondary)
AUTH_JWT_SECRET=$(ref jwt)
ServiceBusConnection=$(ref servicebus)
AUTH_AUDIENCE=$(ref audience)
echo "== handler exec -> first answered GET / with 5 settings as Key Vault references"
python3 bench/handler_probe.py startup target/release/handler "$runs"
echo "load: $(uptime)"
