import test from "node:test";
import assert from "node:assert/strict";
import * as m from "../src/lib/model.js";

const snap = (at, extra = {}) => ({
  generatedAt: at,
  rates: {
    negotiate: { lastMinute: 10, lastHour: 100, errorsLastMinute: 1 },
    hubMethods: { lastMinute: 5, lastHour: 50, errorsLastMinute: 2 },
    syncs: { lastMinute: 1, lastHour: 3, errorsLastMinute: 0 },
  },
  latency: { negotiateP50Ms: 0.8, negotiateP95Ms: 2.5 },
  marketplaces: [{ marketplace: "trendyol", status: "idle", progress: null, lastSuccessAt: null, itemsPushedToday: 0, lastError: null }],
  ...extra,
});

test("history keeps one point per snapshot, in order, within the window", () => {
  const model = m.emptyModel();
  m.applySnapshot(model, snap("2026-01-01T12:00:00Z"));
  m.applySnapshot(model, snap("2026-01-01T12:00:00Z")); // the same tick twice (a requested snapshot)
  m.applySnapshot(model, snap("2026-01-01T12:00:05Z"));
  assert.equal(model.history.length, 2);
  assert.deepEqual(model.history[0], { t: Date.parse("2026-01-01T12:00:00Z") / 1000, negotiate: 10, hubMethods: 5, syncs: 1, errors: 3, p50: 0.8, p95: 2.5 });
  m.applySnapshot(model, snap("2026-01-01T12:20:00Z"));
  assert.equal(model.history.length, 1, "points older than the window are dropped");
});

test("a snapshot without rates or latency adds no chart point", () => {
  assert.equal(m.historyPoint({ generatedAt: "2026-01-01T12:00:00Z", connections: {} }), null);
  const p = m.historyPoint({ generatedAt: "2026-01-01T12:00:00Z", latency: { negotiateP50Ms: 1, negotiateP95Ms: null } });
  assert.equal(p.errors, null);
  assert.equal(p.p95, null);
});

test("live sync progress wins over an older snapshot and a finished sync stays at 100 %", () => {
  const model = m.emptyModel();
  m.applySnapshot(model, snap("2026-01-01T12:00:00Z"), 1000);
  const update = { syncId: "s1", marketplace: "trendyol", operation: "inventory", status: "running", processed: 500, total: 1000, progress: 50, failedItems: 0, startedAt: "2026-01-01T12:00:01Z", finishedAt: null, requestedBy: "alice" };
  m.applySyncUpdate(model, update, 2000);
  let v = m.marketplaceView("trendyol", model.marketplaces.trendyol);
  assert.equal(v.status, "running");
  assert.equal(v.progress, 50);
  assert.equal(v.processed, 500);
  // A snapshot built while the sync ran: the bar follows the store's progress, never back to idle.
  const running = snap("2026-01-01T12:00:05Z", { marketplaces: [{ marketplace: "trendyol", status: "running", progress: 60, lastSuccessAt: null, itemsPushedToday: 600, lastError: null }] });
  m.applySnapshot(model, running, 3000);
  v = m.marketplaceView("trendyol", model.marketplaces.trendyol);
  assert.equal(v.status, "running");
  assert.equal(v.progress, 60);
  m.applySyncUpdate(model, { ...update, status: "completed", processed: 1000, progress: 100, finishedAt: "2026-01-01T12:00:06Z" }, 4000);
  // A late "running" message of the same sync does not pull it back.
  m.applySyncUpdate(model, { ...update, status: "running", progress: 90 }, 4500);
  // The next snapshot says idle (the store's view after the sync): the card still shows the finished sync.
  const idle = snap("2026-01-01T12:00:10Z", { marketplaces: [{ marketplace: "trendyol", status: "idle", progress: null, lastSuccessAt: "2026-01-01T12:00:06Z", itemsPushedToday: 1000, lastError: null }] });
  m.applySnapshot(model, idle, 5000);
  v = m.marketplaceView("trendyol", model.marketplaces.trendyol);
  assert.equal(v.status, "completed");
  assert.equal(v.progress, 100);
  assert.equal(v.itemsPushedToday, 1000);
  assert.equal(v.lastSuccessAt, "2026-01-01T12:00:06Z");
});

test("a marketplace with nothing received is idle with no progress", () => {
  const v = m.marketplaceView("ozon", m.emptyModel().marketplaces.ozon);
  assert.deepEqual([v.status, v.progress, v.itemsPushedToday], ["idle", null, null]);
});

test("feeds are newest first and capped", () => {
  const feed = [];
  for (let i = 0; i < m.MAX_FEED + 5; i++) m.pushFeed(feed, i);
  assert.equal(feed.length, m.MAX_FEED);
  assert.equal(feed[0], m.MAX_FEED + 4);
});

test("metric figures are flattened with readable labels", () => {
  const figures = m.metricFigures({ metric: "business", generatedAt: "x", ordersToday: 3, nested: { revenueToday: 9.5 }, label: "skip" });
  assert.deepEqual(figures, [["orders today", 3, "ordersToday"], ["nested revenue today", 9.5, "revenueToday"]]);
  assert.equal(m.humanize("negotiateP95Ms"), "negotiate p95 ms");
});

test("a marketplace card shows a throttling wait until it is over", () => {
  const model = m.emptyModel();
  m.applySnapshot(model, { marketplaces: [{ marketplace: "ozon", status: "running", progress: 10 }] }, 1_000);
  const at = Date.parse("2026-12-05T10:00:00Z");
  m.applySyncUpdate(
    model,
    { syncId: "s", marketplace: "ozon", status: "running", processed: 10, total: 100, progress: 10, waiting: { seconds: 30, until: "2026-12-05T10:00:30Z", reason: "429" } },
    2_000,
  );
  const during = m.marketplaceView("ozon", model.marketplaces.ozon, at + 12_500);
  assert.deepEqual(during.waiting, { seconds: 18, reason: "429" });
  assert.equal(m.marketplaceView("ozon", model.marketplaces.ozon, at + 30_000).waiting, null, "over once its time has passed");
  m.applySyncUpdate(model, { syncId: "s", marketplace: "ozon", status: "running", processed: 20, total: 100, progress: 20 }, 3_000);
  assert.equal(m.marketplaceView("ozon", model.marketplaces.ozon, at + 12_500).waiting, null, "the next update clears it");
});
