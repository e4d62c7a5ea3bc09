// The dashboard page: reads config.json, signs the user in, opens the realtime connection and
// renders what arrives. Everything from the server is put in the page with textContent, never
// as HTML.

import { Auth, DEV_ROLES, parseConfig } from "./lib/auth.js";
import { Chart } from "./lib/charts.js";
import { HUBS, MARKETPLACES, MesChainClient } from "./lib/client.js";
import * as fmt from "./lib/format.js";
import { applySnapshot, applySyncUpdate, emptyModel, marketplaceView, metricFigures, pushFeed } from "./lib/model.js";

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Builds an element: h("li", { class: "x" }, "text", child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("data-")) el.setAttribute(k, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const STATE_TEXT = { connected: "connected", connecting: "connecting…", reconnecting: "reconnecting…", disconnected: "disconnected" };

class Page {
  constructor(auth, config) {
    this.auth = auth;
    this.config = config;
    this.client = null;
    this.session = null;
    this.model = emptyModel();
    this.charts = { rates: new Chart($("chart-rates"), "rates"), latency: new Chart($("chart-latency"), "latency") };
    this.renderQueued = false;
    // Relative times ("12 s ago") age even when nothing arrives.
    setInterval(() => this.session && this.render(), 1000);
  }

  async init() {
    this.wireSignIn();
    this.wireActions();
    try {
      await this.auth.completeRedirect();
    } catch (e) {
      this.banner("error", `Sign-in failed: ${e.message}`);
    }
    const session = await this.auth.session();
    if (session) await this.signedIn(session);
    else this.showSignedOut();
  }

  wireSignIn() {
    const roleSelect = /** @type {HTMLSelectElement} */ ($("dev-role"));
    for (const r of DEV_ROLES) roleSelect.append(h("option", { value: r }, r));
    roleSelect.value = "admin";
    $("sign-in-oidc").addEventListener("click", () =>
      this.auth.signInOidc().catch((e) => this.banner("error", `Sign-in failed: ${e.message}`)),
    );
    $("dev-sign-in").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("dev-error").textContent = "";
      try {
        const user = /** @type {HTMLInputElement} */ ($("dev-user")).value.trim();
        await this.signedIn(await this.auth.signInDev(user, roleSelect.value));
      } catch (e) {
        $("dev-error").textContent = e.message;
      }
    });
    $("sign-out").addEventListener("click", async () => {
      await this.client?.stop();
      await this.auth.signOut();
      this.session = null;
      this.showSignedOut();
    });
  }

  showSignedOut(reason) {
    this.client = null;
    this.setConnection("disconnected");
    $("dashboard").hidden = true;
    $("who").hidden = true;
    $("signed-out").hidden = false;
    $("sign-in-oidc").hidden = !this.auth.canUseOidc;
    $("dev-sign-in").hidden = !this.auth.canUseDev;
    $("no-sign-in").hidden = this.auth.canUseOidc || this.auth.canUseDev;
    if (reason) this.banner("error", reason);
    else this.banner(null);
  }

  async signedIn(session) {
    this.session = session;
    this.model = emptyModel();
    this.banner(null);
    $("signed-out").hidden = true;
    $("who").hidden = false;
    $("who-name").textContent = session.user;
    $("who-roles").textContent = session.roles.length ? session.roles.join(", ") : "no role";
    $("dashboard").hidden = false;
    $("charts-section").hidden = true;
    this.showView(null);
    const client = new MesChainClient({
      signalR: globalThis.signalR,
      getToken: () => this.auth.freshToken(),
      apiBase: this.config.apiBase,
    });
    this.client = client;
    client.onState((state, problem, attempt) => this.onConnection(client, state, problem, attempt));
    client.on("updateAdminDashboard", (s) => {
      applySnapshot(this.model, s);
      this.render();
    });
    client.on("marketplaceSyncUpdate", (u) => {
      applySyncUpdate(this.model, u);
      if (u.status === "completed" || u.status === "failed") {
        const failed = u.failedItems ? `, ${fmt.formatCount(u.failedItems)} failed` : "";
        this.activity(u.status === "failed" ? "failed" : "completed", `${u.marketplace} ${u.operation} sync ${u.status}: ${fmt.formatCount(u.processed)} of ${fmt.formatCount(u.total)} items${failed}`, u.finishedAt);
      } else if (u.status === "queued" || (u.status === "running" && u.processed === 0)) {
        this.activity("running", `${u.marketplace} ${u.operation} sync ${u.status}${u.requestedBy ? ` (by ${u.requestedBy})` : ""}`, u.startedAt);
      }
      this.render();
    });
    client.on("systemAlert", (a) => {
      // Alerts from admins carry `level`; alerts from functions (marketplace-sync) `severity` and a `title`.
      const level = a.level ?? a.severity ?? "info";
      const message = a.title && a.message ? `${a.title}: ${a.message}` : (a.message ?? a.title ?? "");
      pushFeed(this.model.alerts, { ...a, level, message, receivedAt: Date.now() });
      this.renderFeed("alerts", this.model.alerts, alertItem);
    });
    client.on("inventoryUpdate", (u) => this.activity("info", describe("Inventory", u), u.at));
    client.on("orderNotification", (o) => this.activity("info", describe("Order", o), o.at));
    client.on("metricsUpdate", (m) => {
      const key = typeof m?.metric === "string" ? m.metric : "metrics";
      this.model.metrics[key] = { ...m, receivedAt: Date.now() };
      this.render();
    });
    this.render();
    try {
      // An expired session is said at once, without a connection attempt bound to fail.
      await this.auth.freshToken();
    } catch (e) {
      this.onConnection(client, "disconnected", { kind: "unauthorized", message: e.message }, 0);
      return;
    }
    await client.start();
  }

  /**
   * Shows what the user's hub allows. The hub is the server's decision (negotiate picks it from
   * the verified roles); until it is known, nothing role-specific shows. Dashboard-only users
   * see neither the admin figures nor the actions: the server would refuse them anyway, and a
   * button that can only fail is noise.
   * @param {string | null} hub
   */
  showView(hub) {
    const admin = hub === HUBS.admin;
    const manager = hub === HUBS.marketplace;
    $("actions").hidden = !(admin || manager);
    $("alert-form").hidden = !admin;
    $("marketplaces-section").hidden = !(admin || manager);
    $("role-note").hidden = admin || hub === null;
    $("role-note").textContent = manager
      ? "Marketplace access: platform figures and alert broadcasts need an admin role."
      : "Dashboard access: platform figures and admin actions need an admin role.";
  }

  /** The operations the server says this user's hub can start (negotiate's answer), nothing else. */
  showSyncOperations(operations) {
    const select = $("sync-operation");
    if (select.dataset.offered === operations.join(",")) return;
    select.dataset.offered = operations.join(",");
    select.replaceChildren(...operations.map((o) => h("option", { value: o }, o)));
    $("sync-form").hidden = operations.length === 0;
    this.showSyncMode();
  }

  /** The "every product" choice applies to syncs read from the catalogue (stock, prices). */
  showSyncMode() {
    const op = /** @type {HTMLSelectElement} */ ($("sync-operation")).value;
    $("sync-full-label").hidden = !(op === "inventory" || op === "prices");
  }

  /** Why stock and price syncs are not offered, from negotiate's `catalog` (none when they are). */
  showCatalogNote(catalog) {
    const note = $("sync-catalog-note");
    const reason = catalog && !catalog.configured ? catalog.reason || "the store's catalogue is not configured" : null;
    note.hidden = !reason;
    note.textContent = reason ? `Stock and price syncs are unavailable: ${reason}` : "";
  }

  onConnection(client, state, problem, attempt) {
    if (client !== this.client) return;
    if (state === "connected") {
      this.showView(client.hub);
      this.showSyncOperations(client.syncOperations);
      this.showCatalogNote(client.syncSetup?.catalog);
      this.connectors = client.syncSetup?.connectors ?? {};
      // The cards (and their mode badges) exist from the moment the hub is known, not from the first message.
      this.render();
    }
    if (state === "connected" && performance.getEntriesByName("meschain:connected").length === 0) {
      performance.mark("meschain:connected");
    }
    this.setConnection(state, attempt);
    if (!problem) return this.banner(null);
    if (problem.kind === "unauthorized") {
      const expired = this.session && this.session.expiresAt <= Date.now() + 30_000;
      this.banner("error", expired ? "Your session has expired." : `Your sign-in was not accepted: ${problem.message}`, {
        label: "Sign in again",
        run: async () => {
          await this.auth.signOut();
          this.session = null;
          this.showSignedOut();
        },
      });
    } else if (problem.kind === "forbidden") {
      this.banner("error", `No permission: ${problem.message}`);
    } else if (state === "connected") {
      this.banner("warning", problem.message);
    } else {
      const wait = client.nextAttemptAt ? Math.max(0, Math.round((client.nextAttemptAt - Date.now()) / 1000)) : 0;
      const next = wait > 0 ? ` Next attempt in ${wait} s.` : " Reconnecting…";
      this.banner("warning", `Connection lost: ${problem.message.replace(/\.$/, "")}.${next}`);
    }
  }

  setConnection(state, attempt = 0) {
    $("connection").dataset.state = state;
    $("connection-text").textContent = state === "reconnecting" && attempt > 1 ? `reconnecting… (attempt ${attempt})` : STATE_TEXT[state];
  }

  /** @param {"error" | "warning" | null} kind */
  banner(kind, text, action) {
    const el = $("banner");
    el.replaceChildren();
    el.hidden = !kind;
    if (!kind) return;
    el.dataset.kind = kind;
    el.append(text);
    if (action) {
      const b = h("button", { type: "button" }, action.label);
      b.addEventListener("click", action.run);
      el.append(b);
    }
  }

  wireActions() {
    $("sync-operation").addEventListener("change", () => this.showSyncMode());
    const mSelect = $("sync-marketplace");
    for (const m of MARKETPLACES) mSelect.append(h("option", { value: m }, m));
    this.form("sync-form", "sync-result", async (data) => {
      const marketplace = String(data.get("marketplace"));
      const operation = String(data.get("operation"));
      const fromCatalog = operation === "inventory" || operation === "prices";
      const mode = fromCatalog ? (data.get("full") ? "full" : "changed") : null;
      const result =
        this.client.hub === HUBS.admin
          ? await this.client.invoke("HandleAdminCommand", "triggerSync", { marketplace, operation, ...(mode ? { mode } : {}) })
          : await this.client.invoke("TriggerSync", operation, marketplace, mode);
      return `Queued ${marketplace} ${operation}${mode ? ` (${mode === "full" ? "every product" : "changed products"})` : ""} sync${result?.requestId ? ` (${result.requestId})` : ""}`;
    });
    this.form("alert-form", "alert-result", async (data) => {
      await this.client.invoke("BroadcastSystemAlert", String(data.get("message")), String(data.get("level")));
      /** @type {HTMLInputElement} */ ($("alert-message")).value = "";
      return "Alert sent to every connected user";
    });
  }

  /** Submits a form through `action`, showing its outcome (the server's error words on failure). */
  form(formId, resultId, action) {
    const form = /** @type {HTMLFormElement} */ ($(formId));
    const result = $(resultId);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      result.dataset.kind = "";
      result.textContent = "…";
      try {
        result.textContent = await action(new FormData(form));
        result.dataset.kind = "ok";
      } catch (e) {
        result.textContent = e.message;
        result.dataset.kind = "error";
      } finally {
        button.disabled = false;
      }
    });
  }

  activity(status, text, at) {
    pushFeed(this.model.activity, { level: status, message: text, at: at ?? new Date().toISOString() });
    this.renderFeed("activity", this.model.activity, alertItem);
  }

  renderFeed(id, items, item) {
    $(id).replaceChildren(...items.map(item));
  }

  /** Renders at most once per frame however many messages arrive. */
  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderNow();
    });
  }

  renderNow() {
    const s = this.model.snapshot;
    const admin = this.client?.hub === HUBS.admin;
    const hasMetrics = Object.keys(this.model.metrics).length > 0;
    $("figures-waiting").hidden = Boolean(s || hasMetrics || (!admin && this.client?.hub === HUBS.marketplace));
    $("admin-figures").hidden = !(admin && s);
    if (admin && s) this.renderSnapshot(s);
    this.renderMetrics();
    if ((s || hasMetrics) && !this.firstFigure) {
      // Load → first live figure on screen, read by bench/dashboard.mjs.
      this.firstFigure = true;
      performance.mark("meschain:first-live-figure");
    }
    if (!$("marketplaces-section").hidden) this.renderMarketplaces();
  }

  renderSnapshot(s) {
    const c = s.connections;
    $("f-connections").textContent = c ? fmt.formatCount(c.total) : fmt.formatCount(s.liveConnections);
    $("f-users").textContent = c ? plural(c.users, "signed-in user") : "";
    const hubs = c?.hubs ?? s.hubs ?? [];
    $("f-hubs").replaceChildren(
      ...hubs.map((x) => h("tr", {}, h("td", {}, shortHub(x.hub)), h("td", {}, fmt.formatCount(x.connections)), h("td", {}, plural(x.users, "user")))),
    );
    const rates = s.rates;
    $("f-rates").replaceChildren(
      ...(rates
        ? [
            ["negotiate", rates.negotiate],
            ["hub methods", rates.hubMethods],
            ["syncs", rates.syncs],
          ].flatMap(([label, r]) => [
            h("dt", {}, label),
            h("dd", {}, fmt.formatPerMinute(r?.lastMinute), r?.errorsLastMinute ? h("span", { class: "err" }, `${fmt.formatCount(r.errorsLastMinute)} err`) : null),
          ])
        : [h("dt", {}, "not reported by this server")]),
    );
    if (rates) {
      $("f-rates").append(h("dt", {}, "negotiate, last hour"), h("dd", {}, fmt.formatCompact(rates.negotiate?.lastHour)));
    }
    const l = s.latency;
    $("f-latency").replaceChildren(
      ...(l ? [h("dt", {}, "p50"), h("dd", {}, fmt.formatMs(l.negotiateP50Ms)), h("dt", {}, "p95"), h("dd", {}, fmt.formatMs(l.negotiateP95Ms))] : [h("dt", {}, "not reported by this server")]),
    );
    const b = s.business;
    $("f-business").replaceChildren(
      ...(b
        ? [h("dt", {}, "orders"), h("dd", {}, fmt.formatCount(b.ordersToday)), h("dt", {}, "revenue"), h("dd", {}, fmt.formatMoney(b.revenueToday, b.currency))]
        : [h("dt", {}, "not reported by this server")]),
    );
    const health = s.health;
    $("f-health").replaceChildren(
      ...(health
        ? Object.entries(health).map(([name, x]) =>
            h("li", {}, h("span", {}, name), h("span", { class: "badge", "data-status": x?.status }, x?.status ?? "unknown"), h("span", { class: "detail" }, x?.detail ?? "")),
          )
        : [h("li", { class: "muted" }, "not reported by this server")]),
    );
    $("f-uptime").textContent = typeof s.uptimeSeconds === "number" ? fmt.formatDuration(s.uptimeSeconds) : "not reported";
    $("f-updated").textContent = `updated ${fmt.formatAgo(s.generatedAt)}`;
    const a = s.analytics;
    $("f-analytics").textContent = a ? `analytics: ${fmt.formatCount(a.pending)} pending, ${fmt.formatCount(a.dropped)} dropped` : "";
    const history = this.model.history;
    // Charts appear with the first rate or latency figures (a server that reports none has no charts).
    $("charts-section").hidden = history.length === 0;
    if (history.length) {
      this.charts.rates.update(history);
      this.charts.latency.update(history);
    }
  }

  renderMetrics() {
    const el = $("metrics-figures");
    const entries = Object.entries(this.model.metrics);
    el.hidden = entries.length === 0;
    el.replaceChildren(
      ...entries.map(([metric, m]) =>
        h(
          "article",
          { class: "card", "data-metric": metric },
          h("h3", {}, metric),
          h("dl", {}, ...metricFigures(m).flatMap(([label, value, key]) => [h("dt", {}, label), h("dd", {}, formatMetric(key, value, m))])),
          h("p", { class: "muted" }, `updated ${fmt.formatAgo(m.generatedAt ?? new Date(m.receivedAt).toISOString())}`),
        ),
      ),
    );
  }

  renderMarketplaces() {
    const cards = MARKETPLACES.map((name) => {
      const v = marketplaceView(name, this.model.marketplaces[name]);
      const mode = this.connectors?.[name] ?? null;
      const pct = v.progress ?? (v.status === "completed" ? 100 : 0);
      const counts = v.total ? `${fmt.formatCount(v.processed)} / ${fmt.formatCount(v.total)} items${v.failedItems ? `, ${fmt.formatCount(v.failedItems)} failed` : ""}` : null;
      return h(
        "article",
        { class: "card market", "data-marketplace": name, "data-status": v.status },
        h(
          "h3",
          {},
          h("span", {}, name),
          mode && h("span", { class: "mode", "data-mode": mode, title: MODE_TITLES[mode] ?? "" }, mode),
          h("span", { class: "badge", "data-status": v.status }, v.status),
        ),
        h(
          "div",
          { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(pct)), "aria-label": `${name} sync progress` },
          bar(pct),
        ),
        h("p", { class: "pct" }, v.progress === null && v.status === "idle" ? "no sync running" : `${v.operation ? `${v.operation} · ` : ""}${fmt.formatPercent(pct)}`),
        counts && h("p", {}, counts),
        h("p", {}, `last success ${fmt.formatAgo(v.lastSuccessAt)}`),
        v.itemsPushedToday !== null && h("p", {}, `${fmt.formatCount(v.itemsPushedToday)} items pushed today`),
        v.waiting && h("p", { class: "waiting" }, `throttled by ${name}: waiting ${plural(v.waiting.seconds, "second")}${v.waiting.reason ? ` (${v.waiting.reason})` : ""}`),
        v.lastError && h("p", { class: "lasterror" }, v.lastError),
      );
    });
    $("marketplaces").replaceChildren(...cards);
  }
}

