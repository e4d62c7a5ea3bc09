// The local fake Key Vault (crates/fake-keyvault) for end-to-end tests: started on free
// loopback ports, its CA written to a temporary file, controlled over its HTTP control API,
// stopped after. `env()` is what a process needs to read it through managed identity with
// every production check on (the CA is only added as a root; vault hosts are sent to its port).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { root } from "./stack.mjs";

export async function startVault(secrets = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "meschain-kv-"));
  const args = ["--ca-file", path.join(dir, "ca.pem")];
  const proc = spawn(path.join(root, "target", "debug", "fake-keyvault"), args, { stdio: ["pipe", "pipe", "inherit"] });
  const info = await new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      const i = buf.indexOf("\n");
      if (i >= 0) resolve(JSON.parse(buf.slice(0, i)));
    });
    proc.on("exit", (code) => reject(new Error(`fake-keyvault exited with ${code}`)));
  });
  const control = async (method, p, body) => {
    const res = await fetch(`${info.control}${p}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`fake vault ${method} ${p}: ${res.status}`);
    return res.status === 204 ? null : res.json();
  };
  const vault = {
    ...info,
    /** A new latest version of `name` (a rotation when it existed); resolves to its version id. */
    setSecret: async (name, value) => (await control("PUT", `/secrets/${name}`, { value })).version,
    disable: (name) => control("POST", `/secrets/${name}/disable`),
    fault: (fault) => control("POST", "/faults", fault),
    clearFaults: () => control("DELETE", "/faults"),
    stats: () => control("GET", "/stats"),
    /** `@Microsoft.KeyVault(...)` for a secret of this vault. */
    reference: (name) => `@Microsoft.KeyVault(VaultName=myvault;SecretName=${name})`,
    env: () => ({
      IDENTITY_ENDPOINT: info.identityEndpoint,
      IDENTITY_HEADER: info.identityHeader,
      SECRETS_VAULT_ADDRESS: info.address,
      SECRETS_VAULT_CA_FILE: info.caFile,
    }),
    async stop() {
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.stdin.end();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const [name, value] of Object.entries(secrets)) await vault.setSecret(name, value);
  return vault;
}
