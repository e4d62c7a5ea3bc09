// A real OpenID provider for the sign-in tests: `oidc-provider` (npm) on a free loopback port,
// with its development sign-in pages (any login, any password), authorization code + PKCE for
// a public client, and JWT access tokens for one API (RFC 8707 resource indicators) that carry
// the user's `roles`, as Microsoft Entra ID's app roles do.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import Provider from "oidc-provider";

export const RESOURCE = "api://meschain-realtime";
export const CLIENT_ID = "meschain-dashboard";

/**
 * Listens first (the issuer URL must be known before the handler that trusts it starts), then
 * `configure(redirectUris)` mounts the provider once the dashboard's address is known.
 * @param {Record<string, string[]>} roles Roles per login name.
 */
export async function startProvider(roles) {
  let callback = null;
  const server = createServer((req, res) => (callback ? callback(req, res) : res.writeHead(503).end()));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://localhost:${server.address().port}`;
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const issued = [];
  return {
    issuer,
    /** Access tokens issued so far (claims), to check what the handler was given. */
    issued,
    configure(redirectUris) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: CLIENT_ID,
            token_endpoint_auth_method: "none",
            redirect_uris: redirectUris,
            post_logout_redirect_uris: redirectUris,
            grant_types: ["authorization_code"],
            response_types: ["code"],
          },
        ],
        jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" }] },
        cookies: { keys: [randomBytes(32).toString("hex")] },
        pkce: { required: () => true },
        claims: { openid: ["sub"], profile: ["name", "preferred_username"] },
        async findAccount(_ctx, sub) {
          return { accountId: sub, claims: async () => ({ sub, name: sub, preferred_username: sub }) };
        },
        features: {
          devInteractions: { enabled: true },
          resourceIndicators: {
            enabled: true,
            defaultResource: async () => RESOURCE,
            useGrantedResource: async () => true,
            getResourceServerInfo: async (_ctx, resource) => {
              if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
              return { scope: "openid profile", audience: RESOURCE, accessTokenFormat: "jwt", accessTokenTTL: 600, jwt: { sign: { alg: "RS256" } } };
            },
          },
        },
        async extraTokenClaims(_ctx, token) {
          if (token.kind !== "AccessToken") return undefined;
          const claims = { roles: roles[token.accountId] ?? [] };
          issued.push({ sub: token.accountId, ...claims });
          return claims;
        },
        async renderError(ctx, out) {
          ctx.type = "text/plain";
          ctx.body = `${out.error}: ${out.error_description ?? ""}`;
        },
      });
      // Quiet the "you must change this default" notices of the development interactions.
      provider.on("server_error", (_ctx, e) => console.error("oidc-provider:", e));
      callback = provider.callback();
    },
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}
