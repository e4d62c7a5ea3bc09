// Headless Chromium for the dashboard tests: Debian's `chromium` driven by playwright-core (FLAGS
// below are the ones that work as root here). Every page records
// its console errors and uncaught exceptions, and screenshots go to tests/artifacts/browser/
// (gitignored), so a failed run leaves pictures of what the browser showed.

import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { root } from "./stack.mjs";

export const CHROMIUM = "/usr/bin/chromium";
export const artifacts = path.join(root, "tests", "artifacts", "browser");

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Chromium; fails (never skips) when it is missing: `scripts/test.sh` installs it. */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (scripts/test.sh does)`);
  }
  mkdirSync(artifacts, { recursive: true });
  // playwright gives each launch a fresh temporary --user-data-dir.
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
}

/**
 * Opens `url` in a fresh context (its own sessionStorage and cookies).
 * `errors` collects console errors and page exceptions; `quiet(fn)` runs `fn` with network
 * errors ignored, for a deliberate outage (Chromium logs every refused connection as an error).
 */
export async function open(browser, url, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  let outage = false;
  const networkNoise = /Failed to load resource|ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|net::ERR_/;
  const origin = new URL(url).origin;
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    // Pages of other origins (an identity provider's sign-in page) are not ours to judge.
    if (!page.url().startsWith(origin)) return;
    if (outage && networkNoise.test(msg.text())) return;
    errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
  let shots = 0;
  await page.goto(url);
  return {
    page,
    context,
    errors,
    async screenshot(label) {
      shots += 1;
      const file = path.join(artifacts, `${name}-${String(shots).padStart(2, "0")}-${label}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async quiet(fn) {
      outage = true;
      try {
        return await fn();
      } finally {
        outage = false;
      }
    },
    close: () => context.close(),
  };
}

/** The text of the connection indicator. */
export const connectionText = (page) => page.locator("#connection-text").textContent();

/** Waits until the connection indicator's state is `state`. */
export async function waitForConnection(page, state, timeout = 15_000) {
  await page.locator(`#connection[data-state="${state}"]`).waitFor({ timeout });
}

/** Signs in with the local stack's development "sign in as" form. */
export async function signInAs(tab, user, role) {
  const { page } = tab;
  await page.locator("#dev-sign-in").waitFor();
  await page.fill("#dev-user", user);
  await page.selectOption("#dev-role", role);
  await page.click("#dev-sign-in button[type=submit]");
}
