// Who the user is: a login token from the identity provider the handler trusts, by OpenID Connect
// authorization code with PKCE (oidc-client-ts), or, in the local stack only, a development token
// from `meschain dev`'s "sign in as" endpoint. Which of the two exist is decided by the config
// file served beside the page: the deployed config has no `devSignIn`, so the page shows no such
// form and has nothing to call.
//
// Tokens live in sessionStorage (per tab, gone when it closes), never in localStorage.
// Roles are read from the token only to choose the hub and hide actions the server would refuse;
// the server verifies the token and decides every permission itself.

import { SignInRequiredError } from "./client.js";

/**
 * The config file (`config.json` beside the page).
 * @typedef {object} DashboardConfig
 * @property {string} [apiBase] Where the Functions API is ("/api" by default).
 * @property {{ authority: string, clientId: string, scope?: string, resource?: string, token?: "access_token" | "id_token" }} [oidc]
 * @property {string} [devSignIn] URL of the development "sign in as" endpoint (local stack only).
 */

/**
 * @typedef {object} Session
 * @property {"oidc" | "dev"} source
 * @property {string} user
 * @property {string[]} roles
 * @property {string} token
 * @property {number} expiresAt Unix ms.
 */

/** Renew or give up this long before expiry, so a negotiate in flight never carries an expired token. */
export const EXPIRY_MARGIN_MS = 30_000;
const DEV_KEY = "meschain.devSession";

/** Roles a development token may carry, most powerful first (the server's role names). */
export const DEV_ROLES = ["super_admin", "admin", "marketplace_manager", "viewer"];

