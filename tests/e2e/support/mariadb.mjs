// A real MariaDB server for an end-to-end test (Debian's `mariadb-server`), as the Rust catalogue tests start
// one (crates/marketplace/tests/support/mariadb.rs): a fresh data folder, a free loopback port, TLS required with
// a certificate made here (its CA is what the handler trusts, through CATALOG_MYSQL_CA_FILE), OpenCart's tables
// from tests/fixtures/opencart/schema.sql in database `opencart`, and a read-only user.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { root, sleep } from "./stack.mjs";

export const DATABASE = "opencart";
const READER = "catalog_reader";
const READER_PASSWORD = "reader-pw-not-a-secret";

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function certificates(dir) {
  const p = (f) => path.join(dir, f);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=meschain e2e CA", "-keyout", p("ca-key.pem"), "-out", p("ca.pem"));
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", p("server-key.pem"), "-out", p("server.csr"));
  writeFileSync(p("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("x509", "-req", "-days", "2", "-CAcreateserial", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca-key.pem"), "-out", p("server-cert.pem"), "-extfile", p("san.ext"));
  return p("ca.pem");
}

export async function startMariaDb() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "meschain-mariadb-"));
  const f = (name) => path.join(dir, name);
  const user = os.userInfo().username;
  // Temporary tables in this server's own folder, not the /tmp other servers share (a bootstrap
  // beside another once failed to remove its temporary table there).
  mkdirSync(f("tmp"));
  execFileSync("mariadb-install-db", ["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db", `--datadir=${f("data")}`, `--user=${user}`], { stdio: "ignore", env: { ...process.env, TMPDIR: f("tmp") } });
  const ca = certificates(dir);
  const port = await freePort();
  const proc = spawn(
    "mariadbd",
    [
      "--no-defaults", `--datadir=${f("data")}`, `--tmpdir=${f("tmp")}`, `--port=${port}`, "--bind-address=127.0.0.1", `--socket=${f("mysqld.sock")}`,
      `--pid-file=${f("mysqld.pid")}`, `--log-error=${f("error.log")}`, `--user=${user}`, `--ssl-ca=${ca}`,
      `--ssl-cert=${f("server-cert.pem")}`, `--ssl-key=${f("server-key.pem")}`, "--require-secure-transport=ON",
      "--skip-log-bin", "--innodb-buffer-pool-size=32M",
    ],
    { stdio: "ignore" },
  );
  let exited = null;
  proc.on("exit", (code) => (exited = code));
  const sql = (text, database) => {
    const args = ["--no-defaults", "-uroot", "-N", "-B", `--socket=${f("mysqld.sock")}`, ...(database ? [database] : [])];
    const r = spawnSync("mariadb", args, { input: text, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`SQL failed: ${r.stderr}\n${text.slice(0, 300)}`);
    return r.stdout;
  };
  const db = {
    port,
    ca,
    url: `mysql://${READER}:${READER_PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    sql: (text) => sql(text, DATABASE),
    async stop() {
      if (exited === null) {
        const done = new Promise((resolve) => proc.on("exit", resolve));
        proc.kill("SIGTERM");
        await done;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (exited !== null) throw new Error(`mariadbd exited (${exited}): ${readFileSync(f("error.log"), "utf8")}`);
      if (spawnSync("mariadb", ["--no-defaults", "-uroot", `--socket=${f("mysqld.sock")}`, "-e", "SELECT 1"]).status === 0) break;
      if (Date.now() > deadline) throw new Error("mariadbd did not start in 90 s");
      await sleep(100);
    }
    sql(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
    sql(readFileSync(path.join(root, "tests/fixtures/opencart/schema.sql"), "utf8"), DATABASE);
    sql(`CREATE USER '${READER}'@'%' IDENTIFIED BY '${READER_PASSWORD}' REQUIRE SSL; GRANT SELECT ON ${DATABASE}.* TO '${READER}'@'%';`);
  } catch (e) {
    await db.stop();
    throw e;
  }
  return db;
}