const MODE_TITLES = {
  live: "Syncs go to the marketplace with its credentials",
  sandbox: "Syncs run on the local sandbox, not the marketplace",
  off: "No credentials and not in MARKETPLACE_SANDBOX: a sync would be refused",
};

const plural = (n, word) => `${fmt.formatCount(n)} ${word}${n === 1 ? "" : "s"}`;

function bar(pct) {
  const d = document.createElement("div");
  d.style.width = `${pct}%`;
  return d;
}

const shortHub = (hub) => String(hub).replace(/^MesChain|Hub$/g, "");

function formatMetric(key, value, m) {
  const k = key.toLowerCase();
  if (k.endsWith("ms")) return fmt.formatMs(value);
  if (k.endsWith("seconds")) return fmt.formatDuration(value);
  if (k.includes("revenue")) return fmt.formatMoney(value, m.currency ?? m.business?.currency);
  if (k.includes("progress") || k.includes("percent")) return fmt.formatPercent(value);
  return fmt.formatCount(value);
}

function describe(kind, payload) {
  const parts = [kind];
  for (const k of ["marketplace", "operation", "batch", "orderNumber", "orderId", "status", "items", "succeeded", "failed", "total", "totalPrice"]) {
    const v = payload?.[k];
    if (typeof v === "string" || typeof v === "number") parts.push(`${k} ${typeof v === "number" ? fmt.formatCount(v) : v}`);
    else if (Array.isArray(v)) parts.push(`${fmt.formatCount(v.length)} ${k}`);
  }
  return parts.join(" · ");
}

