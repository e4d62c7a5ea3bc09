// What the page shows, derived from what the server sent: pure functions over plain data, so
// the rules (which progress wins, what the charts keep) are unit-tested without a browser.

import { MARKETPLACES } from "./client.js";

/** How much chart history the page keeps. */
export const HISTORY_WINDOW_S = 15 * 60;
export const MAX_FEED = 50;

/** An empty model: six idle marketplaces, nothing received. */
export function emptyModel() {
  return {
    snapshot: null,
    snapshotReceivedAt: 0,
    marketplaces: Object.fromEntries(MARKETPLACES.map((m) => [m, { base: null, live: null }])),
    history: [],
    alerts: [],
    activity: [],
    metrics: {},
  };
}

/** Applies an `updateAdminDashboard` snapshot. */
export function applySnapshot(model, snapshot, receivedAt = Date.now()) {
  model.snapshot = snapshot;
  model.snapshotReceivedAt = receivedAt;
  for (const entry of snapshot.marketplaces ?? []) {
    const slot = (model.marketplaces[entry.marketplace] ??= { base: null, live: null });
    slot.base = { ...entry, receivedAt };
  }
  const point = historyPoint(snapshot);
  if (point) {
    const last = model.history.at(-1);
    if (!last || point.t > last.t) model.history.push(point);
    const from = point.t - HISTORY_WINDOW_S;
    while (model.history.length && model.history[0].t < from) model.history.shift();
  }
  return model;
}

/** One chart point from a snapshot (null when it carries neither rates nor latency). */
export function historyPoint(snapshot) {
  const t = Date.parse(snapshot.generatedAt ?? "") / 1000;
  if (!Number.isFinite(t) || (!snapshot.rates && !snapshot.latency)) return null;
  const r = snapshot.rates ?? {};
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const errors = ["negotiate", "hubMethods", "syncs"].reduce((sum, k) => sum + (num(r[k]?.errorsLastMinute) ?? 0), 0);
  return {
    t,
    negotiate: num(r.negotiate?.lastMinute),
    hubMethods: num(r.hubMethods?.lastMinute),
    syncs: num(r.syncs?.lastMinute),
    errors: snapshot.rates ? errors : null,
    p50: num(snapshot.latency?.negotiateP50Ms),
    p95: num(snapshot.latency?.negotiateP95Ms),
  };
}

/** Applies a `marketplaceSyncUpdate`. Updates of an older sync than the one shown are ignored. */
export function applySyncUpdate(model, update, receivedAt = Date.now()) {
  const slot = (model.marketplaces[update.marketplace] ??= { base: null, live: null });
  const live = slot.live;
  // Within one sync, progress only moves forward (messages are sent in order, but a snapshot
  // built a moment earlier must not pull the bar back).
  if (live && live.syncId === update.syncId && rank(update.status) < rank(live.status)) return model;
  slot.live = { ...update, receivedAt };
  return model;
}

const rank = (status) => ({ queued: 0, running: 1, completed: 2, failed: 2 })[status] ?? 0;

/**
 * What a marketplace card shows: the newer of the snapshot and the live sync progress, and a
 * finished sync stays visible (at 100 % or failed) until a newer sync starts.
 * @returns {{ marketplace: string, status: string, progress: number | null, detail: object }}
 */
export function marketplaceView(name, slot, now = Date.now()) {
  const base = slot?.base ?? null;
  const live = slot?.live ?? null;
  const fromBase = () => ({
    marketplace: name,
    status: base?.status ?? "idle",
    progress: typeof base?.progress === "number" ? clamp(base.progress) : null,
    operation: null,
    processed: null,
    total: null,
    failedItems: null,
  });
  const fromLive = () => ({
    marketplace: name,
    status: live.status,
    progress: clamp(live.progress ?? (live.total ? (100 * live.processed) / live.total : 0)),
    operation: live.operation,
    processed: live.processed,
    total: live.total,
    failedItems: live.failedItems,
  });
  let shown;
  if (!live) shown = fromBase();
  else if (!base || live.receivedAt >= base.receivedAt) shown = fromLive();
  else if (base.status === "running") shown = { ...fromLive(), status: "running", progress: base.progress ?? fromLive().progress };
  else if (live.status === "completed" || live.status === "failed") shown = fromLive();
  else shown = fromBase();
  return {
    ...shown,
    itemsPushedToday: base?.itemsPushedToday ?? null,
    lastSuccessAt: base?.lastSuccessAt ?? (live?.status === "completed" ? live.finishedAt : null),
    lastError: base?.lastError ?? null,
    // The marketplace throttled the running sync: shown until the wait is over.
    waiting: waitingNow(live, now),
  };
}

function waitingNow(live, now) {
  const w = live?.waiting;
  if (!w || live.status !== "running") return null;
  const until = Date.parse(w.until);
  if (!(until > now)) return null;
  return { seconds: Math.ceil((until - now) / 1000), reason: String(w.reason ?? "") };
}

const clamp = (p) => Math.max(0, Math.min(100, Number(p) || 0));

/** Adds to a newest-first feed, capped. */
export function pushFeed(feed, item) {
  feed.unshift(item);
  if (feed.length > MAX_FEED) feed.length = MAX_FEED;
  return feed;
}

/** Numeric figures of a `metricsUpdate`, flattened to labelled pairs for the dashboard-only view. */
export function metricFigures(update, prefix = "") {
  const out = [];
  if (!update || typeof update !== "object") return out;
  for (const [key, value] of Object.entries(update)) {
    if (key === "metric" || key === "generatedAt") continue;
    const label = prefix ? `${prefix} ${humanize(key)}` : humanize(key);
    if (typeof value === "number" && Number.isFinite(value)) out.push([label, value, key]);
    else if (value && typeof value === "object" && !Array.isArray(value)) out.push(...metricFigures(value, label));
  }
  return out;
}

/** "ordersToday" → "orders today"; "negotiateP95Ms" → "negotiate p95 ms". */
export function humanize(key) {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/_/g, " ")
    .toLowerCase();
}
