// End-to-end: the official @microsoft/signalr client against `meschain signalr`.
//
// The client negotiates with our real `negotiate` function (a redirect to the service with the
// token it mints for the signed-in user), connects
// with every transport and protocol, receives REST sends to all / user / group / connection,
// is excluded when excluded, leaves a group, invokes a hub method answered by an upstream
// webhook, and is closed with a reason.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { jwt, loginToken } from "./support/stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binary = path.join(root, "target", "debug", "meschain");
const exampleSettings = JSON.parse(readFileSync(path.join(root, "local.settings.example.json"), "utf8")).Values;
const KEY = "e2e-primary-key-0123456789abcdefghijklmnopq";
const KEY2 = "e2e-secondary-key-0123456789abcdefghijklmno";
// The hub as the service names it (lower-case); clients ask our negotiate for the dashboard hub,
// which any signed-in user may use.
const HUB = "meschaindashboardhub";
const handlerBinary = path.join(root, "target", "debug", "handler");

let service; // { proc, port, connectionString }
let upstream; // { server, port, requests }
let app; // { server, url }

// ---- helpers -------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function listen(handler) {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port }));
  });
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * The app's `negotiate` function: our real `handler`, configured with the example settings and
 * this service's connection string. It answers POST {base}/api/negotiate for a login token
 * with a redirect to the service (`url`) and a client token (`accessToken`).
 */
async function startAppNegotiate(connectionString) {
  const port = await freePort();
  const proc = spawn(handlerBinary, [], {
    env: {
      ...process.env,
      ...exampleSettings,
      AzureSignalRConnectionString: connectionString,
      AzureSignalRSecondaryConnectionString: "",
      FUNCTIONS_CUSTOMHANDLER_PORT: String(port),
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; ; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      break;
    } catch (e) {
      if (i > 200) throw new Error(`handler did not start: ${e}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return { proc, url: `http://127.0.0.1:${port}/api?hub=MesChainDashboardHub` };
}

/** A REST call to the service with a token whose audience is the request URL (SDK style). */
async function rest(method, pathAndQuery, body) {
  const now = Math.floor(Date.now() / 1000);
  const token = jwt({ nbf: now, exp: now + 3600, iat: now, aud: `http://localhost${pathAndQuery}` }, KEY);
  const res = await fetch(`http://127.0.0.1:${service.port}${pathAndQuery}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  await res.arrayBuffer();
  return res.status;
}

const V = "api-version=2022-06-01";

/** A connection that records every `msg` it receives. */
async function connect(user, transport, protocol) {
  const received = [];
  const waiters = [];
  let closedWith;
  const closed = new Promise((resolve) => {
    closedWith = resolve;
  });
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(app.url, { transport, accessTokenFactory: () => loginToken(user, ["viewer"]) })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  connection.on("msg", (text) => {
    received.push(text);
    waiters.splice(0).forEach((w) => w());
  });
  connection.onclose((error) => closedWith(error));
  await connection.start();
  const waitFor = async (text) => {
    const deadline = Date.now() + 5000;
    while (!received.includes(text)) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${text}; got ${JSON.stringify(received)}`);
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100).unref();
      });
    }
  };
  return { connection, received, waitFor, closed };
}

function varint(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}

// ---- setup ---------------------------------------------------------------------------------

