#!/usr/bin/env bash
# marketplace-sync end to end against the Ozon or eBay fake, loopback only: `meschain enqueue --items-url` →
# local queue → handler → live connector → fake-ozon / fake-ebay (answering at once, every product known) →
# progress to the local SignalR service. The marketplaces' documented limits stay on, on both sides: where
# one binds (Ozon's 80 stocks calls a minute), the figure shows it held.
# Prints items/s (enqueue to "sync finished"), the handler's RSS before and peak, and the fake's counters.
#   bash bench/sync-ozon-ebay.sh MARKETPLACE [ITEMS] [KIND]
#     MARKETPLACE: ozon | ebay;  ITEMS: default 100000;  KIND: inventory (stock and prices, default) | prices
#   BENCH_PROFILE=debug uses debug builds (for a quick look; figures are from release builds).
set -euo pipefail
cd "$(dirname "$0")/.."
mp=${1:?usage: bench/sync-ozon-ebay.sh ozon|ebay [ITEMS] [inventory|prices]}
n=${2:-100000}
kind=${3:-inventory}
profile=${BENCH_PROFILE:-release}
case "$mp" in ozon | ebay) ;; *) echo "marketplace must be ozon or ebay" >&2; exit 2 ;; esac
case "$kind" in inventory | prices) ;; *) echo "kind must be inventory or prices" >&2; exit 2 ;; esac

flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag -q -p meschain -p meschain-functions -p "meschain-fake-$mp" --bin meschain --bin handler --bin "fake-$mp"
bin=target/$profile
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin/fake-$mp" --port 0 --know-every-product >"$work/fake.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/fake.json" ] && break; sleep 0.05; done

mkdir -p "$work/app"
cp host.json "$work/app/"
for f in */function.json; do mkdir -p "$work/app/$(dirname "$f")"; cp "$f" "$work/app/$f"; done
python3 - "$work" "$mp" <<'PY'
import json, sys
work, mp = sys.argv[1], sys.argv[2]
fake = json.load(open(f"{work}/fake.json"))
s = json.load(open("local.settings.example.json"))
s["Values"].update({"MARKETPLACE_SANDBOX": "trendyol,hepsiburada,n11,amazon", "MESCHAIN_DATA_DIR": f"{work}/store", "RUST_LOG": "info"})
if mp == "ozon":
    s["Values"].update({"OZON_BASE_URL": fake["baseUrl"], "OZON_CLIENT_ID": fake["clientId"],
                        "OZON_API_KEY": "fake-ozon-api-key", "OZON_WAREHOUSE_ID": fake["warehouseId"]})
else:
    s["Values"].update({"EBAY_BASE_URL": fake["baseUrl"], "EBAY_CLIENT_ID": fake["clientId"],
                        "EBAY_CLIENT_SECRET": "PRD-fake-client-secret", "EBAY_REFRESH_TOKEN": "v^1.1#i^1#fake-refresh-token"})
s["Values"] = {k: v for k, v in s["Values"].items() if not (k.startswith("OZON_") or k.startswith("EBAY_")) or k.startswith(mp.upper())}
json.dump(s, open(f"{work}/app/local.settings.json", "w"))
PY
items_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["itemsUrl"])' "$work/fake.json")
origin=$(python3 -c 'import json,sys,urllib.parse as u; p=u.urlparse(json.load(open(sys.argv[1]))["baseUrl"]); print(f"{p.scheme}://{p.netloc}")' "$work/fake.json")

"$bin/meschain" dev --app-root "$work/app" --port 0 --data-dir "$work/data" --handler "$bin/handler" >"$work/dev.log" 2>&1 &
dev=$!
pids+=($dev)
for _ in $(seq 400); do grep -q "Ready in" "$work/dev.log" && break; sleep 0.05; done
port=$(grep -oP 'Ready in \d+ ms \(listening on 127\.0\.0\.1:\K\d+' "$work/dev.log")
handler=$(pgrep -P "$dev" -f handler | head -1)
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$handler/status")

operation=$([ "$kind" = prices ] && echo prices || echo inventory)
start=$(date +%s.%N)
"$bin/meschain" enqueue --host-url "http://127.0.0.1:$port" --marketplace "$mp" --operation "$operation" \
  --items-url "$items_url?total=$n&kind=$kind" --sync-id "bench-$mp-$n-$$" --requested-by bench >/dev/null
for _ in $(seq 72000); do grep -q "sync finished" "$work/dev.log" && break; sleep 0.05; done
end=$(date +%s.%N)
line=$(grep "sync finished" "$work/dev.log" | tail -1)
peak=$(awk '/VmHWM/ {print $2}' "/proc/$handler/status")
stats=$(curl -s "$origin/_fake/stats")

python3 - "$mp" "$kind" "$n" "$start" "$end" "$rss_before" "$peak" "$line" "$stats" <<'PY'
import json, re, sys
mp, kind, n, start, end, before, peak, line, stats = sys.argv[1:]
secs = float(end) - float(start)
processed = re.search(r"processed=(\d+)", line)
failed = re.search(r"failed_items=(\d+)", line)
print(f"{mp} {kind}: items {n}, processed {processed.group(1) if processed else '?'}, failed {failed.group(1) if failed else '?'}")
print(f"time: {secs:.2f} s, throughput: {int(n) / secs:,.0f} items/s")
print(f"handler RSS: {int(before) / 1024:.1f} MiB before, {int(peak) / 1024:.1f} MiB peak, growth {(int(peak) - int(before)) / 1024:.1f} MiB")
print("fake:", json.dumps(json.loads(stats)))
PY
echo "load: $(uptime)"
