#!/usr/bin/env bash
# marketplace-sync end to end, release builds, loopback only: `meschain enqueue --items-url` →
# local queue → handler → fake Trendyol (rate limit lifted on both sides: Trendyol's documented
# 50 requests/10 s would cap any run at 5,000 items/s) → progress to the local SignalR service.
# Prints items/s (enqueue to "sync finished"), the handler's RSS before and peak during the run,
# and the progress messages the sync sent.
#   bash bench/sync.sh [ITEMS]        (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}

cargo build --release -q -p meschain -p meschain-functions -p meschain-fake-trendyol --bin meschain --bin handler --bin fake-trendyol
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/fake-trendyol --port 0 --rate-limit off >"$work/fake.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/fake.json" ] && break; sleep 0.05; done
base_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["baseUrl"])' "$work/fake.json")
items_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["itemsUrl"])' "$work/fake.json")

# An app root beside the repository's, with settings pointing at the fake.
mkdir -p "$work/app"
cp host.json "$work/app/"
for f in */function.json; do mkdir -p "$work/app/$(dirname "$f")"; cp "$f" "$work/app/$f"; done
python3 - "$work" "$base_url" <<'PY'
import json, sys
work, base = sys.argv[1], sys.argv[2]
s = json.load(open("local.settings.example.json"))
s["Values"].update({
    "MARKETPLACE_SANDBOX": "hepsiburada,n11,amazon,ebay,ozon",
    "TRENDYOL_BASE_URL": base, "TRENDYOL_SELLER_ID": "123456",
    "TRENDYOL_API_KEY": "fake-api-key", "TRENDYOL_API_SECRET": "fake-api-secret",
    "TRENDYOL_RATE_LIMIT": "100000/1", "MESCHAIN_DATA_DIR": f"{work}/store", "RUST_LOG": "info",
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
target/release/meschain enqueue --host-url "http://127.0.0.1:$port" --marketplace trendyol --operation inventory \
  --items-url "$items_url?total=$n" --sync-id "bench-$n-$$" --requested-by bench >/dev/null
for _ in $(seq 6000); do grep -q "sync finished" "$work/dev.log" && break; sleep 0.05; done
end=$(date +%s.%N)
line=$(grep "sync finished" "$work/dev.log" | tail -1)
peak=$(awk '/VmHWM/ {print $2}' "/proc/$handler/status")
stats=$(curl -s "$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(f"{p.scheme}://{p.netloc}")' "$base_url")/_fake/stats")

python3 - "$n" "$start" "$end" "$rss_before" "$peak" "$line" "$stats" <<'PY'
import json, re, sys
n, start, end, before, peak, line, stats = sys.argv[1:]
secs = float(end) - float(start)
progress = re.search(r"progress_messages=(\d+)", line)
processed = re.search(r"processed=(\d+)", line)
s = json.loads(stats)
print(f"items: {n}, processed: {processed.group(1) if processed else '?'}, pushed: {s['itemsPushed']} in {s['pushes']} requests (largest {s['largestBatch']}), repeats: {s['barcodesPushedMoreThanOnce']}")
print(f"time: {secs:.2f} s, throughput: {int(n) / secs:,.0f} items/s")
print(f"handler RSS: {int(before) / 1024:.1f} MiB before, {int(peak) / 1024:.1f} MiB peak, growth {(int(peak) - int(before)) / 1024:.1f} MiB")
print(f"progress messages sent: {progress.group(1) if progress else '?'}")
PY
echo "load: $(uptime)"
