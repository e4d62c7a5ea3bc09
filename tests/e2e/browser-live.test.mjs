// The dashboard as `meschain dev` serves it (page, config.json, development sign-in on the host's
// own listener), in Chromium: recovery from a SignalR service restart, and the live figures and
// sync progress that admin-broadcast and marketplace-sync produce.

import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { startDev } from "./support/stack.mjs";
import { launch, open, signInAs, waitForConnection } from "./support/browser.mjs";

let stack;
let browser;

before(async () => {
  stack = await startDev();
  browser = await launch();
});


after(async () => {
  await browser?.close();
  await stack?.stop();
});

async function signIn(tab, user, role) {
  await signInAs(tab, user, role);
  await waitForConnection(tab.page, "connected");
}

/** Restarts the local SignalR service, down for `downMs` (resolves when it is back). */
const restartSignalR = async (downMs = 0) => {
  const res = await fetch(`${stack.base}/admin/signalr/restart?downMs=${downMs}`, { method: "POST", headers: { "x-meschain-control": "1" } });
  assert.equal(res.status, 204, await res.text());
};

test("meschain dev serves the page, its config and the development sign-in", async () => {
  const page = await fetch(`${stack.base}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /MesChain/);
  const config = await (await fetch(`${stack.base}/config.json`)).json();
  assert.deepEqual(config, { apiBase: "/api", devSignIn: "/dev/token" });
  const refused = await fetch(`${stack.base}/dev/token`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"user":""}' });
  assert.equal(refused.status, 400);
});

test("after the SignalR service restarts the page shows reconnecting, then connected with a fresh negotiate", async () => {
  const tab = await open(browser, stack.base, "restart");
  const { page } = tab;
  try {
    await signIn(tab, "alice", "admin");
    await page.locator("#admin-figures").waitFor({ state: "visible", timeout: 10_000 });
    const negotiations = [];
    page.on("request", (r) => {
      if (r.url().includes("/api/negotiate")) negotiations.push(r.headers().authorization ?? "");
    });
    const states = [];
    await page.exposeFunction("recordState", (s) => states.push(s));
    await page.evaluate(() => {
      new MutationObserver(() => window.recordState(document.getElementById("connection").dataset.state)).observe(
        document.getElementById("connection"),
        { attributes: true, attributeFilter: ["data-state"] },
      );
    });
    await tab.quiet(async () => {
      // Down for 3 s: the page's reconnect attempts fail meanwhile and it says so.
      const restarted = restartSignalR(3000);
      await waitForConnection(page, "reconnecting", 3_000);
      await page.locator("#banner", { hasText: "Connection lost" }).waitFor({ timeout: 3_000 });
      await tab.screenshot("reconnecting");
      await restarted;
      await waitForConnection(page, "connected", 30_000);
      assert.equal(await page.locator("#banner").isVisible(), false, "the banner goes with the outage");
    });
    assert.ok(states.includes("reconnecting"), `states: ${states}`);
    assert.equal(states.at(-1), "connected");
    assert.ok(negotiations.length >= 1 && negotiations.every((a) => a.startsWith("Bearer ")), `negotiations: ${negotiations.length}`);
    // The admins group was rejoined: the timer's broadcasts to it reach the page again (two new
    // snapshots, so at least one is not the one asked for on reconnect).
    const seen = () => page.evaluate(() => window.__meschain.model.snapshot?.generatedAt);
    const after = new Set([await seen()]);
    const deadline = Date.now() + 20_000;
    while (after.size < 3 && Date.now() < deadline) {
      after.add(await seen());
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(after.size >= 3, `snapshots after reconnect: ${[...after]}`);
    await page.fill("#alert-message", "after restart");
    await page.click("#alert-form button[type=submit]");
    await page.locator("#alerts .msg", { hasText: "after restart" }).waitFor({ timeout: 10_000 });
    await tab.screenshot("reconnected");
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

// ---- The store's snapshot and the sync engine. ----

test("the admin snapshot's figures are shown and keep updating", async () => {
  const tab = await open(browser, stack.base, "figures");
  const { page } = tab;
  try {
    await signIn(tab, "alice", "super_admin");
    await page.locator("#admin-figures").waitFor({ state: "visible", timeout: 10_000 });
    const snapshot = () => page.evaluate(() => window.__meschain.model.snapshot);
    const first = await snapshot();
    for (const field of ["uptimeSeconds", "connections", "marketplaces", "rates", "latency", "health", "business", "analytics"]) {
      assert.ok(first[field] !== undefined, `snapshot field ${field} missing: ${JSON.stringify(first)}`);
    }
    // Every figure is formatted, none is the "not reported" fallback.
    const cards = await page.locator("#admin-figures").textContent();
    assert.doesNotMatch(cards, /not reported/);
    assert.match(await page.locator("#f-rates").textContent(), /\/min/);
    assert.match(await page.locator("#f-latency").textContent(), /ms|—/);
    assert.equal(await page.locator("#f-health li").count(), 3);
    assert.match(await page.locator("#f-uptime").textContent(), /\d+ (s|min|h|d)/);
    // The figures move: a later broadcast replaces the snapshot, the charts get their points.
    await page.waitForFunction((g) => window.__meschain.model.snapshot.generatedAt !== g, first.generatedAt, { timeout: 15_000 });
    await page.locator("#charts-section").waitFor({ state: "visible", timeout: 15_000 });
    await page.locator("#chart-rates canvas").waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => window.__meschain.model.history.length >= 2, null, { timeout: 15_000 });
    await tab.screenshot("figures");
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

test("an admin starts a sandbox sync and its progress bar reaches 100 %", async () => {
  const tab = await open(browser, stack.base, "sync");
  const { page } = tab;
  try {
    await signIn(tab, "alice", "admin");
    const card = page.locator('#marketplaces [data-marketplace="trendyol"]');
    await card.waitFor();
    const seen = [];
    await page.exposeFunction("recordProgress", (v) => seen.push(v));
    await page.evaluate(() => {
      const root = document.getElementById("marketplaces");
      new MutationObserver(() => {
        const bar = root.querySelector('[data-marketplace="trendyol"] [role=progressbar]');
        if (bar) window.recordProgress(Number(bar.getAttribute("aria-valuenow")));
      }).observe(root, { subtree: true, childList: true, attributes: true });
    });
    await page.selectOption("#sync-marketplace", "trendyol");
    await page.selectOption("#sync-operation", "orders");
    await page.click("#sync-form button[type=submit]");
    await page.locator("#sync-result[data-kind=ok]").waitFor({ timeout: 10_000 });
    assert.match(await page.locator("#sync-result").textContent(), /Queued trendyol orders sync/);
    // A request the sync function refuses comes back as an alert: fail with its reason at once.
    const done = page.locator('#marketplaces [data-marketplace="trendyol"][data-status="completed"] [role=progressbar][aria-valuenow="100"]');
    const refused = page.locator("#alerts li", { hasText: "refused" });
    await Promise.race([done.waitFor({ timeout: 60_000 }), refused.waitFor({ timeout: 60_000 })]);
    if (await refused.count()) assert.fail(`the sync was refused: ${await refused.first().textContent()}`);
    await tab.screenshot("sync-completed");
    // Once the sync has started, the bar only moves forward.
    const started = seen.slice(seen.findIndex((v) => v > 0));
    assert.ok(started.length >= 1 && started.at(-1) === 100, `progress seen: ${seen}`);
    for (let i = 1; i < started.length; i++) assert.ok(started[i] >= started[i - 1], `progress went back: ${seen}`);
    await page.locator("#activity li", { hasText: "trendyol orders sync completed" }).waitFor({ timeout: 10_000 });
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});
