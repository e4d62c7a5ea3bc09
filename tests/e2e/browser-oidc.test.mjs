// Signing in for real: the dashboard in Chromium signs in against a real OpenID provider
// (oidc-provider from npm) with authorization code + PKCE, and the handler, trusting that
// provider through AUTH_OIDC_ISSUER alone (no development secret), accepts the access token at
// negotiate: the page goes live.

import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { appRootWith, startDev } from "./support/stack.mjs";
import { launch, open, waitForConnection } from "./support/browser.mjs";
import { serveDashboard } from "./support/web.mjs";
import { CLIENT_ID, RESOURCE, startProvider } from "./support/oidc.mjs";

let provider;
let appRoot;
let stack;
let web;
let browser;

before(async () => {
  provider = await startProvider({ olivia: ["admin"], victor: ["viewer"] });
  web = await serveDashboard({
    api: () => stack.base,
    config: { apiBase: "/api", oidc: { authority: provider.issuer, clientId: CLIENT_ID, scope: "openid profile", resource: RESOURCE } },
  });
  // The provider answers before the handler that trusts it starts.
  provider.configure([`${web.base}/`]);
  // An app root like ours whose settings trust only the OpenID provider.
  appRoot = appRootWith({ AUTH_JWT_SECRET: "", AUTH_OIDC_ISSUER: provider.issuer, AUTH_ISSUER: "", AUTH_AUDIENCE: RESOURCE });
  stack = await startDev({ appRoot });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await web?.close();
  await stack?.stop();
  await provider?.close();
  if (appRoot) rmSync(appRoot, { recursive: true, force: true });
});

async function signInWithProvider(tab, login) {
  const { page } = tab;
  await page.locator("#sign-in-oidc").click();
  await page.waitForURL((u) => u.href.startsWith(provider.issuer), { timeout: 10_000 });
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any");
  await tab.screenshot("provider-login");
  await page.click('button[type="submit"]');
  // The consent page of the development interactions.
  await page.locator('button[type="submit"]', { hasText: "Continue" }).click();
  await page.waitForURL((u) => u.href.startsWith(web.base), { timeout: 10_000 });
}

test("OIDC sign-in with PKCE: the provider's token is accepted at negotiate and the page goes live", async () => {
  const tab = await open(browser, web.base, "oidc-admin");
  const { page } = tab;
  try {
    await page.locator("#sign-in-oidc").waitFor({ state: "visible" });
    assert.equal(await page.locator("#dev-sign-in").isVisible(), false, "no development sign-in without devSignIn in config");
    const authorize = page.waitForRequest((r) => r.url().startsWith(`${provider.issuer}/auth`));
    await tab.page.locator("#sign-in-oidc").waitFor();
    const signingIn = signInWithProvider(tab, "olivia");
    const query = new URL((await authorize).url()).searchParams;
    assert.equal(query.get("response_type"), "code");
    assert.equal(query.get("code_challenge_method"), "S256", "PKCE");
    assert.ok(query.get("code_challenge")?.length >= 43);
    assert.equal(query.get("resource"), RESOURCE);
    await signingIn;
    await waitForConnection(page, "connected");
    assert.equal(await page.locator("#who-name").textContent(), "olivia");
    // The admin figures come over the admin hub, which negotiate chose from the token's roles.
    await page.locator("#admin-figures").waitFor({ state: "visible", timeout: 10_000 });
    assert.equal(new URL(page.url()).search, "", "the authorization code is not left in the address bar");
    assert.deepEqual(provider.issued.at(-1), { sub: "olivia", roles: ["admin"] });
    await tab.screenshot("connected");
    assert.deepEqual(tab.errors, []);
  } catch (e) {
    await tab.screenshot("failed");
    throw e;
  } finally {
    await tab.close();
  }
});

test("OIDC sign-in of a dashboard-only user: live, without admin actions", async () => {
  const tab = await open(browser, web.base, "oidc-viewer");
  const { page } = tab;
  try {
    await signInWithProvider(tab, "victor");
    await waitForConnection(page, "connected");
    assert.equal(await page.locator("#actions").isVisible(), false);
    assert.equal(await page.locator("#admin-figures").isVisible(), false);
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});
