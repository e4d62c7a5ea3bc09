// Hepsiburada and N11 end to end: `meschain dev` with each live connector pointed at its fake
// (`fake-hepsiburada`, `fake-n11`, started here on free ports), 2,500 items through the queue, an admin watching
// through the official client until progress reaches 100 % with the refused items listed with their reasons.
// Both fakes refuse items whose code starts with `FAIL-` (an unknown SKU, as the marketplaces answer it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { startFake } from "./support/fakes.mjs";
import { syncThroughDev } from "./support/sync-through-dev.mjs";

const N = 2500;
const REFUSED_AT = new Set([7, 1234, 2499]);
const barcodes = Array.from({ length: N }, (_, i) => `${REFUSED_AT.has(i) ? "FAIL-" : ""}E2E-${String(i).padStart(6, "0")}`);
const refused = barcodes.filter((b) => b.startsWith("FAIL-"));

test("hepsiburada: 2,500 items through the live connector, per-item failures listed", async () => {
  const fake = await startFake("fake-hepsiburada");
  try {
    const { stats } = await syncThroughDev({
      marketplace: "hepsiburada",
      fake,
      barcodes,
      refused,
      settings: {
        HEPSIBURADA_BASE_URL: fake.baseUrl,
        HEPSIBURADA_ORDERS_BASE_URL: fake.baseUrl,
        HEPSIBURADA_MERCHANT_ID: fake.merchantId,
        HEPSIBURADA_SERVICE_KEY: fake.serviceKey,
        HEPSIBURADA_INTEGRATOR: fake.integrator,
      },
    });
    assert.equal(stats.itemsRefused, refused.length * (stats.priceUploads > 0 ? 2 : 1), JSON.stringify(stats));
    assert.ok(stats.stockUploads > 0, JSON.stringify(stats));
  } finally {
    await fake.stop();
  }
});

test("n11: 2,500 items through the live connector, per-item failures listed", async () => {
  const fake = await startFake("fake-n11");
  try {
    const { stats } = await syncThroughDev({
      marketplace: "n11",
      fake,
      barcodes,
      refused,
      listPrices: true,
      settings: { N11_BASE_URL: fake.baseUrl, N11_APP_KEY: fake.appKey, N11_APP_SECRET: fake.appSecret },
    });
    assert.equal(stats.skusFailed, refused.length, JSON.stringify(stats));
    assert.equal(stats.codesAppliedMoreThanOnce, 0, JSON.stringify(stats));
    assert.ok(stats.largestTask <= 1000, "N11 takes at most 1,000 SKUs per task");
  } finally {
    await fake.stop();
  }
});
