// A marketplace fake's binary (`fake-ozon`, `fake-ebay`, ...) started on a free port: it prints one JSON line with
// its base URL, answers `/_fake/stats` and `/_fake/faults`, and stops on SIGTERM.

import { spawn } from "node:child_process";
import path from "node:path";
import { root } from "./stack.mjs";

export async function startFake(name, args = []) {
  const proc = spawn(path.join(root, "target", "debug", name), ["--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      const i = buf.indexOf("\n");
      if (i >= 0) resolve(buf.slice(0, i));
    });
    proc.on("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  const info = JSON.parse(line);
  const origin = new URL(info.baseUrl).origin;
  return {
    ...info,
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
