import test from "node:test";
import assert from "node:assert/strict";
import * as f from "../src/lib/format.js";

test("counts and compact counts", () => {
  assert.equal(f.formatCount(1234567, "en-US"), "1,234,567");
  assert.equal(f.formatCount(null), "—");
  assert.equal(f.formatCompact(9999, "en-US"), "9,999");
  assert.equal(f.formatCompact(15_300_000, "en-US"), "15.3M");
  assert.equal(f.formatPerMinute(1234, "en-US"), "1,234/min");
  assert.equal(f.formatPerMinute(Number.NaN), "—");
});

test("milliseconds pick a readable unit", () => {
  assert.equal(f.formatMs(0.871, "en-US"), "0.87 ms");
  assert.equal(f.formatMs(12.4, "en-US"), "12 ms");
  assert.equal(f.formatMs(1250, "en-US"), "1.25 s");
  assert.equal(f.formatMs(undefined), "—");
});

test("durations show two units at most and drop zero tails", () => {
  assert.equal(f.formatDuration(0), "0 s");
  assert.equal(f.formatDuration(42.9), "42 s");
  assert.equal(f.formatDuration(300), "5 min");
  assert.equal(f.formatDuration(303), "5 min 3 s");
  assert.equal(f.formatDuration(3 * 3600 + 12 * 60 + 9), "3 h 12 min");
  assert.equal(f.formatDuration(2 * 86400 + 4 * 3600 + 59), "2 d 4 h");
  assert.equal(f.formatDuration(86400 + 30), "1 d");
  assert.equal(f.formatDuration(-1), "—");
});

test("money uses its currency, unknown codes still show the amount", () => {
  assert.equal(f.formatMoney(1234.5, "USD", "en-US"), "$1,234.50");
  assert.match(f.formatMoney(10, "TRY", "en-US"), /TRY|₺/);
  assert.equal(f.formatMoney(10, "NOT-A-CODE", "en-US"), "10 NOT-A-CODE");
  assert.equal(f.formatMoney(null, "USD"), "—");
  // Exact decimal strings, as the server sends money.
  assert.equal(f.formatMoney("1234.50", "USD", "en-US"), "$1,234.50");
  assert.equal(f.formatMoney("0.30", "USD", "en-US"), "$0.30");
  assert.equal(f.formatMoney("1e5", "USD", "en-US"), "—");
  assert.equal(f.formatMoney("", "USD", "en-US"), "—");
});

test("relative and clock times", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(f.formatAgo(null, now), "never");
  assert.equal(f.formatAgo("2026-01-01T11:59:58Z", now), "just now");
  assert.equal(f.formatAgo("2026-01-01T11:59:30Z", now), "30 s ago");
  assert.equal(f.formatAgo("2026-01-01T11:45:00Z", now), "15 min ago");
  assert.equal(f.formatAgo("2026-01-01T09:00:00Z", now), "3 h ago");
  assert.equal(f.formatAgo("2025-12-29T12:00:00Z", now), "3 d ago");
  assert.equal(f.formatAgo("garbage", now), "—");
  assert.equal(f.formatClock("2026-01-01T14:03:07Z", "en-GB", "UTC"), "14:03:07");
  assert.equal(f.formatPercent(42.4, "en-US"), "42 %");
});
