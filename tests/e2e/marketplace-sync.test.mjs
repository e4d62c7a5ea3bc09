// marketplace-sync end to end: `meschain dev` (local host, real handler, local SignalR service)
// against the fake Trendyol server (`fake-trendyol`, started here on a free port), requests
// enqueued with `meschain enqueue`, progress watched by an admin through the official client.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { appRootWith, connect, root, sleep, startDev } from "./support/stack.mjs";

const bin = (name) => path.join(root, "target", "debug", name);

/** Starts the fake Trendyol seller API on a free port. */
async function startFake(args = []) {
  const proc = spawn(bin("fake-trendyol"), ["--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      const i = buf.indexOf("\n");
      if (i >= 0) resolve(buf.slice(0, i));
    });
    proc.on("exit", (code) => reject(new Error(`fake-trendyol exited with ${code}`)));
  });
  const { baseUrl, itemsUrl } = JSON.parse(line);
  const origin = new URL(baseUrl).origin;
  return {
    baseUrl,
    itemsUrl,
    stats: async () => (await fetch(`${origin}/_fake/stats`)).json(),
    faults: (f) =>
      fetch(`${origin}/_fake/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(f) }),
    async stop() {
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** The fake, `meschain dev` pointed at it, and an admin in `admins` watching sync messages. */
async function setup({ fakeArgs = [], settings = {} } = {}) {
  const fake = await startFake(fakeArgs);
  const dir = appRootWith({
    MARKETPLACE_SANDBOX: "hepsiburada,n11,amazon,ebay,ozon",
    TRENDYOL_BASE_URL: fake.baseUrl,
    TRENDYOL_SELLER_ID: "123456",
    TRENDYOL_API_KEY: "fake-api-key",
    TRENDYOL_API_SECRET: "fake-api-secret",
    TRENDYOL_INTEGRATOR: "MesChainE2E",
    SYNC_LEASE_SECONDS: "3",
    ...settings,
  });
  const stack = await startDev({ appRoot: dir });
  const admin = await connect(stack, {
    user: "ada",
    roles: ["super_admin"],
    hub: "MesChainAdminHub",
    targets: ["marketplaceSyncUpdate", "inventoryUpdate", "systemAlert"],
  });
  assert.deepEqual(await admin.invoke("JoinAdminGroup"), { group: "admins" });
  return {
    fake,
    stack,
    admin,
    dir,
    enqueue(args) {
      return execFileSync(bin("meschain"), ["enqueue", "--host-url", stack.base, "--requested-by", "e2e", ...args], {
        encoding: "utf8",
      });
    },
    async stop() {
      await admin.stop();
      await stack.stop();
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function itemsFile(dir, n) {
  const file = path.join(dir, `items-${n}.json`);
  const items = Array.from({ length: n }, (_, i) => ({ barcode: `E2E-${String(i).padStart(6, "0")}`, quantity: i % 50, salePrice: 10 + (i % 7), listPrice: 20 }));
  writeFileSync(file, JSON.stringify(items));
  return file;
}

const updates = (admin, syncId) =>
  admin.received.filter(([t, u]) => t === "marketplaceSyncUpdate" && u.syncId === syncId).map(([, u]) => u);

/**
 * Sends the admins a systemAlert now and waits for it. Everything the handler sent the admins
 * before has then arrived (one service, one connection, sent in order), so "nothing more came"
 * can be asserted without waiting a fixed time.
 */
async function probe(admin) {
  const message = `probe-${Date.now()}-${Math.random()}`;
  await admin.invoke("BroadcastSystemAlert", message, "info");
  await admin.next("systemAlert", (a) => a.message === message);
}

async function finished(admin, syncId, ms = 60_000) {
  const [u] = await admin.next("marketplaceSyncUpdate", (u) => u.syncId === syncId && ["completed", "failed"].includes(u.status), ms);
  return u;
}

/** Resident memory of a process, from /proc: current and peak, in KiB. */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key) => Number(status.match(new RegExp(`${key}:\\s+(\\d+) kB`))[1]);
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

const handlerPid = (stack) => Number(execFileSync("pgrep", ["-P", String(stack.pid), "-f", "handler"], { encoding: "utf8" }).trim().split("\n")[0]);

test("5,000 items: every item pushed once in batches of at most 1,000, progress 0 to 100 in order", async () => {
  const s = await setup();
  try {
    s.enqueue(["--marketplace", "trendyol", "--operation", "inventory", "--items-url", `${s.fake.itemsUrl}?total=5000`, "--sync-id", "e2e-5000"]);
    const last = await finished(s.admin, "e2e-5000");
    assert.equal(last.status, "completed");
    const seen = updates(s.admin, "e2e-5000");
    assert.equal(seen[0].progress, 0);
    assert.equal(seen.at(-1).progress, 100);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress >= seen[i - 1].progress, JSON.stringify(seen.map((u) => u.progress)));
    assert.equal(last.processed, 5000);
    assert.equal(last.total, 5000);
    assert.equal(last.requestedBy, "e2e");
    const batches = s.admin.received.filter(([t, r]) => t === "inventoryUpdate" && r.syncId === "e2e-5000");
    assert.equal(batches.length, 5);
    const stats = await s.fake.stats();
    assert.equal(stats.itemsPushed, 5000);
    assert.equal(stats.distinctBarcodes, 5000);
    assert.equal(stats.barcodesPushedMoreThanOnce, 0);
    assert.ok(stats.largestBatch <= 1000);
  } finally {
    await s.stop();
  }
});

test("meschain enqueue --items FILE: the same request enqueued twice pushes once", async () => {
  const s = await setup();
  try {
    // 1,500 items: about 110 KB, inside Service Bus Standard's 256 KB message limit.
    const file = itemsFile(s.dir, 1500);
    const args = ["--marketplace", "trendyol", "--operation", "inventory", "--items", file, "--sync-id", "e2e-twice"];
    s.enqueue(args);
    s.enqueue(args);
    const last = await finished(s.admin, "e2e-twice");
    assert.equal(last.status, "completed");
    assert.equal(last.processed, 1500);
    // Both deliveries handled (the queue holds a message until its invocation ends) ...
    for (let i = 0; i < 100 && (await s.stack.queue("marketplace-sync")).length > 0; i++) await sleep(100);
    assert.deepEqual(await s.stack.queue("marketplace-sync"), []);
    // ... and whatever they sent the admins delivered.
    await probe(s.admin);
    const stats = await s.fake.stats();
    assert.equal(stats.pushes, 2);
    assert.equal(stats.itemsPushed, 1500);
    assert.equal(stats.barcodesPushedMoreThanOnce, 0);
    assert.equal(updates(s.admin, "e2e-twice").filter((u) => u.status === "completed").length, 1);
  } finally {
    await s.stop();
  }
});

test("429s are honoured: the sync waits Retry-After and pushes every item once", async () => {
  const s = await setup();
  try {
    await s.fake.faults({ push: [429, 429, 503], retryAfterSeconds: 1 });
    const file = itemsFile(s.dir, 2000);
    const started = Date.now();
    s.enqueue(["--marketplace", "trendyol", "--operation", "inventory", "--items", file, "--sync-id", "e2e-429"]);
    const last = await finished(s.admin, "e2e-429");
    assert.equal(last.status, "completed");
    assert.ok(Date.now() - started >= 1000, "waited for Retry-After");
    const stats = await s.fake.stats();
    assert.equal(stats.injectedFaults, 3);
    assert.equal(stats.itemsPushed, 2000);
    assert.equal(stats.barcodesPushedMoreThanOnce, 0);
  } finally {
    await s.stop();
  }
});

test("an invalid request is dead-lettered with its reason, and admins get exactly one alert", async () => {
  const s = await setup();
  try {
    const res = await fetch(`${s.stack.base}/admin/queues/marketplace-sync/messages`, {
      method: "POST",
      headers: { "X-Meschain-Control": "1", "content-type": "application/json", BrokerProperties: JSON.stringify({ MessageId: "bad-1" }) },
      body: JSON.stringify({ marketplace: "etsy", operation: "inventory", items: [{ barcode: "", quantity: -1 }] }),
    });
    assert.equal(res.status, 201);
    let dead;
    for (let i = 0; i < 100 && !dead; i++) {
      dead = (await (await fetch(`${s.stack.base}/admin/queues/marketplace-sync/deadletters`)).json()).find((m) => m.messageId === "bad-1" || m.message_id === "bad-1");
      if (!dead) await sleep(200);
    }
    assert.ok(dead, "dead-lettered");
    const text = JSON.stringify(dead);
    assert.match(text, /invalid sync request/);
    assert.match(text, /unknown marketplace/);
    // Dead-lettered after its last invocation, whose alert was sent; a probe sent now arrives
    // after any further alert would have.
    await probe(s.admin);
    const alerts = s.admin.received.filter(([t, a]) => t === "systemAlert" && !a.message.startsWith("probe-"));
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.match(alerts[0][1].message, /items\[0\]\.barcode/);
    assert.equal((await s.fake.stats()).pushes, 0);
  } finally {
    await s.stop();
  }
});

test("kill -9 of the handler mid-sync: redelivered, resumed, finished batches not pushed again", async () => {
  const s = await setup({ fakeArgs: ["--latency-ms", "400"] });
  try {
    const n = 20_000;
    s.enqueue(["--marketplace", "trendyol", "--operation", "inventory", "--items-url", `${s.fake.itemsUrl}?total=${n}`, "--sync-id", "e2e-kill"]);
    for (let i = 0; i < 200 && (await s.fake.stats()).pushes < 4; i++) await sleep(50);
    const victim = handlerPid(s.stack);
    process.kill(victim, "SIGKILL");
    const last = await finished(s.admin, "e2e-kill", 90_000);
    assert.equal(last.status, "completed");
    assert.equal(last.processed, n);
    assert.notEqual(handlerPid(s.stack), victim, "the host started a new handler");
    const stats = await s.fake.stats();
    assert.equal(stats.distinctBarcodes, n, "every item pushed");
    // Only the window in flight at the kill (TRENDYOL_CONCURRENCY = 4 batches) may be pushed again.
    assert.ok(stats.barcodesPushedMoreThanOnce <= 4000, JSON.stringify(stats));
    assert.ok(stats.pushes + stats.rejectedDuplicate <= 20 + 4, JSON.stringify(stats));
  } finally {
    await s.stop();
  }
});

test("an itemsUrl sync of 100,000 items runs in bounded memory", async () => {
  const s = await setup({ fakeArgs: ["--rate-limit", "off"], settings: { TRENDYOL_RATE_LIMIT: "100000/1" } });
  try {
    const n = 100_000;
    const pid = handlerPid(s.stack);
    const before = memory(pid);
    s.enqueue(["--marketplace", "trendyol", "--operation", "inventory", "--items-url", `${s.fake.itemsUrl}?total=${n}`, "--sync-id", "e2e-100k"]);
    const last = await finished(s.admin, "e2e-100k", 240_000);
    assert.equal(last.status, "completed");
    assert.equal(last.processed, n);
    const after = memory(pid);
    const growthMiB = (after.peak - before.rss) / 1024;
    assert.ok(growthMiB <= 50, `handler RSS grew ${growthMiB.toFixed(1)} MiB`);
    const stats = await s.fake.stats();
    assert.equal(stats.distinctBarcodes, n);
    assert.equal(stats.barcodesPushedMoreThanOnce, 0);
    const seen = updates(s.admin, "e2e-100k");
    assert.equal(seen.at(-1).progress, 100);
  } finally {
    await s.stop();
  }
});
