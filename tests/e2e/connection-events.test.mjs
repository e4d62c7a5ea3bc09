// End-to-end: `connection-events` (the SignalR upstream) with the official @microsoft/signalr
// client through `meschain dev`: hub methods, their authorization, group membership, queued
// sync requests and presence.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDev, connect, sleep } from "./support/stack.mjs";

const V = "api-version=2022-06-01";
let stack;

before(async () => {
  stack = await startDev();
});

after(async () => {
  await stack?.stop();
});

test("an admin joins admins, gets the timer's dashboard broadcast and a systemAlert sent to every hub", async () => {
  const targets = ["systemAlert", "updateAdminDashboard"];
  const admin = await connect(stack, { user: "alice", roles: ["admin"], targets });
  const viewer = await connect(stack, { user: "vic", roles: ["viewer"], targets });
  try {
    assert.deepEqual(await admin.invoke("JoinAdminGroup"), { group: "admins" });
    assert.equal(await stack.rest("HEAD", `/api/hubs/meschainadminhub/groups/admins?${V}`), 200);
    // admin-broadcast runs every 5 s (ADMIN_BROADCAST_SCHEDULE in the example settings). Presence
    // reaches the store in the recorder's next batch (about a second), so a tick right after the
    // connects may not count them yet: the next one must.
    const [snapshot] = await admin.next("updateAdminDashboard", (s) => s.connections.total >= 2, 13_000);
    assert.ok(snapshot.connections.total >= 2, JSON.stringify(snapshot));
    assert.equal(viewer.received.filter(([t]) => t === "updateAdminDashboard").length, 0);

    assert.deepEqual(await admin.invoke("BroadcastSystemAlert", "Disk almost full", "warning"), { delivered: 3 });
    const [alert] = await admin.next("systemAlert");
    assert.equal(alert.message, "Disk almost full");
    assert.equal(alert.level, "warning");
    assert.equal(alert.from, "alice");
    const [seen] = await viewer.next("systemAlert");
    assert.equal(seen.message, "Disk almost full");

    await assert.rejects(admin.invoke("BroadcastSystemAlert", "x", "apocalyptic"), /Alert level must be one of/);
  } finally {
    await admin.stop();
    await viewer.stop();
  }
});

test("a dashboard user calling an admin method gets an error completion and joins nothing", async () => {
  const viewer = await connect(stack, { user: "vic", roles: ["viewer"] });
  try {
    await assert.rejects(viewer.invoke("JoinAdminGroup", "vic", "super_admin"), /Unknown hub method 'JoinAdminGroup'/);
    await assert.rejects(viewer.invoke("HandleAdminCommand", "triggerSync", { marketplace: "n11", operation: "full" }), /Unknown hub method/);
    assert.equal(await stack.rest("HEAD", `/api/hubs/meschaindashboardhub/groups/admins?${V}`), 404);
    // The admin hub itself is out of reach: negotiate refuses it.
    await assert.rejects(connect(stack, { user: "vic", roles: ["viewer"], hub: "MesChainAdminHub" }), /403/);
    // Its own method works, and only known metrics are joined.
    assert.deepEqual(await viewer.invoke("SubscribeToDashboard", ["orders", "nonsense"]), { subscribed: ["orders"], ignored: ["nonsense"] });
    assert.equal(await stack.rest("HEAD", `/api/hubs/meschaindashboardhub/groups/metrics%3Aorders?${V}`), 200);
  } finally {
    await viewer.stop();
  }
});

