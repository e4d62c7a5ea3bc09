// Dashboard figures in Debian's Chromium against the local stack (loopback), the page served by
// `meschain dev` itself:
//   1. page weight: every byte the page loads from a cold cache, by kind, raw and gzip;
//   2. load → first live figure: navigation start to the admin snapshot rendered
//      (performance mark "meschain:first-live-figure"), and to "connected", RUNS times, each in a
//      fresh browser context (no cache) with an admin already signed in (token in sessionStorage).
// Usage: node bench/dashboard.mjs [runs=10]   (bench/dashboard.sh builds everything first)

import { gzipSync } from "node:zlib";
import { loadavg } from "node:os";
import { loginToken, startDev } from "../tests/e2e/support/stack.mjs";
import { launch } from "../tests/e2e/support/browser.mjs";

const RUNS = Number(process.argv[2] ?? 10);
const stack = await startDev();
const web = { base: stack.base };
const browser = await launch();

try {
  // 1. Page weight.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    const loaded = [];
    page.on("response", async (r) => {
      if (!r.url().startsWith(web.base) || r.url().includes("/api/")) return;
      try {
        const body = await r.body();
        loaded.push({ path: new URL(r.url()).pathname, bytes: body.length, gzip: gzipSync(body).length });
      } catch {
        // redirects have no body
      }
    });
    await page.addInitScript((t) => sessionStorage.setItem("meschain.devSession", t), loginToken("bench", ["admin"]));
    await page.goto(web.base);
    await page.waitForFunction(() => performance.getEntriesByName("meschain:first-live-figure").length > 0);
    await context.close();
    const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
    const scripts = loaded.filter((x) => x.path.endsWith(".js"));
    const own = scripts.filter((x) => !x.path.includes("signalr"));
    const sum = (list, k) => list.reduce((a, x) => a + x[k], 0);
    console.log("page weight (cold load, uncompressed / gzip):");
    for (const x of loaded.sort((a, b) => b.bytes - a.bytes)) console.log(`  ${x.path.padEnd(28)} ${kb(x.bytes).padStart(9)} ${kb(x.gzip).padStart(9)}`);
    console.log(`  total                        ${kb(sum(loaded, "bytes")).padStart(9)} ${kb(sum(loaded, "gzip")).padStart(9)}`);
    console.log(`  script excluding SignalR     ${kb(sum(own, "bytes")).padStart(9)} ${kb(sum(own, "gzip")).padStart(9)}   (budget 200 KB)`);
  }

  // 2. Load → connected → first live figure.
  const first = [];
  const connected = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.addInitScript((t) => sessionStorage.setItem("meschain.devSession", t), loginToken(`bench${i}`, ["admin"]));
    await page.goto(web.base);
    await page.waitForFunction(() => performance.getEntriesByName("meschain:first-live-figure").length > 0, null, { timeout: 10_000 });
    const [c, f] = await page.evaluate(() => ["meschain:connected", "meschain:first-live-figure"].map((n) => performance.getEntriesByName(n)[0].startTime));
    connected.push(c);
    first.push(f);
    await context.close();
  }
  const pct = (list, p) => [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor((p / 100) * list.length))];
  const ms = (n) => `${n.toFixed(0)} ms`;
  console.log(`load → connected:          p50 ${ms(pct(connected, 50))}, max ${ms(Math.max(...connected))} (${RUNS} runs)`);
  console.log(`load → first live figure:  p50 ${ms(pct(first, 50))}, max ${ms(Math.max(...first))} (${RUNS} runs; target ≤ 1 s)`);
  console.log(`load average: ${loadavg().map((x) => x.toFixed(2)).join(" ")}; binaries: ${process.env.MESCHAIN_PROFILE ?? "debug"}`);
} finally {
  await browser.close();
  await stack.stop();
}
