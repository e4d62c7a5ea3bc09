// The Node peer of bench/negotiate.sh: the same negotiate work as the handler's forwarded
// POST /api/negotiate, written the way a Node team would (node:http under `cluster`, fast-jwt),
// so the benchmark can report a ratio that survives a busy machine.
//
// Per request, as the handler does: Bearer token from Authorization; HS256 verified with the
// login secret, `iss` and `aud` required and compared, `exp` required and enforced, `nbf` checked
// (30 s leeway); `sub` non-empty; roles from `roles` (array) or `role`; the hub chosen by role;
// a SignalR client token minted with the access key (claims `asrs.s.uid`, `nameid`, `role`,
// `nbf`, `exp`, `iat`, `aud` = `<endpoint>/client/?hub=<hub>`), answered as {url, accessToken}
// with `Cache-Control: no-store` and CORS headers for an allowed origin; one log line.
//
// Usage: node server.mjs PORT WORKERS   (settings from the environment, as the handler reads them)
import cluster from "node:cluster";
import http from "node:http";
import { createSigner, createVerifier } from "fast-jwt";

const port = Number(process.argv[2] ?? 0);
const workers = Number(process.argv[3] ?? 2);

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  let ready = 0;
  cluster.on("listening", () => {
    if (++ready === workers) process.stdout.write(`listening ${port}\n`);
  });
  cluster.on("exit", (w, code) => {
    if (code !== 0) process.exit(1);
  });
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  const env = process.env;
  const cs = Object.fromEntries(
    env.AzureSignalRConnectionString.split(";")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")).toLowerCase(), kv.slice(kv.indexOf("=") + 1)]),
  );
  const endpoint = new URL(cs.endpoint);
  if (cs.port) endpoint.port = cs.port;
  const clientBase = endpoint.href.endsWith("/") ? endpoint.href : `${endpoint.href}/`;
  const audienceBase = `${endpoint.protocol}//${endpoint.hostname}/`;
  const lifetime = Number(env.SIGNALR_TOKEN_LIFETIME_SECONDS || 3600);
  const origins = new Set((env.CORS_ALLOWED_ORIGINS || "").split(",").map((o) => o.trim()).filter(Boolean));

  const verify = createVerifier({
    key: env.AUTH_JWT_SECRET,
    algorithms: ["HS256"],
    allowedIss: env.AUTH_ISSUER,
    allowedAud: env.AUTH_AUDIENCE,
    requiredClaims: ["exp", "iss", "aud"],
    clockTolerance: 30_000,
    cache: false,
  });
  const sign = createSigner({ key: cs.accesskey, algorithm: "HS256" });

  const hubFor = (roles) => {
    if (roles.includes("super_admin") || roles.includes("admin")) return "MesChainAdminHub";
    if (roles.includes("marketplace_manager")) return "MesChainMarketplaceHub";
    return "MesChainDashboardHub";
  };
  const unsafe = (s) => /[\u0000-\u001f\u007f]/.test(s) || s.includes(", ");

  const answer = (req, res, status, body) => {
    const headers = { "content-type": "application/json", "cache-control": "no-store" };
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      headers["access-control-allow-origin"] = origin;
      headers["access-control-allow-credentials"] = "true";
      headers.vary = "Origin";
    }
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  };

  http
    .createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.method !== "POST" || !req.url.startsWith("/api/negotiate")) {
          return answer(req, res, 405, { error: "method_not_allowed" });
        }
        const auth = req.headers.authorization || "";
        if (!auth.startsWith("Bearer ")) return answer(req, res, 401, { error: "missing_credential" });
        let claims;
        try {
          claims = verify(auth.slice(7));
        } catch (e) {
          return answer(req, res, 401, { error: "invalid_token" });
        }
        const sub = typeof claims.sub === "string" ? claims.sub : "";
        if (!sub.trim()) return answer(req, res, 401, { error: "no_user_id" });
        const roles = [];
        for (const c of [claims.roles, claims.role]) {
          for (const r of Array.isArray(c) ? c : c === undefined ? [] : [c]) {
            if (typeof r === "string" && r && !roles.includes(r)) roles.push(r);
          }
        }
        if (unsafe(sub) || roles.some(unsafe)) return answer(req, res, 400, { error: "unrepresentable_identity" });
        const hub = hubFor(roles).toLowerCase();
        const now = Math.floor(Date.now() / 1000);
        const payload = { "asrs.s.uid": sub, nameid: sub };
        if (roles.length) payload.role = roles.length === 1 ? roles[0] : roles;
        Object.assign(payload, { nbf: now, exp: now + lifetime, iat: now, aud: `${audienceBase}client/?hub=${hub}` });
        const accessToken = sign(payload);
        process.stdout.write(`negotiated ${hub} for user ${sub}\n`);
        answer(req, res, 200, { url: `${clientBase}client/?hub=${hub}`, accessToken });
      });
    })
    .listen(port, "127.0.0.1");
}
