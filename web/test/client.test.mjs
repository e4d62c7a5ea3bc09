import test from "node:test";
import assert from "node:assert/strict";
import * as c from "../src/lib/client.js";

test("the sync operations offered are the ones negotiate's answer lists", () => {
  assert.deepEqual(c.syncOperationsFromNegotiate(JSON.stringify({ url: "u", syncOperations: ["orders"] })), ["orders"]);
  assert.deepEqual(c.syncOperationsFromNegotiate(JSON.stringify({ url: "u", syncOperations: [] })), []);
  assert.equal(c.syncOperationsFromNegotiate(JSON.stringify({ connectionId: "abc" })), null);
  assert.equal(c.syncOperationsFromNegotiate("not json"), null);
});

test("the hub is the one negotiate's answer names, whatever its case", () => {
  const answer = (url) => JSON.stringify({ url, accessToken: "t" });
  assert.equal(c.hubFromNegotiate(answer("http://localhost:1/client/?hub=meschainadminhub")), c.HUBS.admin);
  assert.equal(c.hubFromNegotiate(answer("https://x.service.signalr.net/client/?hub=MesChainMarketplaceHub")), c.HUBS.marketplace);
  assert.equal(c.hubFromNegotiate(answer("https://x/client/?hub=meschaindashboardhub&asrs.op=%2Fclient")), c.HUBS.dashboard);
  // The service's own negotiate (after the redirect), another hub, or no JSON: nothing learnt.
  assert.equal(c.hubFromNegotiate(JSON.stringify({ connectionId: "abc", negotiateVersion: 1 })), null);
  assert.equal(c.hubFromNegotiate(answer("https://x/client/?hub=otherhub")), null);
  assert.equal(c.hubFromNegotiate("not json"), null);
});

test("each hub rejoins its groups, admins ask for a snapshot at once", () => {
  assert.deepEqual(c.groupJoinsFor(c.HUBS.admin), [["JoinAdminGroup"], ["HandleAdminCommand", "requestDashboardUpdate", {}]]);
  assert.equal(c.groupJoinsFor(c.HUBS.marketplace).length, 6);
  assert.deepEqual(c.groupJoinsFor(c.HUBS.marketplace)[0], ["JoinMarketplaceGroup", "trendyol"]);
  assert.deepEqual(c.groupJoinsFor(c.HUBS.dashboard), [["SubscribeToDashboard", c.DASHBOARD_METRICS]]);
});

test("backoff: first retry at once, then exponential with jitter, capped", () => {
  const lo = { random: () => 0 };
  const hi = { random: () => 1 };
  assert.equal(c.backoffDelay(0, hi), 0);
  assert.equal(c.backoffDelay(1, lo), 500);
  assert.equal(c.backoffDelay(1, hi), 1000);
  assert.equal(c.backoffDelay(3, hi), 4000);
  assert.equal(c.backoffDelay(10, hi), 30_000);
  assert.equal(c.backoffDelay(10, lo), 15_000);
  assert.equal(c.backoffDelay(1000, hi), 30_000, "no overflow on long outages");
  for (let i = 0; i < 50; i++) {
    const d = c.backoffDelay(i, { capMs: 8000 });
    assert.ok(d >= 0 && d <= 8000, `${d}`);
  }
});

test("failures are classified so the page can act on them", () => {
  const err = new Error("Failed to complete negotiation with the server: Error: ...");
  assert.deepEqual(c.classifyFailure(err, { status: 401, body: '{"error":"the token has expired"}' }), {
    kind: "unauthorized",
    status: 401,
    message: "the token has expired",
  });
  assert.equal(c.classifyFailure(err, { status: 403, body: "" }).kind, "forbidden");
  assert.equal(c.classifyFailure(err, { status: 503, body: "identity provider unreachable" }).message, "identity provider unreachable");
  assert.deepEqual(c.classifyFailure(new Error("Failed to complete negotiation with the server: TypeError: Failed to fetch"), null), {
    kind: "network",
    message: "the realtime service cannot be reached",
  });
  assert.equal(c.networkMessage(new Error("Failed to complete negotiation with the server: Error: odd")), "Error: odd");
  assert.equal(c.classifyFailure(new c.SignInRequiredError(), null).kind, "unauthorized");
});

test("server messages are read from JSON or text and kept short", () => {
  assert.equal(c.serverMessage('{"error":"nope"}', "x"), "nope");
  assert.equal(c.serverMessage("", "fallback"), "fallback");
  assert.equal(c.serverMessage(`{"error":"invalid_token","message":"the signing keys could not be loaded"}: Status code '401'`, "f"), "the signing keys could not be loaded");
  assert.equal(c.serverMessage("Unauthorized: Status code '401'", "f"), "Unauthorized");
  assert.equal(c.serverMessage(": Status code '503'", "f"), "f");
  assert.equal(c.serverMessage("x".repeat(400), "f").length, 301);
  assert.equal(c.hubErrorMessage(new Error("An unexpected error occurred invoking 'X' on the server. HubException: Unknown marketplace")), "Unknown marketplace");
  assert.equal(c.hubErrorMessage(new Error("Alert level must be one of info, warning")), "Alert level must be one of info, warning");
});

test("the client refuses unknown events", async () => {
  const signalR = await import("@microsoft/signalr");
  const client = new c.MesChainClient({ signalR, getToken: async () => "t", apiBase: "http://127.0.0.1:1/api/" });
  assert.equal(client.hub, null, "the hub is known only once negotiate has answered");
  assert.throws(() => client.on("notAnEvent", () => {}));
  const off = client.on("systemAlert", () => {});
  off();
  await assert.rejects(client.invoke("JoinAdminGroup"), /Not connected/);
});

test("negotiate's catalogue and connector modes are read, and absent ones are null", async () => {
  const { syncSetupFromNegotiate } = await import("../src/lib/client.js");
  const body = JSON.stringify({ url: "x", accessToken: "t", catalog: { configured: false, reason: "why" }, connectors: { trendyol: "live" } });
  assert.deepEqual(syncSetupFromNegotiate(body), { catalog: { configured: false, reason: "why" }, connectors: { trendyol: "live" } });
  assert.equal(syncSetupFromNegotiate(JSON.stringify({ url: "x" })), null);
  assert.equal(syncSetupFromNegotiate("not json"), null);
});
