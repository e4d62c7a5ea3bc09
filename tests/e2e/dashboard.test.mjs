// End-to-end: `admin-broadcast` through `meschain dev` with the official @microsoft/signalr
// client, the numbers coming from the store: the admin snapshot within two ticks, connections
// that follow clients, broadcasts that go on with the store down (Cosmos DB server from npm,
// made unavailable), counters that survive a restart, and two stacks on one store.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { request } from "node:https";
import { startDev, connect, root, sleep } from "./support/stack.mjs";

const TICK_MS = 5_000; // ADMIN_BROADCAST_SCHEDULE in the example settings
const TWO_TICKS = 2 * TICK_MS + 2_000;

async function admin(stack, user = "ada") {
  const a = await connect(stack, { user, roles: ["admin"], targets: ["updateAdminDashboard"] });
  await a.invoke("JoinAdminGroup");
  return a;
}

/** The first snapshot received from now on that satisfies `pred`. */
async function nextSnapshot(client, pred = () => true, ms = TWO_TICKS) {
  const from = client.received.length;
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = client.received.slice(from).find(([t, s]) => t === "updateAdminDashboard" && pred(s));
    if (hit) return hit[1];
    if (Date.now() > deadline) {
      const last = client.received.filter(([t]) => t === "updateAdminDashboard").at(-1);
      throw new Error(`no matching updateAdminDashboard within ${ms} ms; last: ${JSON.stringify(last?.[1])}`);
    }
    await sleep(100);
  }
}

/** Starts tests/support/cosmosdb-server.mjs; resolves with its port and controls. */
async function cosmosServer() {
  const proc = spawn("node", [path.join(root, "tests/support/cosmosdb-server.mjs"), "0"], {
    cwd: path.join(root, "tests"),
    stdio: ["pipe", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Cosmos DB server did not start")), 30_000);
    proc.stdout.on("data", (chunk) => {
      const m = String(chunk).match(/READY (\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on("exit", (code) => reject(new Error(`Cosmos DB server exited with ${code}`)));
  });
  // The server's certificate is self-signed: only this control channel skips its check.
  const control = (p) =>
    new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: `/_faults/${p}`, method: "POST", rejectUnauthorized: false }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end();
    });
  return {
    env: {
      COSMOS_ENDPOINT: `https://localhost:${port}/`,
      // The local server accepts any key, but the SDK signs with it: it must be base64.
      COSMOS_KEY: "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==",
      COSMOS_CREATE_IF_MISSING: "true",
      AZURE_COSMOS_EMULATOR_SERVER_CERT_VALIDATION_DISABLED: "true",
      AZURE_COSMOS_CONNECTION_POOL_IS_HTTP2_ALLOWED: "false",
      AZURE_COSMOS_PARTITION_TOPOLOGY_CACHE_MODE: "lazy",
      AZURE_COSMOS_BINARY_ENCODING_ENABLED: "false",
    },
    down: (on) => control(`down?on=${on}`),
    stop: () => { proc.stdin.end(); proc.kill("SIGTERM"); },
  };
}

test("an admin gets the full snapshot within two ticks, and connections follow clients", async () => {
  const stack = await startDev();
  try {
    const a = await admin(stack);
    const first = await nextSnapshot(a);
    for (const field of ["generatedAt", "uptimeSeconds", "connections", "marketplaces", "rates", "latency", "health", "business", "analytics"]) {
      assert.ok(field in first, `${field} missing: ${JSON.stringify(first)}`);
    }
    assert.ok(Buffer.byteLength(JSON.stringify(first)) < 2048, "under 2 KB");
    assert.equal(first.marketplaces.length, 6);
    assert.equal(first.health.signalr.status, "healthy");
    assert.equal(first.health.store.status, "healthy");
    assert.equal(first.health.secrets.status, "healthy");
    const before = first.connections.total;
    assert.ok(before >= 1, JSON.stringify(first.connections));

    const viewer = await connect(stack, { user: "vic", roles: ["viewer"] });
    const up = await nextSnapshot(a, (s) => s.connections.total === before + 1);
    assert.equal(up.connections.hubs.find((h) => h.hub === "MesChainDashboardHub").connections, 1);
    assert.ok(up.rates.negotiate.lastMinute >= 2, JSON.stringify(up.rates));
    await viewer.stop();
    await nextSnapshot(a, (s) => s.connections.total === before);
    await a.stop();
  } finally {
    await stack.stop();
  }
});

test("with the store unavailable, broadcasts go on with health.store down", async () => {
  const cosmos = await cosmosServer();
  const stack = await startDev({ env: cosmos.env });
  try {
    const a = await admin(stack);
    assert.equal((await nextSnapshot(a)).health.store.status, "healthy");
    await cosmos.down(true);
    const down = await nextSnapshot(a, (s) => s.health.store.status === "down");
    assert.ok(down.health.store.detail.length > 0);
    await cosmos.down(false);
    await nextSnapshot(a, (s) => s.health.store.status === "healthy");
    await a.stop();
  } finally {
    await stack.stop();
    cosmos.stop();
  }
});

test("after meschain dev restarts, today's counters are still there", async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "meschain-e2e-restart-"));
  try {
    let stack = await startDev({ dataDir, keepData: true });
    const a = await admin(stack);
    const extra = [];
    for (let i = 0; i < 3; i++) extra.push(await connect(stack, { user: `u${i}`, roles: ["viewer"] }));
    const counted = await nextSnapshot(a, (s) => s.rates.negotiate.lastHour >= 4);
    for (const c of extra) await c.stop();
    await a.stop();
    await stack.stop();

    stack = await startDev({ dataDir, keepData: true });
    const b = await admin(stack, "bea");
    const after = await nextSnapshot(b);
    assert.ok(after.rates.negotiate.lastHour >= counted.rates.negotiate.lastHour + 1, `${JSON.stringify(after.rates)} after ${JSON.stringify(counted.rates)}`);
    await b.stop();
    await stack.stop();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("two stacks on one store give one snapshot counting both", async () => {
  const storeDir = mkdtempSync(path.join(tmpdir(), "meschain-e2e-shared-"));
  const env = { MESCHAIN_DATA_DIR: storeDir };
  const one = await startDev({ env });
  const two = await startDev({ env });
  try {
    const a = await admin(one);
    const base = (await nextSnapshot(a)).connections.total;
    const others = [];
    for (let i = 0; i < 2; i++) others.push(await connect(two, { user: `w${i}`, roles: ["viewer"] }));
    const both = await nextSnapshot(a, (s) => s.connections.total === base + 2);
    assert.ok(both.rates.negotiate.lastHour >= 3, JSON.stringify(both.rates));
    for (const c of others) await c.stop();
    await a.stop();
  } finally {
    await one.stop();
    await two.stop();
    rmSync(storeDir, { recursive: true, force: true });
  }
});