before(async () => {
  if (!existsSync(binary)) {
    const r = spawnSync("cargo", ["build", "-p", "meschain", "--bin", "meschain"], { cwd: root, stdio: "inherit" });
    assert.equal(r.status, 0, "cargo build failed");
  }
  const msgpack = new MessagePackHubProtocol();
  upstream = { requests: [] };
  const up = await listen(async (req, res) => {
    const body = await readBody(req);
    upstream.requests.push({ url: req.url, headers: req.headers, body });
    const isMsgpack = req.headers["content-type"] === "application/x-msgpack";
    if (req.headers["x-asrs-event"] !== "echo") {
      res.writeHead(200).end();
      return;
    }
    // Unframed invocation → parse it with the client's own protocol code, answer a Completion.
    let invocation;
    if (isMsgpack) {
      const framed = Buffer.concat([varint(body.length), body]);
      const ab = framed.buffer.slice(framed.byteOffset, framed.byteOffset + framed.length);
      [invocation] = msgpack.parseMessages(ab, signalR.NullLogger.instance);
    } else {
      invocation = JSON.parse(body.toString("utf8"));
    }
    const result = { echo: invocation.arguments, user: req.headers["x-asrs-user-id"] };
    const completion = { type: signalR.MessageType.Completion, invocationId: invocation.invocationId, result, headers: {} };
    const out = isMsgpack
      ? Buffer.from(msgpack.writeMessage(completion))
      : Buffer.from(JSON.stringify(completion) + "\x1e");
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(out);
  });
  upstream.server = up.server;
  upstream.port = up.port;

  const port = await freePort();
  const proc = spawn(
    binary,
    [
      "signalr",
      "--port",
      String(port),
      "--access-key",
      KEY,
      "--access-key",
      KEY2,
      "--upstream",
      `http://127.0.0.1:${upstream.port}/runtime/{hub}/{category}/{event}`,
    ],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } },
  );
  const connectionString = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("Endpoint="));
      if (line) resolve(line.trim());
    });
    proc.on("exit", (code) => reject(new Error(`meschain signalr exited with ${code}`)));
    setTimeout(() => reject(new Error("no connection string within 30 s")), 30000).unref();
  });
  assert.equal(connectionString, `Endpoint=http://localhost;Port=${port};AccessKey=${KEY};Version=1.0;`);
  service = { proc, port, connectionString };
  app = await startAppNegotiate(connectionString);
});

after(async () => {
  app?.proc.kill("SIGTERM");
  upstream?.server.close();
  if (service) {
    const exited = new Promise((resolve) => service.proc.on("exit", resolve));
    service.proc.kill("SIGTERM");
    const code = await exited;
    assert.equal(code, 0, "meschain signalr should exit cleanly on SIGTERM");
  }
});

// ---- tests ---------------------------------------------------------------------------------

const combos = [
  ["WebSockets", signalR.HttpTransportType.WebSockets, "json"],
  ["WebSockets", signalR.HttpTransportType.WebSockets, "messagepack"],
  ["ServerSentEvents", signalR.HttpTransportType.ServerSentEvents, "json"],
  ["LongPolling", signalR.HttpTransportType.LongPolling, "json"],
  ["LongPolling", signalR.HttpTransportType.LongPolling, "messagepack"],
];

