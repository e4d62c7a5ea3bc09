import test from "node:test";
import assert from "node:assert/strict";
import { Auth, decodeJwt, isExpired, parseConfig, rolesOf, sessionFromToken } from "../src/lib/auth.js";
import { SignInRequiredError } from "../src/lib/client.js";

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const token = (claims) => `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
const now = () => Math.floor(Date.now() / 1000);

class MemoryStorage {
  items = new Map();
  getItem(k) {
    return this.items.get(k) ?? null;
  }
  setItem(k, v) {
    this.items.set(k, String(v));
  }
  removeItem(k) {
    this.items.delete(k);
  }
}

test("config: defaults, OIDC and dev sign-in, every problem named", () => {
  assert.deepEqual(parseConfig({}), { apiBase: "/api" });
  const c = parseConfig({ oidc: { authority: "https://login.example/tenant/v2.0", clientId: "abc" }, devSignIn: "/dev/token" });
  assert.equal(c.oidc.scope, "openid profile");
  assert.equal(c.oidc.token, "access_token");
  assert.equal(c.devSignIn, "/dev/token");
  assert.throws(() => parseConfig({ apiBase: 5, oidc: { authority: "ftp://x", clientId: "" } }), (e) => {
    assert.match(e.message, /apiBase/);
    assert.match(e.message, /oidc.authority/);
    assert.match(e.message, /oidc.clientId/);
    return true;
  });
});

test("JWT claims and roles are read as the handler reads them", () => {
  const t = token({ sub: "alice", roles: ["admin", "admin", ""], role: "viewer", exp: 2_000_000_000, name: "Alice Ö" });
  assert.equal(decodeJwt(t).name, "Alice Ö");
  assert.deepEqual(rolesOf(decodeJwt(t)), ["admin", "viewer"]);
  assert.deepEqual(rolesOf({ roles: "viewer" }), ["viewer"]);
  assert.deepEqual(rolesOf({ roles: 5 }), []);
  const s = sessionFromToken(t, "dev");
  assert.equal(s.user, "Alice Ö");
  assert.equal(s.expiresAt, 2_000_000_000_000);
  assert.throws(() => decodeJwt("nope"));
  assert.throws(() => sessionFromToken(token({ roles: [] }), "dev"), /no user/);
});

test("dev sign-in stores the token; an expired one asks to sign in again", async () => {
  const storage = new MemoryStorage();
  let sent;
  const fetch = async (url, init) => {
    sent = [url, JSON.parse(init.body)];
    return new Response(JSON.stringify({ token: token({ sub: "bob", roles: ["viewer"], exp: now() + 3600 }) }), { status: 200 });
  };
  const auth = new Auth(parseConfig({ devSignIn: "/dev/token" }), { storage, fetch, location: { origin: "http://x", pathname: "/", search: "" } });
  assert.equal(auth.canUseOidc, false);
  assert.equal(await auth.session(), null);
  await assert.rejects(auth.freshToken(), SignInRequiredError);
  const s = await auth.signInDev("bob", "viewer");
  assert.deepEqual(sent, ["/dev/token", { user: "bob", roles: ["viewer"] }]);
  assert.deepEqual(s.roles, ["viewer"]);
  assert.equal((await auth.session()).user, "bob");
  assert.equal(await auth.freshToken(), s.token);
  storage.setItem("meschain.devSession", token({ sub: "bob", roles: ["viewer"], exp: now() + 10 }));
  assert.ok(isExpired(await auth.session()), "inside the expiry margin counts as expired");
  await assert.rejects(auth.freshToken(), /expired/);
  await auth.signOut();
  assert.equal(await auth.session(), null);
});

test("dev sign-in errors carry the server's words; no dev sign-in without config", async () => {
  const fetch = async () => new Response('{"error":"the user id must not be empty"}', { status: 400 });
  const auth = new Auth(parseConfig({ devSignIn: "/dev/token" }), { storage: new MemoryStorage(), fetch, location: { origin: "", pathname: "/", search: "" } });
  await assert.rejects(auth.signInDev("", "admin"), /must not be empty/);
  const deployed = new Auth(parseConfig({}), { storage: new MemoryStorage(), fetch, location: { origin: "", pathname: "/", search: "" } });
  assert.equal(deployed.canUseDev, false);
  await assert.rejects(deployed.signInDev("a", "admin"), /not available/);
});
