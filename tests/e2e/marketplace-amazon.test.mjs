// Amazon end to end: `meschain dev` (local host, real handler, local SignalR service) with the
// live Amazon connector pointed at the fake SP-API (`fake-amazon`, started here on a free port:
// LWA tokens, the JSON_LISTINGS_FEED feed flow, processing reports), 2,500 items enqueued with
// `meschain enqueue --items FILE`, progress and per-item failures watched by an admin through
// the official SignalR client.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { appRootWith, connect, root, startDev } from "./support/stack.mjs";

const bin = (name) => path.join(root, "target", "debug", name);

async function startFake(args = []) {
  const proc = spawn(bin("fake-amazon"), ["--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      const i = buf.indexOf("\n");
      if (i >= 0) resolve(buf.slice(0, i));
    });
    proc.on("exit", (code) => reject(new Error(`fake-amazon exited with ${code}`)));
  });
  const { baseUrl, tokenUrl } = JSON.parse(line);
  return {
    baseUrl,
    tokenUrl,
    stats: async () => (await fetch(`${baseUrl}/_fake/stats`)).json(),
    async stop() {
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

test("amazon: 2,500 items as JSON_LISTINGS_FEED feeds, progress to 100 %, per-item failures listed", async () => {
  // One poll of each feed answers IN_QUEUE before DONE, as a real feed does.
  const fake = await startFake(["--feed-polls-in-progress", "1"]);
  const dir = appRootWith({
    MARKETPLACE_SANDBOX: "hepsiburada,n11,ebay,ozon",
    AMAZON_BASE_URL: fake.baseUrl,
    AMAZON_TOKEN_URL: fake.tokenUrl,
    AMAZON_CLIENT_ID: "amzn1.application-oa2-client.fake",
    AMAZON_CLIENT_SECRET: "fake-client-secret",
    AMAZON_REFRESH_TOKEN: "Atzr|fake-refresh-token",
    AMAZON_SELLER_ID: "A2FAKESELLER",
    AMAZON_MARKETPLACE_ID: "A33AVAJ2PDY3EV",
    // Five feeds of 500 messages, so progress moves in steps.
    AMAZON_FEED_MESSAGES: "500",
    SYNC_LEASE_SECONDS: "3",
  });
  const stack = await startDev({ appRoot: dir });
  const admin = await connect(stack, {
    user: "ada",
    roles: ["super_admin"],
    hub: "MesChainAdminHub",
    targets: ["marketplaceSyncUpdate", "inventoryUpdate", "systemAlert"],
  });
  try {
    assert.deepEqual(await admin.invoke("JoinAdminGroup"), { group: "admins" });
    const n = 2500;
    // Every 100th SKU is one Amazon refuses (the fake's suppressed listings).
    const items = Array.from({ length: n }, (_, i) => ({
      barcode: i % 100 === 7 ? `FAIL-${String(i).padStart(6, "0")}` : `AMZ-${String(i).padStart(6, "0")}`,
      quantity: i % 50,
    }));
    const file = path.join(dir, "items.json");
    writeFileSync(file, JSON.stringify(items));
    execFileSync(bin("meschain"), ["enqueue", "--host-url", stack.base, "--requested-by", "e2e", "--marketplace", "amazon", "--operation", "inventory", "--items", file, "--sync-id", "e2e-amazon"], { encoding: "utf8" });
    const [last] = await admin.next("marketplaceSyncUpdate", (u) => u.syncId === "e2e-amazon" && ["completed", "failed"].includes(u.status), 120_000);
    assert.equal(last.status, "completed", JSON.stringify(last));
    assert.equal(last.processed, n);
    assert.equal(last.progress, 100);
    const seen = admin.received.filter(([t, u]) => t === "marketplaceSyncUpdate" && u.syncId === "e2e-amazon").map(([, u]) => u.progress);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], JSON.stringify(seen));
    const batches = admin.received.filter(([t, r]) => t === "inventoryUpdate" && r.syncId === "e2e-amazon").map(([, r]) => r);
    assert.equal(batches.length, 5);
    assert.equal(batches.reduce((a, b) => a + b.succeeded, 0), n - 25);
    const failures = batches.flatMap((b) => b.failures);
    assert.equal(failures.length, 25);
    for (const f of failures) {
      assert.match(f.barcode, /^FAIL-/);
      assert.match(f.reasons[0], /suppressed/);
    }
    const stats = await fake.stats();
    assert.equal(stats.feeds, 5);
    assert.equal(stats.messagesApplied, n - 25);
    assert.equal(stats.skusAppliedMoreThanOnce, 0);
    assert.equal(stats.tokensIssued, 1);
  } finally {
    await admin.stop();
    await stack.stop();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
