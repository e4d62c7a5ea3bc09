// The local stack for end-to-end tests: `meschain dev` (local Functions host, the real
// `handler`, the local SignalR service) on free ports, login tokens from the example settings,
// official @microsoft/signalr connections through our real `negotiate`, and REST calls to the
// local SignalR service.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const settings = JSON.parse(readFileSync(path.join(root, "local.settings.example.json"), "utf8")).Values;

const b64url = (data) => Buffer.from(data).toString("base64url");

export function jwt(payload, key) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(payload));
  const sig = createHmac("sha256", Buffer.from(key, "utf8")).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${sig}`;
}

/** A login token as our identity provider would issue it (HS256, example settings). */
export function loginToken(sub, roles) {
  const now = Math.floor(Date.now() / 1000);
  return jwt(
    { sub, roles, iss: settings.AUTH_ISSUER, aud: settings.AUTH_AUDIENCE, iat: now, exp: now + 3600 },
    settings.AUTH_JWT_SECRET,
  );
}

/**
 * An app root beside the repository's: its host.json and function folders (linked) and the
 * example settings with `overrides` as local.settings.json; the embedded store lives inside it.
 * Remove it with rmSync when done.
 */
export function appRootWith(overrides = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "meschain-app-"));
  for (const name of readdirSync(root)) {
    const p = path.join(root, name);
    if (name === "host.json" || (statSync(p).isDirectory() && readdirSync(p).includes("function.json"))) {
      symlinkSync(p, path.join(dir, name));
    }
  }
  const file = JSON.parse(readFileSync(path.join(root, "local.settings.example.json"), "utf8"));
  Object.assign(file.Values, { MESCHAIN_DATA_DIR: path.join(dir, "store"), ...overrides });
  writeFileSync(path.join(dir, "local.settings.json"), JSON.stringify(file, null, 2));
  return dir;
}

/**
 * Starts `meschain dev` and resolves once it reports ready. `appRoot` runs another app root
 * (e.g. one with different settings); the handler and binaries are always this checkout's.
 * `env` adds environment (e.g. store settings), `dataDir` reuses a data folder (e.g. across a
 * restart) and `keepData` leaves it on stop.
 */
export async function startDev({ appRoot = root, env = {}, dataDir: givenDir, keepData = false } = {}) {
  // Benchmarks set MESCHAIN_PROFILE=release; tests use the debug build `cargo build` made.
  const profile = process.env.MESCHAIN_PROFILE ?? "debug";
  const dataDir = givenDir ?? mkdtempSync(path.join(tmpdir(), "meschain-e2e-"));
  const proc = spawn(
    path.join(root, "target", profile, "meschain"),
    ["dev", "--app-root", appRoot, "--port", "0", "--data-dir", dataDir, "--handler", path.join(root, "target", profile, "handler")],
    { env: { ...process.env, RUST_LOG: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output = [];
  const info = await new Promise((resolve, reject) => {
    const found = {};
    const timer = setTimeout(() => reject(new Error(`meschain dev not ready:\n${output.join("\n")}`)), 30_000);
    const onLine = (line) => {
      output.push(line);
      let m;
      if ((m = line.match(/function key:\s+(\S+)/))) found.functionKey = m[1];
      if ((m = line.match(/SignalR:\s+local service on http:\/\/localhost:(\d+) \((.*)\)$/))) {
        found.signalrPort = Number(m[1]);
        found.signalrKey = m[2].match(/AccessKey=([^;]+)/)[1];
      }
      if ((m = line.match(/Ready in \d+ ms \(listening on 127\.0\.0\.1:(\d+)\)/))) {
        clearTimeout(timer);
        resolve({ ...found, port: Number(m[1]) });
      }
    };
    for (const stream of [proc.stdout, proc.stderr]) {
      let buf = "";
      stream.on("data", (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    proc.on("exit", (code) => reject(new Error(`meschain dev exited with ${code}:\n${output.join("\n")}`)));
  });
  const base = `http://127.0.0.1:${info.port}`;
  return {
    ...info,
    base,
    output,
    pid: proc.pid,
    async stop() {
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.kill("SIGTERM");
      await exited;
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
    /** A REST call to the local SignalR service, token audience = the request URL (SDK style). */
    async rest(method, pathAndQuery, body) {
      const now = Math.floor(Date.now() / 1000);
      const token = jwt({ nbf: now, exp: now + 600, iat: now, aud: `http://localhost${pathAndQuery}` }, info.signalrKey);
      const res = await fetch(`http://localhost:${info.signalrPort}${pathAndQuery}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      await res.arrayBuffer();
      return res.status;
    },
    /** Messages of the local queue, active and dead-lettered. */
    async queue(name) {
      const get = async (what) => (await fetch(`${base}/admin/queues/${name}/${what}`)).json();
      return [...(await get("messages")), ...(await get("deadletters"))];
    },
  };
}

/**
 * Connects through our `negotiate` (`{base}/api/negotiate`) with a login token, as a browser
 * would. `received` collects [target, ...args] of every message for the listed targets.
 */
export async function connect(stack, { user, roles, hub, transport, protocol, targets = [] }) {
  const token = loginToken(user, roles);
  const url = `${stack.base}/api${hub ? `?hub=${hub}` : ""}`;
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, { accessTokenFactory: () => token, ...(transport ? { transport } : {}) })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  const received = [];
  const waiters = [];
  for (const target of targets) {
    connection.on(target, (...args) => {
      received.push([target, ...args]);
      for (const w of waiters.splice(0)) w();
    });
  }
  await connection.start();
  return {
    connection,
    received,
    invoke: (...args) => connection.invoke(...args),
    /** Resolves with the first message (of `target`) matching `pred`, or rejects after `ms`. */
    async next(target, pred = () => true, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = received.find(([t, ...args]) => t === target && pred(...args));
        if (hit) return hit.slice(1);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${target} within ${ms} ms; got ${JSON.stringify(received)}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, Math.min(left, 200));
        });
      }
    },
    stop: () => connection.stop(),
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