test("triggerSync queues exactly one sync request naming the caller", async () => {
  const admin = await connect(stack, { user: "alice", roles: ["super_admin"] });
  try {
    const before = await stack.queue("marketplace-sync");
    const result = await admin.invoke("HandleAdminCommand", "triggerSync", {
      marketplace: "trendyol",
      operation: "orders",
      requestedBy: "mallory",
    });
    assert.equal(result.marketplace, "trendyol");
    assert.match(result.requestId, /^[0-9a-f-]{36}$/);
    const queued = async (requestId) => {
      for (let i = 0; i < 100; i++) {
        const all = await stack.queue("marketplace-sync");
        if (all.some((m) => m.body.includes(requestId))) return all;
        await sleep(50);
      }
      throw new Error(`request ${requestId} never queued`);
    };
    await queued(result.requestId);
    // A second request, made after the first was answered: once it is queued, a duplicate of
    // the first (a second output, a retried upstream call) would be queued too.
    const probe = await admin.invoke("HandleAdminCommand", "triggerSync", { marketplace: "trendyol", operation: "orders" });
    const after = await queued(probe.requestId);
    const mine = after.filter((m) => m.body.includes(result.requestId));
    assert.equal(mine.length, 1, JSON.stringify(after));
    const request = JSON.parse(mine[0].body);
    assert.equal(request.requestedBy, "alice");
    assert.equal(request.operation, "orders");
    assert.equal(after.length, before.length + 2);
    // An operation that needs items is refused here, saying why, and queues nothing (the
    // refusal is the answer to the call, so nothing can be queued after it).
    await assert.rejects(admin.invoke("HandleAdminCommand", "triggerSync", { marketplace: "trendyol", operation: "inventory" }), /needs items/);
    assert.equal((await stack.queue("marketplace-sync")).length, after.length);
  } finally {
    await admin.stop();
  }
});

test("a marketplace manager receives its marketplace group's messages and not others'", async () => {
  const manager = await connect(stack, { user: "mona", roles: ["marketplace_manager"], targets: ["marketplaceSyncUpdate"] });
  try {
    assert.deepEqual(await manager.invoke("JoinMarketplaceGroup", "Trendyol"), { group: "marketplace:trendyol" });
    await assert.rejects(manager.invoke("JoinMarketplaceGroup", "etsy"), /Unknown marketplace/);
    await assert.rejects(manager.invoke("TriggerSync", "orders", "n11"), /Join marketplace 'n11'/);

    const send = (group, body) =>
      stack.rest("POST", `/api/hubs/meschainmarketplacehub/groups/${encodeURIComponent(group)}/:send?${V}`, {
        target: "marketplaceSyncUpdate",
        arguments: [body],
      });
    assert.equal(await send("marketplace:n11", { marketplace: "n11" }), 202);
    assert.equal(await send("marketplace:trendyol", { marketplace: "trendyol" }), 202);
    await manager.next("marketplaceSyncUpdate", (u) => u.marketplace === "trendyol");
    assert.deepEqual(manager.received.map(([, u]) => u.marketplace), ["trendyol"]);

    const sync = await manager.invoke("TriggerSync", "orders");
    assert.equal(sync.marketplace, "trendyol");
  } finally {
    await manager.stop();
  }
});

test("connects and disconnects update presence", async () => {
  const admin = await connect(stack, { user: "alice", roles: ["admin"], targets: ["updateAdminDashboard"] });
  const viewer = await connect(stack, { user: "dora", roles: ["viewer"] });
  try {
    const dashboard = async () => {
      admin.received.length = 0;
      assert.deepEqual(await admin.invoke("HandleAdminCommand", "requestDashboardUpdate", {}), { sent: true });
      const [snapshot] = await admin.next("updateAdminDashboard");
      return snapshot.connections.hubs.find((h) => h.hub === "MesChainDashboardHub");
    };
    // `connected` reaches the upstream asynchronously, after the client's handshake.
    let hub = await dashboard();
    for (let i = 0; i < 50 && hub.connections < 1; i++) {
      await sleep(100);
      hub = await dashboard();
    }
    const connectedBefore = hub.connections;
    assert.ok(hub.users >= 1, JSON.stringify(hub));
    assert.ok(connectedBefore >= 1, JSON.stringify(hub));

    await viewer.stop();
    // Presence goes through the store in the background (about a second).
    for (let i = 0; i < 50; i++) {
      hub = await dashboard();
      if (hub.connections <= connectedBefore - 1) break;
      await sleep(100);
    }
    assert.ok(hub.connections <= connectedBefore - 1, JSON.stringify(hub));
  } finally {
    await admin.stop();
  }
});
