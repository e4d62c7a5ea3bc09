#!/usr/bin/env bash
# Keeps the SignalR upstream's function key in Key Vault: the key `connection-events` (authLevel function)
# accepts, which the SignalR upstream URL reads from the vault as a Key Vault reference (re-read about every
# 30 minutes). No key value is printed, logged or passed on a command line.
#
#   bash scripts/upstream-key.sh ensure RESOURCE_GROUP APP VAULT [SECRET]   # first deploy; later a no-op
#   bash scripts/upstream-key.sh rotate RESOURCE_GROUP APP VAULT [SECRET]   # new key in the vault, old one kept
#   bash scripts/upstream-key.sh retire RESOURCE_GROUP APP VAULT [SECRET]   # after 30+ min: drop the old key
#
# Two key names alternate (signalr-upstream-a / -b) so a rotation never breaks the upstream: the old key keeps
# working until SignalR has read the new one. Needs the Azure CLI signed in, with rights to the app's keys and
# Key Vault Secrets Officer on the vault. Run it after the first publish (the host creates the key store).
set -euo pipefail

usage() { echo "usage: $0 ensure|rotate|retire RESOURCE_GROUP APP VAULT [SECRET]" >&2; exit 2; }
[ $# -ge 4 ] || usage
action=$1 rg=$2 app=$3 vault=$4 secret=${5:-signalr-upstream-key}
fn=connection-events
names=(signalr-upstream-a signalr-upstream-b)

umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

function_keys() { az functionapp function keys list -g "$rg" -n "$app" --function-name "$fn" -o json >"$tmp/keys.json"; }
vault_value() { az keyvault secret show --vault-name "$vault" --name "$secret" --query value -o tsv 2>/dev/null >"$tmp/current" || : >"$tmp/current"; }

# The key name whose value is the one in the vault, or nothing.
current_name() {
  python3 - "$tmp/keys.json" "$tmp/current" "${names[@]}" <<'PY'
import json, sys
keys = json.load(open(sys.argv[1]))
current = open(sys.argv[2]).read().strip()
for name in sys.argv[3:]:
    if current and keys.get(name) == current:
        print(name)
PY
}

# Creates (or replaces) key $1 with a value Functions generates, and stores that value in the vault.
issue_key() {
  az functionapp function keys set -g "$rg" -n "$app" --function-name "$fn" --key-name "$1" --query value -o tsv >"$tmp/new"
  printf '%s' "$(cat "$tmp/new")" >"$tmp/value"
  [ -s "$tmp/value" ] || { echo "upstream-key: Functions returned no key for $1" >&2; exit 1; }
  az keyvault secret set --vault-name "$vault" --name "$secret" --file "$tmp/value" --encoding utf-8 \
    --content-type "text/plain; azure-functions-function-key" --query id -o tsv >/dev/null
  echo "upstream-key: $fn key '$1' is now the one in $vault/$secret"
}

function_keys
vault_value
current=$(current_name)
case "$action" in
  ensure)
    if [ -n "$current" ]; then
      echo "upstream-key: $vault/$secret matches $fn key '$current': nothing to do"
    else
      issue_key "${names[0]}"
    fi ;;
  rotate)
    next=${names[0]}
    [ "$current" = "${names[0]}" ] && next=${names[1]}
    issue_key "$next"
    echo "upstream-key: SignalR reads the new key within about 30 minutes; then run: $0 retire $rg $app $vault $secret" ;;
  retire)
    [ -n "$current" ] || { echo "upstream-key: the vault's key matches no $fn key; run ensure first" >&2; exit 1; }
    for name in "${names[@]}"; do
      if [ "$name" != "$current" ] && python3 -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1])) else 1)' "$tmp/keys.json" "$name"; then
        az functionapp function keys delete -g "$rg" -n "$app" --function-name "$fn" --key-name "$name" -o none
        echo "upstream-key: retired $fn key '$name'"
      fi
    done ;;
  *) usage ;;
esac
