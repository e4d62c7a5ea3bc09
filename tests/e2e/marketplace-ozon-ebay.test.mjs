// Ozon and eBay end to end: `meschain dev` with each live connector pointed at its fake (`fake-ozon`, `fake-ebay`,
// started here on free ports), 2,500 items enqueued with `meschain enqueue --items FILE`, an admin watching through
// the official client until progress reaches 100 % with the refused items listed with their reasons.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { appRootWith, connect, root, startDev } from "./support/stack.mjs";
import { startFake } from "./support/fakes.mjs";

const bin = (name) => path.join(root, "target", "debug", name);
const N = 2500;
const REFUSED = ["E2E-000007", "E2E-001234", "E2E-002499"];

async function run(marketplace, fake, settings) {
  const dir = appRootWith({ MARKETPLACE_SANDBOX: "hepsiburada,n11,amazon,trendyol", SYNC_LEASE_SECONDS: "3", ...settings });
  const stack = await startDev({ appRoot: dir });
  const admin = await connect(stack, {
    user: "ada",
    roles: ["super_admin"],
    hub: "MesChainAdminHub",
    targets: ["marketplaceSyncUpdate", "inventoryUpdate", "systemAlert"],
  });
  try {
    assert.deepEqual(await admin.invoke("JoinAdminGroup"), { group: "admins" });
    const file = path.join(dir, "items.json");
    const items = Array.from({ length: N }, (_, i) => ({ barcode: `E2E-${String(i).padStart(6, "0")}`, quantity: i % 50, salePrice: 10 + (i % 7) + 0.5 }));
    writeFileSync(file, JSON.stringify(items));
    const syncId = `e2e-${marketplace}`;
    execFileSync(bin("meschain"), ["enqueue", "--host-url", stack.base, "--requested-by", "e2e", "--marketplace", marketplace, "--operation", "inventory", "--items", file, "--sync-id", syncId], { encoding: "utf8" });
    const [last] = await admin.next("marketplaceSyncUpdate", (u) => u.syncId === syncId && ["completed", "failed"].includes(u.status), 120_000);
    assert.equal(last.status, "completed", JSON.stringify(last));
    assert.equal(last.progress, 100);
    assert.equal(last.processed, N);
    assert.equal(last.failedItems, REFUSED.length);
    const failures = admin.received
      .filter(([t, r]) => t === "inventoryUpdate" && r.syncId === syncId)
      .flatMap(([, r]) => r.failures ?? []);
    assert.deepEqual(failures.map((f) => f.barcode).sort(), REFUSED);
    for (const f of failures) assert.ok(f.reasons.length > 0 && f.reasons[0].length > 0, JSON.stringify(f));
    return { last, failures, stats: await fake.stats() };
  } finally {
    await admin.stop();
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("ozon: 2,500 items through the live connector, per-item failures listed", async () => {
  const fake = await startFake("fake-ozon", ["--know-every-product", "--refuse", REFUSED.join(",")]);
  try {
    const { failures, stats } = await run("ozon", fake, {
      OZON_BASE_URL: fake.baseUrl,
      OZON_CLIENT_ID: fake.clientId,
      OZON_API_KEY: "fake-ozon-api-key",
      OZON_WAREHOUSE_ID: fake.warehouseId,
    });
    assert.ok(failures[0].reasons.some((r) => r.includes("NOT_FOUND_ERROR")), JSON.stringify(failures[0]));
    assert.equal(stats.stockCalls, 25, "100 pairs per stocks call");
    assert.equal(stats.priceCalls, 3, "1,000 prices per call");
    assert.equal(stats.appliedMoreThanOnce, N - REFUSED.length, "each product once for its stock and once for its price");
    assert.equal(stats.pairLimited + stats.priceLimited + stats.rateLimited, 0, "Ozon never had to refuse");
  } finally {
    await fake.stop();
  }
});

test("ebay: 2,500 items through the live connector, per-item failures listed", async () => {
  const fake = await startFake("fake-ebay", ["--know-every-product", "--refuse", REFUSED.join(",")]);
  try {
    const { failures, stats } = await run("ebay", fake, {
      EBAY_BASE_URL: fake.baseUrl,
      EBAY_CLIENT_ID: fake.clientId,
      EBAY_CLIENT_SECRET: "PRD-fake-client-secret",
      EBAY_REFRESH_TOKEN: "v^1.1#i^1#fake-refresh-token",
    });
    assert.ok(failures[0].reasons.some((r) => r.includes("25002")), JSON.stringify(failures[0]));
    assert.equal(stats.bulkCalls, N / 25);
    assert.equal(stats.offerLookups, N);
    assert.equal(stats.tokensIssued, 1);
    assert.equal(stats.appliedMoreThanOnce, 0);
  } finally {
    await fake.stop();
  }
});
