// Builds the static site into dist/ (index.html and config.json at the top, everything else
// under assets/, so a host can serve the page beside an API with three routes): the page's own code and libraries (oidc-client-ts, uPlot)
// bundled and minified by esbuild, the official SignalR browser build copied as shipped, and
// config.json. Nothing is fetched at run time from anywhere but the page's own origin.
//
//   node build.mjs                      config.json = {"apiBase": "/api"} (no sign-in configured)
//   node build.mjs --config FILE        config.json = FILE, validated (a deployment's OIDC settings)
//
// `meschain dev` answers /config.json itself (with its development sign-in), so the local stack
// needs no config file.

import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "./src/lib/auth.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "dist");
const args = process.argv.slice(2);
const configArg = args.indexOf("--config");

let config = { apiBase: "/api" };
if (configArg >= 0) {
  const file = args[configArg + 1];
  if (!file) throw new Error("--config needs a file");
  config = JSON.parse(readFileSync(file, "utf8"));
  parseConfig(config); // fails the build on a bad config, not the page at run time
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(path.join(dist, "assets", "vendor"), { recursive: true });

await build({
  entryPoints: { app: path.join(here, "src/app.js") },
  bundle: true,
  format: "esm",
  // Libraries only some users need (OIDC, charts) are split into chunks loaded on demand.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  target: ["es2022"],
  minify: true,
  sourcemap: "linked",
  outdir: path.join(dist, "assets"),
  logLevel: "warning",
  // CSS imports resolve from node_modules (uPlot's stylesheet).
  entryNames: "[name]",
});
await build({
  entryPoints: { app: path.join(here, "src/app.css") },
  bundle: true,
  minify: true,
  outdir: path.join(dist, "assets"),
  logLevel: "warning",
});
const signalr = path.join(here, "node_modules/@microsoft/signalr/dist/browser");
for (const f of ["signalr.min.js", "signalr.min.js.map"]) copyFileSync(path.join(signalr, f), path.join(dist, "assets", "vendor", f));
copyFileSync(path.join(here, "src/index.html"), path.join(dist, "index.html"));
writeFileSync(path.join(dist, "config.json"), `${JSON.stringify(config, null, 2)}\n`);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
const scripts = files(dist).filter((f) => f.endsWith(".js"));
const own = scripts.filter((f) => !f.includes("vendor"));
const total = (list) => list.reduce((sum, f) => sum + statSync(f).size, 0);
console.log(
  `web/dist: ${scripts.map((f) => `${path.relative(dist, f)} ${kb(statSync(f).size)}`).join(", ")}; script excluding SignalR ${kb(total(own))} (budget 200 KB)`,
);
if (total(own) > 200 * 1024) throw new Error("the page's own script is over its 200 KB budget");