for (const [name, transport, protocol] of combos) {
  test(`${name} + ${protocol}: REST sends, exclusion, groups, invoke through upstream, close with reason`, async () => {
    const user = `user-${name}-${protocol}`;
    const c = await connect(user, transport, protocol);
    const id = c.connection.connectionId;
    assert.match(id, /^[A-Za-z0-9_-]{22}$/);

    // Send to all, user, connection.
    assert.equal(await rest("POST", `/api/hubs/${HUB}/:send?${V}`, { target: "msg", arguments: [`all-${id}`] }), 202);
    await c.waitFor(`all-${id}`);
    assert.equal(await rest("POST", `/api/hubs/${HUB}/users/${user}/:send?${V}`, { Target: "msg", Arguments: ["to-user"] }), 202);
    await c.waitFor("to-user");
    assert.equal(await rest("POST", `/api/hubs/${HUB}/connections/${id}/:send?${V}`, { target: "msg", arguments: ["to-conn"] }), 202);
    await c.waitFor("to-conn");

    // Excluded from a broadcast: the marker sent after it arrives, the excluded message does not.
    await rest("POST", `/api/hubs/${HUB}/:send?${V}&excluded=${id}`, { target: "msg", arguments: ["excluded"] });
    await rest("POST", `/api/hubs/${HUB}/connections/${id}/:send?${V}`, { target: "msg", arguments: ["marker-1"] });
    await c.waitFor("marker-1");
    assert.ok(!c.received.includes("excluded"));

    // Join a group, receive a group send, leave, stop receiving.
    const group = `g-${id}`;
    assert.equal(await rest("PUT", `/api/hubs/${HUB}/groups/${group}/connections/${id}?${V}`), 200);
    assert.equal(await rest("POST", `/api/hubs/${HUB}/groups/${group}/:send?${V}`, { target: "msg", arguments: ["to-group"] }), 202);
    await c.waitFor("to-group");
    assert.equal(await rest("DELETE", `/api/hubs/${HUB}/groups/${group}/connections/${id}?${V}`), 200);
    assert.equal(await rest("HEAD", `/api/hubs/${HUB}/groups/${group}?${V}`), 404);
    await rest("POST", `/api/hubs/${HUB}/groups/${group}/:send?${V}`, { target: "msg", arguments: ["after-leave"] });
    await rest("POST", `/api/hubs/${HUB}/connections/${id}/:send?${V}`, { target: "msg", arguments: ["marker-2"] });
    await c.waitFor("marker-2");
    assert.ok(!c.received.includes("after-leave"));

    // invoke() reaches the upstream with the right headers, body and signature; its result returns.
    const before = upstream.requests.length;
    const result = await c.connection.invoke("echo", "hi", 42);
    assert.deepEqual(result, { echo: ["hi", 42], user });
    const call = upstream.requests.slice(before).find((r) => r.headers["x-asrs-event"] === "echo");
    assert.ok(call, "upstream saw the invocation");
    assert.equal(call.url, `/runtime/${HUB}/messages/echo`);
    assert.equal(call.headers["x-asrs-connection-id"], id);
    assert.equal(call.headers["x-asrs-hub"], HUB);
    assert.equal(call.headers["x-asrs-category"], "messages");
    assert.equal(call.headers["x-asrs-user-id"], user);
    assert.match(call.headers["x-asrs-user-claims"], new RegExp(`asrs\\.s\\.uid: ${user}`));
    const expected = [KEY, KEY2]
      .map((k) => "sha256=" + createHmac("sha256", Buffer.from(k, "utf8")).update(id).digest("hex").toUpperCase())
      .join(",");
    assert.equal(call.headers["x-asrs-signature"], expected);
    if (protocol === "json") {
      assert.equal(call.headers["content-type"], "application/json");
      const body = JSON.parse(call.body.toString("utf8"));
      assert.deepEqual(body, { type: 1, invocationId: body.invocationId, target: "echo", arguments: ["hi", 42] });
      assert.equal(typeof body.invocationId, "string");
    } else {
      assert.equal(call.headers["content-type"], "application/x-msgpack");
      assert.equal(call.body[0], 0x95, "a bare 5-element msgpack array, no length prefix");
    }
    const connected = upstream.requests.find(
      (r) => r.headers["x-asrs-event"] === "connected" && r.headers["x-asrs-connection-id"] === id,
    );
    assert.ok(connected, "upstream saw connected");
    assert.equal(connected.body.toString(), '{"type":10}');

    // Closed by the service with a reason.
    assert.equal(await rest("DELETE", `/api/hubs/${HUB}/connections/${id}?${V}&reason=${encodeURIComponent("bye now")}`), 200);
    const error = await c.closed;
    assert.ok(error, "onclose got an error");
    assert.match(error.message, /bye now/);
    assert.equal(await rest("HEAD", `/api/hubs/${HUB}/connections/${id}?${V}`), 404);
  });
}

test("user groups follow the user; closeConnections closes every connection of a group", async () => {
  const user = "group-user";
  assert.equal(await rest("PUT", `/api/hubs/${HUB}/users/${user}/groups/team?${V}&ttl=60`), 200);
  const a = await connect(user, signalR.HttpTransportType.WebSockets, "json");
  const b = await connect(user, signalR.HttpTransportType.LongPolling, "messagepack");
  assert.equal(await rest("HEAD", `/api/hubs/${HUB}/users/${user}/groups/team?${V}`), 200);
  await rest("POST", `/api/hubs/${HUB}/groups/team/:send?${V}`, { target: "msg", arguments: ["team"] });
  await a.waitFor("team");
  await b.waitFor("team");
  assert.equal(await rest("POST", `/api/hubs/${HUB}/groups/team/:closeConnections?${V}&reason=done`), 204);
  assert.match((await a.closed).message, /done/);
  assert.match((await b.closed).message, /done/);
});
