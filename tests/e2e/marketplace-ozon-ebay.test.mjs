// Ozon and eBay end to end: `meschain dev` with each live connector pointed at its fake (`fake-ozon`, `fake-ebay`,
// started here on free ports), 2,500 items enqueued with `meschain enqueue --items FILE`, an admin watching through
// the official client until progress reaches 100 % with the refused items listed with their reasons.

import { test } from "node:test";
import assert from "node:assert/strict";
import { startFake } from "./support/fakes.mjs";
import { syncThroughDev } from "./support/sync-through-dev.mjs";

const N = 2500;
const REFUSED = ["E2E-000007", "E2E-001234", "E2E-002499"];

const barcodes = Array.from({ length: N }, (_, i) => `E2E-${String(i).padStart(6, "0")}`);
const run = (marketplace, fake, settings) => syncThroughDev({ marketplace, fake, settings, barcodes, refused: REFUSED });

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