/** Validates the config file; throws with every problem named. */
export function parseConfig(json) {
  const problems = [];
  if (!json || typeof json !== "object") throw new Error("config.json: not a JSON object");
  const config = { apiBase: "/api" };
  if (json.apiBase !== undefined) {
    if (typeof json.apiBase !== "string" || json.apiBase === "") problems.push("apiBase must be a non-empty string");
    else config.apiBase = json.apiBase;
  }
  if (json.oidc !== undefined && json.oidc !== null) {
    const o = json.oidc;
    if (typeof o.authority !== "string" || !/^https?:\/\//.test(o.authority)) problems.push("oidc.authority must be an http(s) URL");
    if (typeof o.clientId !== "string" || o.clientId === "") problems.push("oidc.clientId must be a non-empty string");
    if (o.token !== undefined && o.token !== "access_token" && o.token !== "id_token") {
      problems.push('oidc.token must be "access_token" or "id_token"');
    }
    config.oidc = {
      authority: o.authority,
      clientId: o.clientId,
      scope: typeof o.scope === "string" ? o.scope : "openid profile",
      resource: typeof o.resource === "string" && o.resource ? o.resource : undefined,
      token: o.token ?? "access_token",
    };
  }
  if (json.devSignIn !== undefined && json.devSignIn !== null) {
    if (typeof json.devSignIn !== "string" || json.devSignIn === "") problems.push("devSignIn must be a URL");
    else config.devSignIn = json.devSignIn;
  }
  if (problems.length) throw new Error(`config.json: ${problems.join("; ")}`);
  return config;
}

/** The claims of a JWT, unverified (the server verifies; the page only reads names and roles). */
export function decodeJwt(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) throw new Error("not a JWT");
  const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Roles from `roles` (array or string) and `role`, as the handler reads them. */
export function rolesOf(claims) {
  const out = [];
  for (const claim of [claims?.roles, claims?.role]) {
    for (const r of Array.isArray(claim) ? claim : [claim]) {
      if (typeof r === "string" && r !== "" && !out.includes(r)) out.push(r);
    }
  }
  return out;
}

/** A session from a token: who, which roles, until when. */
export function sessionFromToken(token, source) {
  const claims = decodeJwt(token);
  const user = claims.preferred_username || claims.name || claims.email || claims.sub;
  if (typeof user !== "string" || user === "") throw new Error("the token names no user");
  const exp = typeof claims.exp === "number" ? claims.exp * 1000 : Date.now() + 3_600_000;
  return { source, user, roles: rolesOf(claims), token, expiresAt: exp };
}

export const isExpired = (session, now = Date.now()) => session.expiresAt - EXPIRY_MARGIN_MS <= now;

/**
 * The sign-in state of the page.
 */
export class Auth {
  /**
   * @param {DashboardConfig} config
   * @param {{ storage?: Storage, fetch?: typeof fetch, UserManager?: any, WebStorageStateStore?: any, location?: Location }} deps
   */
  constructor(config, { storage = globalThis.sessionStorage, fetch = globalThis.fetch.bind(globalThis), UserManager, WebStorageStateStore, location = globalThis.location } = {}) {
    this.config = config;
    this.storage = storage;
    this.fetch = fetch;
    this.location = location;
    this.manager = null;
    if (config.oidc && UserManager) {
      const redirect = `${location.origin}${location.pathname}`;
      this.manager = new UserManager({
        authority: config.oidc.authority,
        client_id: config.oidc.clientId,
        redirect_uri: redirect,
        post_logout_redirect_uri: redirect,
        response_type: "code",
        scope: config.oidc.scope,
        // PKCE is what oidc-client-ts does for the code flow; a refresh token (when the provider
        // grants one) renews without a redirect.
        automaticSilentRenew: false,
        userStore: new WebStorageStateStore({ store: storage }),
        stateStore: new WebStorageStateStore({ store: storage }),
        extraQueryParams: config.oidc.resource ? { resource: config.oidc.resource } : undefined,
        extraTokenParams: config.oidc.resource ? { resource: config.oidc.resource } : undefined,
      });
    }
  }

  get canUseOidc() {
    return this.manager !== null;
  }

  get canUseDev() {
    return typeof this.config.devSignIn === "string";
  }

  /** Finishes an OIDC redirect when the URL carries one; returns whether it did. */
  async completeRedirect() {
    if (!this.manager) return false;
    const params = new URLSearchParams(this.location.search);
    if (!params.has("state") || !(params.has("code") || params.has("error"))) return false;
    try {
      await this.manager.signinRedirectCallback();
    } finally {
      // The code is single-use: never leave it in the address bar or history.
      history.replaceState(null, "", this.location.pathname);
    }
    return true;
  }

  /** The current session, or null when signed out. An expired one is returned (the page says so). */
  async session() {
    if (this.manager) {
      const user = await this.manager.getUser();
      if (user) {
        const token = this.#oidcToken(user);
        if (token) return sessionFromToken(token, "oidc");
      }
    }
    if (this.canUseDev) {
      const token = this.storage.getItem(DEV_KEY);
      if (token) {
        try {
          return sessionFromToken(token, "dev");
        } catch {
          this.storage.removeItem(DEV_KEY);
        }
      }
    }
    return null;
  }

  #oidcToken(user) {
    return this.config.oidc?.token === "id_token" ? user.id_token : user.access_token;
  }

  /** Starts the OIDC code flow (the browser leaves the page). */
  async signInOidc() {
    if (!this.manager) throw new Error("OpenID Connect sign-in is not configured");
    await this.manager.signinRedirect();
  }

  /** Local stack only: a development token for `user` with `role`, minted by `meschain dev`. */
  async signInDev(user, role) {
    if (!this.canUseDev) throw new Error("Development sign-in is not available here");
    const res = await this.fetch(this.config.devSignIn, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user, roles: [role] }),
    });
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = JSON.parse(text).error ?? text;
      } catch {
        // plain text
      }
      throw new Error(message || `sign-in failed (${res.status})`);
    }
    const { token } = JSON.parse(text);
    const session = sessionFromToken(token, "dev");
    this.storage.setItem(DEV_KEY, token);
    return session;
  }

  /**
   * A token valid for at least the expiry margin, for negotiate. Renews an OIDC session with its
   * refresh token when it has one; otherwise the user must sign in again.
   */
  async freshToken() {
    const session = await this.session();
    if (!session) throw new SignInRequiredError("You are signed out");
    if (!isExpired(session)) return session.token;
    if (session.source === "oidc") {
      const user = await this.manager.getUser();
      if (user?.refresh_token) {
        try {
          const renewed = await this.manager.signinSilent();
          const token = renewed && this.#oidcToken(renewed);
          if (token && !isExpired(sessionFromToken(token, "oidc"))) return token;
        } catch {
          // Falls through to "sign in again".
        }
      }
    }
    throw new SignInRequiredError();
  }

  async signOut() {
    this.storage.removeItem(DEV_KEY);
    if (this.manager) await this.manager.removeUser();
  }
}
