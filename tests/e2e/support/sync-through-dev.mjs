// One marketplace's live connector end to end: `meschain dev` with the connector pointed at its fake (started by
// the caller), N items enqueued with `meschain enqueue --items FILE`, an admin watching through the official
// client until progress reaches 100 %, with the refused items listed with their reasons.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { appRootWith, connect, root, startDev } from "./stack.mjs";

const bin = (name) => path.join(root, "target", "debug", name);

/// Every marketplace but `marketplace` on the sandbox, so only its live connector is configured.
function sandboxExcept(marketplace) {
  return ["trendyol", "hepsiburada", "n11", "amazon", "ebay", "ozon"].filter((m) => m !== marketplace).join(",");
}

/**
 * Syncs `barcodes` (stock and a sale price each) to `marketplace` and returns the final update, the failures the
 * admins were told about and the fake's stats. `refused` are the barcodes the fake refuses; `listPrices` adds a
 * list price to every item (N11 takes the two prices together).
 */
export async function syncThroughDev({ marketplace, fake, settings, barcodes, refused, listPrices = false }) {
  const dir = appRootWith({ MARKETPLACE_SANDBOX: sandboxExcept(marketplace), SYNC_LEASE_SECONDS: "3", ...settings });
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
    const items = barcodes.map((barcode, i) => {
      const salePrice = 10 + (i % 7) + 0.5;
      return { barcode, quantity: i % 50, salePrice, ...(listPrices ? { listPrice: salePrice + 5 } : {}) };
    });
    writeFileSync(file, JSON.stringify(items));
    const syncId = `e2e-${marketplace}`;
    execFileSync(bin("meschain"), ["enqueue", "--host-url", stack.base, "--requested-by", "e2e", "--marketplace", marketplace, "--operation", "inventory", "--items", file, "--sync-id", syncId], { encoding: "utf8" });
    const [last] = await admin.next("marketplaceSyncUpdate", (u) => u.syncId === syncId && ["completed", "failed"].includes(u.status), 120_000);
    assert.equal(last.status, "completed", JSON.stringify(last));
    assert.equal(last.progress, 100);
    assert.equal(last.processed, barcodes.length);
    assert.equal(last.failedItems, refused.length);
    const failures = admin.received
      .filter(([t, r]) => t === "inventoryUpdate" && r.syncId === syncId)
      .flatMap(([, r]) => r.failures ?? []);
    assert.deepEqual(failures.map((f) => f.barcode).sort(), [...refused].sort());
    for (const f of failures) assert.ok(f.reasons.length > 0 && f.reasons[0].length > 0, JSON.stringify(f));
    return { last, failures, stats: await fake.stats() };
  } finally {
    await admin.stop();
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
