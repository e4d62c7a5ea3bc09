#!/usr/bin/env bash
# marketplace-sync to Amazon end to end, release builds, loopback only: `meschain enqueue --items-url` →
# local queue → handler → the live Amazon connector → fake SP-API (`fake-amazon`, with Amazon's documented
# per-operation token buckets ON: the bench shows they are held, `throttled: 0`) → progress to the local
# SignalR service. The items come from fake-trendyol's generated `/items` source (no memory per item).
# Prints items/s (enqueue to "sync finished"), feeds, the handler's RSS before and peak during the run.
#   bash bench/sync-amazon.sh [ITEMS] [MESSAGES_PER_FEED]      (defaults 100000 and 10000)
# With 10,000 messages per feed a 100,000-item sync is 10 feeds: inside createFeed's burst of 15 and
# getFeedDocument's burst of 10. Past the bursts Amazon allows one feed every 2 minutes, so larger syncs are
# bounded by that documented rate, not by this code.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
per_feed=${2:-10000}

cargo build --release -q -p meschain -p meschain-functions -p meschain-fake-trendyol -p meschain-fake-amazon \
  --bin meschain --bin handler --bin fake-trendyol --bin fake-amazon
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/fake-trendyol --port 0 --rate-limit off >"$work/items.json" &
pids+=($!)
target/release/fake-amazon --port 0 >"$work/fake.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/fake.json" ] && [ -s "$work/items.json" ] && break; sleep 0.05; done
items_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["itemsUrl"])' "$work/items.json")
base_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["baseUrl"])' "$work/fake.json")
token_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokenUrl"])' "$work/fake.json")

mkdir -p "$work/app"
cp host.json "$work/app/"
for f in */function.json; do mkdir -p "$work/app/$(dirname "$f")"; cp "$f" "$work/app/$f"; done
python3 - "$work" "$base_url" "$token_url" "$per_feed" <<'PY'
import json, sys
work, base, token, per_feed = sys.argv[1:]
s = json.load(open("local.settings.example.json"))
s["Values"].update({
    "MARKETPLACE_SANDBOX": "hepsiburada,n11,ebay,ozon",
    "AMAZON_BASE_URL": base, "AMAZON_TOKEN_URL": token,
    "AMAZON_CLIENT_ID": "amzn1.application-oa2-client.fake", "AMAZON_CLIENT_SECRET": "fake-client-secret",
    "AMAZON_REFRESH_TOKEN": "Atzr|fake-refresh-token", "AMAZON_SELLER_ID": "A2FAKESELLER",
    "AMAZON_MARKETPLACE_ID": "A33AVAJ2PDY3EV", "AMAZON_FEED_MESSAGES": per_feed,
    "MESCHAIN_DATA_DIR": f"{work}/store", "RUST_LOG": "info",
})
json.dump(s, open(f"{work}/app/local.settings.json", "w"))
PY

target/release/meschain dev --app-root "$work/app" --port 0 --data-dir "$work/data" --handler target/release/handler >"$work/dev.log" 2>&1 &
dev=$!
pids+=($dev)
for _ in $(seq 200); do grep -q "Ready in" "$work/dev.log" && break; sleep 0.05; done
port=$(grep -oP 'Ready in \d+ ms \(listening on 127\.0\.0\.1:\K\d+' "$work/dev.log")
handler=$(pgrep -P "$dev" -f handler | head -1)
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$handler/status")

start=$(date +%s.%N)
target/release/meschain enqueue --host-url "http://127.0.0.1:$port" --marketplace amazon --operation inventory \
  --items-url "$items_url?total=$n" --sync-id "bench-amazon-$n-$$" --requested-by bench >/dev/null
for _ in $(seq 12000); do grep -q "sync finished" "$work/dev.log" && break; sleep 0.05; done
end=$(date +%s.%N)
line=$(grep "sync finished" "$work/dev.log" | tail -1)
peak=$(awk '/VmHWM/ {print $2}' "/proc/$handler/status")
stats=$(curl -s "$base_url/_fake/stats")

python3 - "$n" "$start" "$end" "$rss_before" "$peak" "$line" "$stats" <<'PY'
import json, re, sys
n, start, end, before, peak, line, stats = sys.argv[1:]
secs = float(end) - float(start)
processed = re.search(r"processed=(\d+)", line)
s = json.loads(stats)
print(f"items: {n}, processed: {processed.group(1) if processed else '?'}, applied: {s['messagesApplied']} in {s['feeds']} feeds (largest {s['largestFeed']}), repeats: {s['skusAppliedMoreThanOnce']}, throttled: {s['throttled']}, tokens: {s['tokensIssued']}")
print(f"time: {secs:.2f} s, throughput: {int(n) / secs:,.0f} items/s")
print(f"handler RSS: {int(before) / 1024:.1f} MiB before, {int(peak) / 1024:.1f} MiB peak, growth {(int(peak) - int(before)) / 1024:.1f} MiB")
PY
echo "load: $(uptime)"
