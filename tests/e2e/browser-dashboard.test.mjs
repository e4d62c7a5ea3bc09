// The dashboard in a real browser (Debian's Chromium through playwright-core) as `meschain dev`
// serves it (the page, its config.json and the development "sign in as" on the host's listener),
// against the real stack: local Functions host, the handler, the local SignalR service.

import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { connect, loginToken, startDev } from "./support/stack.mjs";
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

const text = (page, selector) => page.locator(selector).textContent();

test("an admin signs in, sees connected and live figures, broadcasts an alert and sees refusals", async () => {
  const tab = await open(browser, stack.base, "admin");
  const { page } = tab;
  try {
    assert.equal(await page.locator("#connection").getAttribute("data-state"), "disconnected");
    await tab.screenshot("signed-out");
    await signInAs(tab, "alice", "admin");
    await waitForConnection(page, "connected");
    assert.equal(await text(page, "#connection-text"), "connected");
    assert.equal(await text(page, "#who-name"), "alice");

    // The first figures come without waiting for a broadcast tick (requestDashboardUpdate).
    await page.locator("#admin-figures").waitFor({ state: "visible", timeout: 5_000 });
    // Presence reaches the shared store in the recorder's next batch (about a second), so this
    // page's own connection shows in the first snapshot or in a following tick.
    const shown = () => page.evaluate(() => Number(document.getElementById("f-connections").textContent.replace(/\D/g, "")));
    await page
      .waitForFunction(() => Number(document.getElementById("f-connections").textContent.replace(/\D/g, "")) >= 1, null, { timeout: 15_000 })
      .catch(() => {});
    const before = await shown();
    assert.ok(before >= 1, `connections shown: ${before}`);
    assert.equal(await page.locator("#actions").isVisible(), true);
    await tab.screenshot("connected");

    // Another client connects: the figure follows on the next snapshot.
    const other = await connect(stack, { user: "bob", roles: ["viewer"] });
    try {
      await page.waitForFunction(
        (n) => Number(document.getElementById("f-connections").textContent.replace(/\D/g, "")) === n,
        before + 1,
        { timeout: 15_000 },
      );
    } finally {
      await other.stop();
    }

    // An alert broadcast from the page reaches the page (and every other connection).
    const watcher = await connect(stack, { user: "carol", roles: ["viewer"], targets: ["systemAlert"] });
    try {
      await page.fill("#alert-message", "Trendyol maintenance at 22:00");
      await page.selectOption("#alert-level", "warning");
      await page.click("#alert-form button[type=submit]");
      await page.locator("#alerts li[data-level=warning] .msg", { hasText: "Trendyol maintenance at 22:00" }).waitFor({ timeout: 10_000 });
      await page.locator("#alert-result[data-kind=ok]").waitFor({ timeout: 10_000 });
      assert.equal(await text(page, "#alert-result"), "Alert sent to every connected user");
      const [alert] = await watcher.next("systemAlert", (a) => a.message === "Trendyol maintenance at 22:00");
      assert.equal(alert.from, "alice");
    } finally {
      await watcher.stop();
    }

    // A refusal shows the server's reason next to the action.
    await page.fill("#alert-message", "   ");
    await page.click("#alert-form button[type=submit]");
    await page.locator("#alert-result[data-kind=error]").waitFor({ timeout: 10_000 });
    assert.match(await text(page, "#alert-result"), /Alert message must have 1 to 2000 characters/);
    await tab.screenshot("alert");
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

test("a dashboard-only user sees no admin actions and no admin figures", async () => {
  const tab = await open(browser, stack.base, "viewer");
  const { page } = tab;
  try {
    await signInAs(tab, "victor", "viewer");
    await waitForConnection(page, "connected");
    await tab.screenshot("connected");
    assert.equal(await page.locator("#actions").isVisible(), false);
    assert.equal(await page.locator("#admin-figures").isVisible(), false);
    assert.equal(await page.locator("#charts-section").isVisible(), false);
    assert.equal(await page.locator("#alert-form").count(), 1, "the form exists in the page, hidden");
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

test("a marketplace manager sees the marketplaces and may start syncs, but not broadcast alerts", async () => {
  const tab = await open(browser, stack.base, "manager");
  const { page } = tab;
  try {
    await signInAs(tab, "mona", "marketplace_manager");
    await waitForConnection(page, "connected");
    assert.equal(await page.locator("#marketplaces-section").isVisible(), true);
    // Cards render on the next animation frame after the connection is up.
    await page.locator("#marketplaces .market").nth(5).waitFor();
    assert.equal(await page.locator("#marketplaces .market").count(), 6);
    assert.equal(await page.locator("#sync-form").isVisible(), true);
    assert.equal(await page.locator("#alert-form").isVisible(), false);
    assert.equal(await page.locator("#admin-figures").isVisible(), false);
    assert.match(await page.locator("#role-note").textContent(), /Marketplace access/);
    await tab.screenshot("connected");
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

test("an expired token asks to sign in again instead of retrying", async () => {
  const tab = await open(browser, stack.base, "expired");
  const { page } = tab;
  try {
    await page.locator("#dev-sign-in").waitFor();
    // A token that expires within the renewal margin, as a tab left open overnight would hold.
    const stale = loginToken("alice", ["admin"]).split(".");
    const claims = JSON.parse(Buffer.from(stale[1], "base64url"));
    claims.exp = Math.floor(Date.now() / 1000) + 5;
    const token = `${stale[0]}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${stale[2]}`;
    await page.evaluate((t) => sessionStorage.setItem("meschain.devSession", t), token);
    await page.reload();
    await page.locator("#banner", { hasText: "Your session has expired." }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#connection").getAttribute("data-state"), "disconnected");
    await tab.screenshot("expired");
    await page.click("#banner button");
    await page.locator("#dev-sign-in").waitFor({ state: "visible" });
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});