function alertItem(a) {
  return h(
    "li",
    { "data-level": a.level },
    h("time", { datetime: a.at }, fmt.formatClock(a.at ?? new Date(a.receivedAt).toISOString())),
    h("span", { class: "badge", "data-status": a.level }, a.level),
    h("span", { class: "msg" }, a.message),
    a.from ? h("span", { class: "from" }, a.from) : null,
  );
}

async function main() {
  let config;
  try {
    const res = await fetch("config.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`config.json: ${res.status}`);
    config = parseConfig(await res.json());
  } catch (e) {
    $("banner").hidden = false;
    $("banner").dataset.kind = "error";
    $("banner").textContent = `The dashboard is not configured: ${e.message}`;
    return;
  }
  if (!globalThis.signalR) {
    $("banner").hidden = false;
    $("banner").textContent = "The SignalR client did not load (assets/vendor/signalr.min.js).";
    return;
  }
  // The OpenID Connect library is loaded only where the config offers that sign-in.
  const oidc = config.oidc ? await import("oidc-client-ts") : {};
  const auth = new Auth(config, { UserManager: oidc.UserManager, WebStorageStateStore: oidc.WebStorageStateStore });
  const page = new Page(auth, config);
  globalThis.__meschain = page; // for the browser tests and for poking at it in devtools
  await page.init();
}

main();
