// Serves the built dashboard (web/dist) for the browser tests on a free loopback port, with
// its config.json, and forwards /api/* to the Functions host under test, so the page calls
// negotiate on its own origin as it does when deployed beside the API.
//
// `devSignIn` adds the development "sign in as" endpoint the local stack offers
// (POST {"user", "roles"} → {"token", "expiresAt"}), minting tokens with `mint`.

import { createServer, request as httpRequest } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { root } from "./stack.mjs";

export const dist = path.join(root, "web", "dist");
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".map": "application/json", ".png": "image/png" };

/**
 * @param {object} o
 * @param {string | (() => string)} o.api Base URL of the Functions host (e.g. http://127.0.0.1:PORT), or a
 *   function giving it, when the host starts after the page server.
 * @param {object} o.config The config.json to serve.
 * @param {(user: string, roles: string[]) => string} [o.mint] Enables /dev/token.
 */
export async function serveDashboard({ api, config, mint }) {
  if (!existsSync(path.join(dist, "index.html"))) throw new Error("web/dist is not built: run `npm ci && npm run build` in web/");
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname.startsWith("/api/")) {
      const target = new URL(typeof api === "function" ? api() : api);
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        },
      );
      upstream.on("error", () => {
        res.writeHead(502).end();
      });
      req.pipe(upstream);
      return;
    }
    if (url.pathname === "/config.json") {
      res.writeHead(200, { "content-type": TYPES[".json"], "cache-control": "no-store" }).end(JSON.stringify(config));
      return;
    }
    if (url.pathname === "/dev/token" && mint) {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        try {
          const { user, roles } = JSON.parse(body);
          if (typeof user !== "string" || user.trim() === "") throw new Error("the user id must not be empty");
          const token = mint(user, Array.isArray(roles) ? roles : []);
          res.writeHead(200, { "content-type": TYPES[".json"] }).end(JSON.stringify({ token }));
        } catch (e) {
          res.writeHead(400, { "content-type": TYPES[".json"] }).end(JSON.stringify({ error: e.message }));
        }
      });
      return;
    }
    const file = path.join(dist, url.pathname === "/" ? "index.html" : path.normalize(url.pathname));
    if (!file.startsWith(dist) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}
