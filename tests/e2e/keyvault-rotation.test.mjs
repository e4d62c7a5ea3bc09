// Key rotation through Key Vault, end to end: `meschain dev` whose settings hold only Key Vault
// references (the SignalR connection string and the login secret), read from the fake vault
// with managed identity. While clients keep negotiating, connecting, invoking hub methods and
// receiving broadcasts through the official @microsoft/signalr client, both secrets are rotated
// the way operators do it in Azure:
//   1. regenerate the SignalR key the app does not use (the secondary) and put its connection
//      string in the vault; rotate the login secret in the vault;
//   2. the handler follows within its refresh interval, accepting the old values until the
//      overlap ends;
//   3. regenerate the old (primary) key.
// Not one request fails, and the old key and the old login secret stop working once the
// overlap ends.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { rmSync } from "node:fs";
import * as signalR from "@microsoft/signalr";
import { appRootWith, sleep, startDev } from "./support/stack.mjs";
import { startVault } from "./support/keyvault.mjs";

const REFRESH_SECONDS = 1;
const OVERLAP_SECONDS = 8;
const CONTROL = { "x-meschain-control": "1" };

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });

const randomSecret = () => randomBytes(32).toString("base64");

/** Whether an HS256 JWT's signature is made with `key` (UTF-8 bytes, as both sides use it). */
function signedWith(token, key) {
  const [header, payload, signature] = token.split(".");
  return createHmac("sha256", Buffer.from(key, "utf8")).update(`${header}.${payload}`).digest("base64url") === signature;
}

/** An `X-ASRS-Signature` value made with the given keys only. */
const upstreamSignature = (connectionId, keys) =>
  keys.map((k) => `sha256=${createHmac("sha256", Buffer.from(k, "utf8")).update(connectionId).digest("hex")}`).join(",");

