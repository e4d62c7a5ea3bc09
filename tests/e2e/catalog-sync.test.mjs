// The catalogue as the source of a sync, from the dashboard's "Start sync": `meschain dev` reading a real MariaDB
// with OpenCart's tables (TLS on, a read-only user) and pushing to the live Trendyol connector pointed at
// `fake-trendyol`. An admin starts "inventory" through the hub as the page does; the products changed since the
// last successful sync (all of them, the first time) reach the fake, and a second start pushes nothing. A product
// without a barcode is reported as a skipped item with its reason.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { appRootWith, connect, loginToken, sleep, startDev } from "./support/stack.mjs";
import { startFake } from "./support/fakes.mjs";
import { startMariaDb } from "./support/mariadb.mjs";

const PRODUCTS = 300;
let db, fake, stack, dir;

before(async () => {
  db = await startMariaDb();
  db.sql(
    `SET SESSION sql_mode = ''; INSERT INTO oc_product (product_id, model, sku, upc, ean, jan, isbn, mpn, location,
       quantity, stock_status_id, manufacturer_id, price, tax_class_id, status, date_added, date_modified)
     SELECT seq, CONCAT('M', seq), CONCAT('SKU', seq), '', IF(seq = 7, '', CONCAT('868', LPAD(seq, 10, '0'))), '', '', '', '',
       seq % 50, 7, 0, 10 + seq % 7, 0, 1, NOW() - INTERVAL 1 HOUR, NOW() - INTERVAL 1 HOUR FROM seq_1_to_${PRODUCTS}`,
  );
  fake = await startFake("fake-trendyol");
  dir = appRootWith({
    MARKETPLACE_SANDBOX: "hepsiburada,n11,amazon,ebay,ozon",
    TRENDYOL_BASE_URL: fake.baseUrl,
    TRENDYOL_SELLER_ID: "123456",
    TRENDYOL_API_KEY: "fake-api-key",
    TRENDYOL_API_SECRET: "fake-api-secret",
    CATALOG_MYSQL_URL: db.url,
    CATALOG_MYSQL_CA_FILE: db.ca,
  });
  stack = await startDev({ appRoot: dir });
});

after(async () => {
  await stack?.stop();
  await fake?.stop();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function startInventory(admin) {
  const started = await admin.invoke("HandleAdminCommand", "triggerSync", { marketplace: "trendyol", operation: "inventory" });
  assert.equal(started.mode, "changed");
  const [last] = await admin.next("marketplaceSyncUpdate", (u) => u.syncId === started.syncId && ["completed", "failed"].includes(u.status), 90_000);
  return { started, last };
}

test("inventory from the dashboard pushes the changed products, then nothing", async () => {
  const admin = await connect(stack, {
    user: "ada",
    roles: ["super_admin"],
    hub: "MesChainAdminHub",
    targets: ["marketplaceSyncUpdate", "inventoryUpdate"],
  });
  try {
    assert.deepEqual(await admin.invoke("JoinAdminGroup"), { group: "admins" });
    // Negotiate tells the page the catalogue is there, so it offers stock and prices, and how each
    // marketplace syncs.
    const answer = await (
      await fetch(`${stack.base}/api/negotiate?negotiateVersion=1`, {
        method: "POST",
        headers: { authorization: `Bearer ${loginToken("ada", ["super_admin"])}` },
      })
    ).json();
    assert.deepEqual(answer.syncOperations, ["inventory", "prices", "orders"]);
    assert.deepEqual(answer.catalog, { configured: true, host: "127.0.0.1" });
    assert.equal(answer.connectors.trendyol, "live");
    assert.equal(answer.connectors.n11, "sandbox");

    const { started, last } = await startInventory(admin);
    assert.equal(last.status, "completed", JSON.stringify(last));
    assert.equal(last.processed, PRODUCTS);
    assert.equal(last.failedItems, 1, "the product without a barcode");
    const failures = admin.received
      .filter(([t, r]) => t === "inventoryUpdate" && r.syncId === started.syncId)
      .flatMap(([, r]) => r.failures ?? []);
    assert.equal(failures.length, 1);
    assert.match(failures[0].reasons.join(" "), /barcode/);
    const first = await fake.stats();
    assert.equal(first.distinctBarcodes, PRODUCTS - 1);
    assert.equal(first.barcodesPushedMoreThanOnce, 0);

    // Nothing changed since: the second start completes with nothing to push.
    const second = await startInventory(admin);
    assert.equal(second.last.status, "completed", JSON.stringify(second.last));
    assert.equal(second.last.processed, 0);
    assert.equal((await fake.stats()).itemsPushed, first.itemsPushed, "nothing pushed again");

    // One product edited: only it goes. OpenCart stamps edits to the second, and a sync's mark
    // trails the database clock by MARK_LAG_SECONDS (2 s, so an edit committed as the snapshot is
    // taken is never skipped); the edit is dated that far back, one second after the last mark.
    await sleep(1_100);
    db.sql("UPDATE oc_product SET quantity = 41, date_modified = NOW() - INTERVAL 2 SECOND WHERE product_id = 42");
    const third = await startInventory(admin);
    assert.equal(third.last.processed, 1, JSON.stringify(third.last));
    assert.equal((await fake.stats()).itemsPushed, first.itemsPushed + 1);
  } finally {
    await admin.stop();
  }
});