async function waitFor(what, check, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

test("SignalR key and login secret rotate in Key Vault with zero failed requests; the old ones stop after the overlap", async (t) => {
  const signalrPort = await freePort();
  const cs = (key) => `Endpoint=http://localhost;Port=${signalrPort};AccessKey=${key};Version=1.0;`;
  const oldKey = randomSecret();
  const oldSecret = randomSecret();
  const vault = await startVault({ "signalr-connection": cs(oldKey), "login-secret": oldSecret });
  t.after(() => vault.stop());
  const dir = appRootWith({
    AzureSignalRConnectionString: vault.reference("signalr-connection"),
    AUTH_JWT_SECRET: vault.reference("login-secret"),
    SECRETS_REFRESH_SECONDS: String(REFRESH_SECONDS),
    SECRETS_OVERLAP_SECONDS: String(OVERLAP_SECONDS),
    ADMIN_BROADCAST_SCHEDULE: "* * * * * *",
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stack = await startDev({ appRoot: dir, env: vault.env() });
  t.after(() => stack.stop());
  // The local service listens where the vault's connection string says, with its key.
  assert.equal(stack.signalrPort, signalrPort);

  const control = async (method, p, body) => {
    const res = await fetch(`${stack.base}/admin/signalr/${p}`, {
      method,
      headers: { ...CONTROL, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    assert.equal(res.status, 200, `${method} ${p}`);
    return res.json();
  };
  const initial = await control("GET", "keys");
  assert.equal(initial.primaryKey, oldKey);

  const devToken = async (user, roles = ["admin"]) => {
    const res = await fetch(`${stack.base}/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user, roles }),
    });
    if (res.status !== 200) throw new Error(`/dev/token answered ${res.status}`);
    return (await res.json()).token;
  };
  const negotiate = (token) =>
    fetch(`${stack.base}/api/negotiate`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  const upstream = (keys) => {
    const id = `rotation-probe-${randomBytes(4).toString("hex")}`;
    return fetch(`${stack.base}/api/signalr/upstream?code=${stack.functionKey}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-asrs-connection-id": id,
        "x-asrs-hub": "meschainadminhub",
        "x-asrs-category": "connections",
        "x-asrs-event": "disconnected",
        "x-asrs-signature": upstreamSignature(id, keys),
      },
      body: "{}",
    }).then((r) => r.status);
  };
  /** Resolves when `connection` receives `target` (matching `pred`), or rejects after `ms`. */
  const receive = (connection, target, pred, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.off(target, handler);
        reject(new Error(`no ${target} within ${ms} ms`));
      }, ms);
      const handler = (...args) => {
        if (!pred(...args)) return;
        clearTimeout(timer);
        connection.off(target, handler);
        resolve(args);
      };
      connection.on(target, handler);
    });
  const open = async (user) => {
    const token = await devToken(user);
    const connection = new signalR.HubConnectionBuilder()
      .withUrl(`${stack.base}/api`, { accessTokenFactory: () => token })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await connection.start();
    return connection;
  };

  // What exists before the rotation: a login token signed with the old secret, a client access
  // token signed with the old key, and an admin who stays connected throughout.
  const oldLogin = await devToken("olga");
  assert.ok(signedWith(oldLogin, oldSecret));
  const before = await (await negotiate(oldLogin)).json();
  assert.ok(signedWith(before.accessToken, oldKey));
  const watcher = await open("wendy");
  let watcherClosed = null;
  watcher.onclose((e) => (watcherClosed = e ?? new Error("closed")));
  await watcher.invoke("JoinAdminGroup");
  const ticks = [];
  watcher.on("updateAdminDashboard", () => ticks.push(Date.now()));

  // The workload: three clients in a loop, each iteration a full session.
  const failures = [];
  let sessions = 0;
  let running = true;
  const worker = async (n) => {
    for (let i = 0; running; i++) {
      let connection;
      try {
        connection = await open(`worker-${n}`);
        assert.deepEqual(await connection.invoke("JoinAdminGroup"), { group: "admins" });
        const alert = `w${n}-${i}`;
        const seen = receive(connection, "systemAlert", (a) => a.message === alert, 5_000);
        const result = await connection.invoke("BroadcastSystemAlert", alert, "info");
        assert.ok(result.delivered >= 1, JSON.stringify(result));
        await seen;
        await receive(connection, "updateAdminDashboard", () => true, 3_000);
        sessions++;
      } catch (e) {
        failures.push(`worker ${n} session ${i}: ${e.message}`);
      } finally {
        await connection?.stop().catch((e) => failures.push(`worker ${n} stop: ${e.message}`));
      }
    }
  };
  const workers = [0, 1, 2].map(worker);

  try {
    await sleep(2_000);

    // 1. Regenerate the unused key, point the vault at it; rotate the login secret.
    const rotated = await control("POST", "keys/regenerate", { keyType: "Secondary" });
    const newKey = rotated.secondaryKey;
    assert.equal(rotated.primaryKey, oldKey);
    await vault.setSecret("signalr-connection", rotated.secondaryConnectionString);
    const newSecret = randomSecret();
    await vault.setSecret("login-secret", newSecret);
    const rotatedAt = Date.now();

    // 2. The handler signs client tokens with the new key within its refresh interval...
    await waitFor("client tokens signed with the new key", async () => {
      const res = await negotiate(await devToken("probe"));
      return res.status === 200 && signedWith((await res.json()).accessToken, newKey);
    }, 5_000);
    // The handler rotated no later than now (the login secret at most one refresh later).
    const switchedAt = Date.now();
    const switchedAfter = switchedAt - rotatedAt;
    // ... dev tokens (the issuer) switch to the new login secret once the handler has it ...
    await waitFor("login tokens signed with the new secret", async () => signedWith(await devToken("probe"), newSecret), 8_000);
    // ... and during the overlap the old login token and the old key's upstream signature still pass.
    assert.equal((await negotiate(oldLogin)).status, 200, "old login secret during the overlap");
    assert.equal(await upstream([oldKey]), 200, "old key's upstream signature during the overlap");

    // After the overlap, only the new values are accepted by the handler.
    await sleep(Math.max(0, switchedAt + (OVERLAP_SECONDS + 2 * REFRESH_SECONDS) * 1000 + 500 - Date.now()));
    const refused = await negotiate(oldLogin);
    assert.equal(refused.status, 401, "old login secret after the overlap");
    assert.match(refused.headers.get("www-authenticate") ?? "", /invalid_token/);
    assert.equal(await upstream([oldKey]), 401, "old key's upstream signature after the overlap");
    assert.equal(await upstream([newKey]), 200, "new key's upstream signature");

    // 3. Regenerate the old key: the service refuses it from now on.
    const staleNegotiate = () => {
      const url = new URL(before.url);
      url.pathname = `${url.pathname.replace(/\/$/, "")}/negotiate`;
      url.searchParams.set("negotiateVersion", "1");
      return fetch(url, { method: "POST", headers: { authorization: `Bearer ${before.accessToken}` } }).then((r) => r.status);
    };
    const oldKeyRest = () => stack.rest("HEAD", "/api/hubs/meschainadminhub/groups/admins?api-version=2022-06-01");
    assert.deepEqual([await staleNegotiate(), await oldKeyRest()], [200, 200], "the old key works until it is regenerated");
    const final = await control("POST", "keys/regenerate", { keyType: "Primary" });
    assert.notEqual(final.primaryKey, oldKey);
    assert.equal(final.secondaryKey, newKey);
    assert.deepEqual([await staleNegotiate(), await oldKeyRest()], [401, 401], "client token and REST call with the regenerated key");
    const sessionsAtRegeneration = sessions;
    const ticksAtRegeneration = ticks.length;
    await sleep(3_000);

    running = false;
    await Promise.all(workers);
    assert.deepEqual(failures, [], "no session failed");
    assert.ok(sessions - sessionsAtRegeneration >= 3, `sessions kept succeeding after the old key was regenerated (${sessions} in all)`);
    assert.ok(ticks.length - ticksAtRegeneration >= 2, "broadcasts (REST calls with the new key) kept arriving");
    assert.equal(watcherClosed, null, "the connection made with the old key stayed up");
    t.diagnostic(`${sessions} sessions, 0 failed; handler on the new key ${switchedAfter} ms after the vault changed`);
  } finally {
    running = false;
    await Promise.all(workers);
    await watcher.stop();
  }
});
