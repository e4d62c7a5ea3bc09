//! Who is calling `negotiate`.
//!
//! The SignalR token we mint carries the user id and roles that the hubs trust, so they must
//! come from a credential we verified ourselves, never from what the caller says about
//! itself: headers such as `x-user-id`, `x-user-role` or `x-ms-signalr-userid` and query
//! parameters are never read here (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities). There are two ways in:
//!
//! - `Authorization: Bearer <JWT>` ([`bearer`], [`jwt`]): HS256 with the shared secret, or
//!   RS256/ES256 with keys from a JWKS or an OpenID provider ([`jwks`]).
//! - App Service Authentication's principal headers ([`easy_auth`]), only when the
//!   configuration says the platform authenticates in front of us; they are then preferred,
//!   since the platform may forward a bearer token it verified for an audience we don't know.
//!
//! The HS256 path is the hot one (every negotiate): no locks, no I/O, the HMAC keyed once per
//! secret, and the only allocations are the decoded parts and the identity ([`hs256`]).

mod bearer;
mod claims;
mod config;
mod easy_auth;
mod error;
mod hs256;
mod jwks;
mod jwt;
#[cfg(test)]
mod testing;

use std::fmt;
use std::sync::Arc;

use hs256::Hs256Key;
use http::HeaderMap;
use jsonwebtoken::Algorithm;
use meschain_model::settings as names;
use meschain_secrets::{Derived, Secrets};

pub use bearer::MAX_AUTHORIZATION_BYTES;
pub use config::{AuthConfig, DEFAULT_LEEWAY_SECS, InvalidSetting, JwksOptions, JwksSource, MIN_SECRET_BYTES, Secret};
pub use error::AuthError;

/// Who the caller is, as proven by a verified credential. Never built from unverified input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub roles: Vec<String>,
    pub source: IdentitySource,
}

impl Identity {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    BearerToken,
    EasyAuth,
}

/// Verifies callers. Cheap to clone and share between requests.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    /// The HS256 secret; during a Key Vault rotation's overlap, the previous one too.
    hs256: Option<Derived<Hs256Key>>,
    /// Asked for an early Key Vault refresh when no accepted secret verifies a token (it may be
    /// signed with a secret newer than ours).
    secrets: Option<Secrets>,
    jwks: Option<Arc<jwks::JwksCache>>,
    /// What HS256 claims must satisfy.
    hs256_rules: hs256::Rules,
    /// RS256 and ES256 tokens' validations.
    validations: jwt::Validations,
    trust_easy_auth: bool,
}

impl Authenticator {
    pub fn new(config: AuthConfig) -> Self {
        Self::with_options(config, JwksOptions::default())
    }

    /// Like [`Authenticator::new`] with explicit limits on key fetching.
    pub fn with_options(config: AuthConfig, options: JwksOptions) -> Self {
        // The config (and its Secret, zeroed on drop) is consumed: the key below is the
        // only copy of the secret left.
        let hs256 = config.hs256_secret.as_ref().map(|s| Derived::fixed(Hs256Key::new(s.expose())));
        let jwks = config.jwks.map(|source| Arc::new(jwks::JwksCache::new(source, options)));
        let validations = jwt::Validations::new(
            config.issuer.as_deref(),
            jwks.as_ref().and_then(|j| j.oidc_issuer()),
            config.audience.as_deref(),
            config.leeway_secs,
        );
        let hs256_rules =
            hs256::Rules { issuer: config.issuer, audience: config.audience, leeway_secs: config.leeway_secs };
        let trust_easy_auth = config.trust_easy_auth;
        Authenticator {
            inner: Arc::new(Inner { hs256, secrets: None, jwks, hs256_rules, validations, trust_easy_auth }),
        }
    }

    /// Follows `AUTH_JWT_SECRET` through Key Vault rotations when it is a vault reference:
    /// tokens signed with the new secret are accepted as soon as it is read, and those signed
    /// with the previous one until the overlap ends. Call once, at start.
    pub fn follow_rotation(self, secrets: &Secrets) -> Self {
        let Some(handle) = secrets.get(names::AUTH_JWT_SECRET) else { return self };
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => {
                tracing::warn!("login secret rotation not followed: the authenticator is already shared");
                return Authenticator { inner: shared };
            }
        };
        match Derived::follow(handle, names::AUTH_JWT_SECRET, |v| {
            Ok::<_, std::convert::Infallible>(Hs256Key::new(v.expose().as_bytes()))
        }) {
            Ok(keys) => inner.hs256 = Some(keys),
            Err(never) => match never {},
        }
        inner.secrets = Some(secrets.clone());
        Authenticator { inner: Arc::new(inner) }
    }

    /// The caller's identity from the request headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        if self.inner.trust_easy_auth
            && let Some(identity) = easy_auth::trusted_identity(headers)?
        {
            return Ok(identity);
        }
        let token = bearer::bearer_token(headers)?;
        self.verify_token(token).await
    }

    /// Loads the provider's keys now, so the first caller does not wait for them. Meant to
    /// be spawned after the server is listening (start-up must not wait on the network); a
    /// failure is logged by the cache and retried on demand.
    pub async fn warm_up(&self) -> Result<(), AuthError> {
        match &self.inner.jwks {
            Some(jwks) => jwks.warm_up().await,
            None => Ok(()),
        }
    }

    /// Verifies a bare JWT (what follows `Bearer `).
    pub async fn verify_token(&self, token: &str) -> Result<Identity, AuthError> {
        if token.len() > MAX_AUTHORIZATION_BYTES {
            return Err(AuthError::Malformed);
        }
        let inner = &*self.inner;
        if inner.jwks.is_none()
            && let Some(keys) = &inner.hs256
        {
            // Only HS256 can verify, and `hs256::verify` refuses a header naming any other
            // algorithm, so on the hot path the header is read once, by it. It is read again
            // only to say why a token that could not be read was refused (`alg: none`, say).
            return match self.verify_hs256(keys, token) {
                Err(AuthError::Malformed) => Err(jwt::header_algorithm(token).err().unwrap_or(AuthError::Malformed)),
                other => other,
            };
        }
        let (alg, kid) = jwt::header_algorithm(token)?;
        if alg == Algorithm::HS256 {
            // Only the configured secret verifies HS256; never a key from the JWKS.
            return self.verify_hs256(inner.hs256.as_ref().ok_or(AuthError::DisallowedAlgorithm)?, token);
        }
        let (Some(jwks), Some(validation)) = (&inner.jwks, inner.validations.for_asymmetric(alg)) else {
            return Err(AuthError::DisallowedAlgorithm);
        };
        let key = jwks.key_for(kid.as_deref(), alg).await?;
        jwt::verify(token, &key.key, validation)
    }

    /// Tries each accepted secret (two during a rotation's overlap); when none verifies the
    /// token, asks for an early Key Vault read, as the token may be signed with a newer secret.
    fn verify_hs256(&self, keys: &Derived<Hs256Key>, token: &str) -> Result<Identity, AuthError> {
        let inner = &*self.inner;
        let keys = keys.snapshot();
        let now = meschain_model::clock::now_secs();
        let mut result = Err(AuthError::InvalidSignature);
        for key in keys.accepted() {
            result = hs256::verify(token, key, &inner.hs256_rules, now);
            if !matches!(result, Err(AuthError::InvalidSignature)) {
                return result;
            }
        }
        if let Some(secrets) = &inner.secrets
            && secrets.request_early_refresh()
        {
            tracing::info!("a login token matched no accepted secret: reading Key Vault early");
        }
        result
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.inner.hs256.is_some())
            .field("jwks", &self.inner.jwks)
            .field("trust_easy_auth", &self.inner.trust_easy_auth)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;
    use jsonwebtoken::EncodingKey;
    use serde_json::{Value, json};

    use super::testing::*;
    use super::*;

    const SECRET: &str = "test-only-secret-0123456789abcdef";
    const ISS: &str = "https://login.meschain.test";
    const AUD: &str = "meschain-realtime";

    fn config() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some(Secret::new(SECRET)),
            jwks: None,
            issuer: Some(ISS.into()),
            audience: Some(AUD.into()),
            trust_easy_auth: false,
            leeway_secs: 30,
        }
    }

    fn hs_claims(sub: &str) -> Value {
        let mut c = claims(sub);
        c["iss"] = json!(ISS);
        c["aud"] = json!(AUD);
        c
    }

    fn hs(claims: &Value) -> String {
        sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET.as_bytes()), claims)
    }

    async fn check(auth: &Authenticator, claims: &Value) -> Result<Identity, AuthError> {
        auth.authenticate(&bearer(&hs(claims))).await
    }

    #[tokio::test]
    async fn test_valid_hs256() {
        let auth = Authenticator::new(config());
        let id = check(&auth, &hs_claims("user-1")).await.unwrap();
        assert_eq!(id, Identity { user_id: "user-1".into(), roles: vec![], source: IdentitySource::BearerToken });
    }

    #[tokio::test]
    async fn test_expiry_and_not_before_with_leeway() {
        let auth = Authenticator::new(config());
        let now = now();
        let mut c = hs_claims("u");
        c["exp"] = json!(now - 120);
        assert_eq!(check(&auth, &c).await, Err(AuthError::Expired));
        c["exp"] = json!(now - 10); // within the 30 s leeway
        assert!(check(&auth, &c).await.is_ok());
        c["exp"] = json!(now + 3600);
        c["nbf"] = json!(now + 120);
        assert_eq!(check(&auth, &c).await, Err(AuthError::NotYetValid));
        c["nbf"] = json!(now + 10);
        assert!(check(&auth, &c).await.is_ok());
    }

    #[tokio::test]
    async fn test_exp_is_required_and_typed() {
        let auth = Authenticator::new(config());
        let mut c = hs_claims("u");
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(&auth, &c).await, Err(AuthError::MissingExpiry));
        // An `exp` that cannot be read counts as absent (as it does to jsonwebtoken).
        c["exp"] = json!("tomorrow");
        assert_eq!(check(&auth, &c).await, Err(AuthError::MissingExpiry));
    }

    #[tokio::test]
    async fn test_issuer_and_audience() {
        let auth = Authenticator::new(config());
        let mut c = hs_claims("u");
        c["iss"] = json!("https://evil.test");
        assert_eq!(check(&auth, &c).await, Err(AuthError::WrongIssuer));
        c.as_object_mut().unwrap().remove("iss");
        assert_eq!(check(&auth, &c).await, Err(AuthError::WrongIssuer));
        let mut c = hs_claims("u");
        c["aud"] = json!("someone-else");
        assert_eq!(check(&auth, &c).await, Err(AuthError::WrongAudience));
        c["aud"] = json!(["someone-else", AUD]);
        assert!(check(&auth, &c).await.is_ok());
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(&auth, &c).await, Err(AuthError::WrongAudience));
    }

    #[tokio::test]
    async fn test_no_issuer_or_audience_configured_accepts_any() {
        let auth = Authenticator::new(AuthConfig { issuer: None, audience: None, ..config() });
        let mut c = claims("u");
        c["aud"] = json!("whatever");
        c["iss"] = json!("whoever");
        assert!(check(&auth, &c).await.is_ok());
    }

    #[tokio::test]
    async fn test_missing_or_empty_sub() {
        let auth = Authenticator::new(config());
        let mut c = hs_claims("u");
        for sub in [json!(null), json!(""), json!("  "), json!(42), json!(true)] {
            c["sub"] = sub.clone();
            assert_eq!(check(&auth, &c).await, Err(AuthError::NoUserId), "{sub}");
        }
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(check(&auth, &c).await, Err(AuthError::NoUserId));
        // A structured `sub` is a malformed token (jsonwebtoken's reader fails on it too).
        for sub in [json!(["u"]), json!({"id": "u"})] {
            c["sub"] = sub;
            assert_eq!(check(&auth, &c).await, Err(AuthError::Malformed));
        }
    }

    #[tokio::test]
    async fn test_wrong_secret_and_tampered_payload() {
        let auth = Authenticator::new(config());
        let other = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(b"another-secret-0123456789abcdef!"),
            &hs_claims("u"),
        );
        assert_eq!(auth.authenticate(&bearer(&other)).await, Err(AuthError::InvalidSignature));
        let token = hs(&hs_claims("user"));
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut c = hs_claims("admin");
        c["roles"] = json!(["super_admin"]);
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, c.to_string());
        assert_eq!(auth.authenticate(&bearer(&parts.join("."))).await, Err(AuthError::InvalidSignature));
    }

    #[tokio::test]
    async fn test_alg_none_rejected() {
        let auth = Authenticator::new(config());
        let b64 = |v: &Value| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string());
        let body = b64(&hs_claims("admin"));
        for alg in ["none", "None", "NONE", "HS1"] {
            let token = format!("{}.{}.", b64(&json!({"alg": alg, "typ": "JWT"})), body);
            assert_eq!(auth.authenticate(&bearer(&token)).await, Err(AuthError::DisallowedAlgorithm), "{alg}");
        }
        // A real algorithm we do not accept.
        let hs512 = sign(Algorithm::HS512, None, &EncodingKey::from_secret(SECRET.as_bytes()), &hs_claims("u"));
        assert_eq!(auth.authenticate(&bearer(&hs512)).await, Err(AuthError::DisallowedAlgorithm));
    }

    #[tokio::test]
    async fn test_hs256_signed_with_public_key_pem_is_rejected() {
        // The classic confusion: the attacker signs HS256 with the (public) RSA key bytes.
        let forged = sign(Algorithm::HS256, Some("k1"), &EncodingKey::from_secret(RSA_A_PUB), &hs_claims("admin"));
        let server = JwksServer::start(json!({"keys": [rsa_jwk("a", "k1")]})).await;
        let jwks_only =
            AuthConfig { hs256_secret: None, jwks: Some(JwksSource::url(&server.jwks_url()).unwrap()), ..config() };
        let auth = Authenticator::new(jwks_only);
        assert_eq!(auth.authenticate(&bearer(&forged)).await, Err(AuthError::DisallowedAlgorithm));
        let both = AuthConfig { jwks: Some(JwksSource::url(&server.jwks_url()).unwrap()), ..config() };
        let auth = Authenticator::new(both);
        assert_eq!(auth.authenticate(&bearer(&forged)).await, Err(AuthError::InvalidSignature));
        // Neither path even fetched keys for an HS256 token.
        assert_eq!(server.jwks_hits(), 0);
    }

    #[tokio::test]
    async fn test_rs256_token_is_never_checked_with_the_hs_secret() {
        let auth = Authenticator::new(config());
        let token = sign(Algorithm::RS256, Some("k1"), &rsa("a"), &hs_claims("u"));
        assert_eq!(auth.authenticate(&bearer(&token)).await, Err(AuthError::DisallowedAlgorithm));
    }

    fn jwks_config(server: &JwksServer) -> AuthConfig {
        AuthConfig { hs256_secret: None, jwks: Some(JwksSource::url(&server.jwks_url()).unwrap()), ..config() }
    }

    #[tokio::test]
    async fn test_rs256_and_es256_via_jwks_cached() {
        let server = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1"), ec_jwk("e1")]})).await;
        let auth = Authenticator::new(jwks_config(&server));
        let rs = sign(Algorithm::RS256, Some("r1"), &rsa("a"), &hs_claims("rsa-user"));
        let es = sign(Algorithm::ES256, Some("e1"), &ec(), &hs_claims("ec-user"));
        assert_eq!(auth.authenticate(&bearer(&rs)).await.unwrap().user_id, "rsa-user");
        assert_eq!(auth.authenticate(&bearer(&es)).await.unwrap().user_id, "ec-user");
        assert_eq!(auth.authenticate(&bearer(&rs)).await.unwrap().user_id, "rsa-user");
        assert_eq!(server.jwks_hits(), 1, "the key set is fetched once and cached");
    }

    #[tokio::test]
    async fn test_jwks_key_type_decides_algorithm() {
        let server = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1"), ec_jwk("e1")]})).await;
        let auth = Authenticator::with_options(
            jwks_config(&server),
            JwksOptions { min_refresh_interval: Duration::from_secs(60), ..JwksOptions::default() },
        );
        // ES256 header naming the RSA key's kid: no P-256 key has that kid.
        let es = sign(Algorithm::ES256, Some("r1"), &ec(), &hs_claims("u"));
        assert_eq!(auth.authenticate(&bearer(&es)).await, Err(AuthError::UnknownKey));
        // Right kid, wrong private key.
        let rs_b = sign(Algorithm::RS256, Some("r1"), &rsa("b"), &hs_claims("u"));
        assert_eq!(auth.authenticate(&bearer(&rs_b)).await, Err(AuthError::InvalidSignature));
        // Claims are validated on asymmetric tokens too.
        let mut c = hs_claims("u");
        c["aud"] = json!("other");
        let rs = sign(Algorithm::RS256, Some("r1"), &rsa("a"), &c);
        assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::WrongAudience));
    }

    #[tokio::test]
    async fn test_unknown_kid_triggers_one_refresh() {
        let server = JwksServer::start(json!({"keys": [rsa_jwk("a", "old")]})).await;
        let clock = meschain_model::clock::ManualClock::at_ms(1_000_000);
        let auth = Authenticator::with_options(
            jwks_config(&server),
            JwksOptions {
                min_refresh_interval: Duration::from_millis(200),
                clock: meschain_model::clock::SharedClock::new(clock.clone()),
                ..JwksOptions::default()
            },
        );
        let old = sign(Algorithm::RS256, Some("old"), &rsa("a"), &hs_claims("u"));
        assert!(auth.authenticate(&bearer(&old)).await.is_ok());
        assert_eq!(server.jwks_hits(), 1);
        // The provider rotates in a new key; the first token using it refreshes the cache.
        clock.advance(Duration::from_millis(250));
        *server.keys.lock().unwrap() = json!({"keys": [rsa_jwk("a", "old"), rsa_jwk("b", "new")]});
        let new = sign(Algorithm::RS256, Some("new"), &rsa("b"), &hs_claims("u2"));
        assert_eq!(auth.authenticate(&bearer(&new)).await.unwrap().user_id, "u2");
        assert_eq!(server.jwks_hits(), 2);
        assert!(auth.authenticate(&bearer(&new)).await.is_ok());
        assert_eq!(server.jwks_hits(), 2);
        // A kid nobody knows refreshes at most once per interval.
        let ghost = sign(Algorithm::RS256, Some("ghost"), &rsa("a"), &hs_claims("u"));
        clock.advance(Duration::from_millis(250));
        for _ in 0..5 {
            assert_eq!(auth.authenticate(&bearer(&ghost)).await, Err(AuthError::UnknownKey));
        }
        assert_eq!(server.jwks_hits(), 3);
    }

    #[tokio::test]
    async fn test_keys_named_in_the_token_header_are_never_used() {
        use base64::Engine;
        let server = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
        let attacker = JwksServer::start(json!({"keys": [rsa_jwk("b", "evil")]})).await;
        let auth = Authenticator::new(jwks_config(&server));
        // Signed with key b, carrying key b inline (`jwk`) and a URL to a set with it (`jku`).
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        for kid in ["evil", "r1"] {
            let header = json!({"alg": "RS256", "kid": kid, "jku": attacker.jwks_url(), "jwk": rsa_jwk("b", kid)});
            let signing_input = format!("{}.{}", b64(&header), b64(&hs_claims("admin")));
            let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &rsa("b"), Algorithm::RS256).unwrap();
            let token = format!("{signing_input}.{sig}");
            let expected = if kid == "r1" { AuthError::InvalidSignature } else { AuthError::UnknownKey };
            assert_eq!(auth.authenticate(&bearer(&token)).await, Err(expected));
        }
        assert_eq!(attacker.jwks_hits(), 0);
    }

    #[tokio::test]
    async fn test_oidc_issuer_discovery_and_default_issuer() {
        let server = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
        let auth = Authenticator::new(AuthConfig {
            hs256_secret: None,
            jwks: Some(JwksSource::oidc_issuer(&server.base).unwrap()),
            issuer: None,
            ..config()
        });
        let mut c = hs_claims("u");
        c["iss"] = json!(server.base);
        assert!(auth.authenticate(&bearer(&sign(Algorithm::RS256, Some("r1"), &rsa("a"), &c))).await.is_ok());
        // Tokens verified with the provider's keys must carry the provider's issuer.
        c["iss"] = json!(ISS);
        let wrong = sign(Algorithm::RS256, Some("r1"), &rsa("a"), &c);
        assert_eq!(auth.authenticate(&bearer(&wrong)).await, Err(AuthError::WrongIssuer));
    }

    #[tokio::test]
    async fn test_roles_and_role_variants() {
        let auth = Authenticator::new(config());
        let cases = [
            (json!({"roles": ["admin", "marketplace_manager"]}), vec!["admin", "marketplace_manager"]),
            (json!({"role": "super_admin"}), vec!["super_admin"]),
            (json!({"role": ["a", "b"]}), vec!["a", "b"]),
            (json!({"roles": ["a"], "role": ["a", "b"]}), vec!["a", "b"]),
            (json!({"roles": "solo"}), vec!["solo"]),
            (json!({"roles": [1, "x", null, ""]}), vec!["x"]),
            (json!({"roles": [["admin"], {"admin": "admin"}, "x", 1.5, true]}), vec!["x"]),
            (json!({"roles": 5, "role": {"admin": true}}), vec![]),
            (json!({}), vec![]),
        ];
        for (extra, expected) in cases {
            let mut c = hs_claims("u");
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            assert_eq!(check(&auth, &c).await.unwrap().roles, expected, "{extra}");
        }
    }

    #[tokio::test]
    async fn test_deeply_nested_claims_are_refused_not_overflowed() {
        let auth = Authenticator::new(config());
        let mut c = hs_claims("u");
        let nested: Value = serde_json::from_str(&format!("{}\"admin\"{}", "[".repeat(120), "]".repeat(120))).unwrap();
        c["roles"] = nested;
        assert_eq!(check(&auth, &c).await.unwrap().roles, Vec::<String>::new(), "an array of arrays grants nothing");
        // Deeper than serde_json reads (128 levels): the token is malformed, and the process is fine.
        let deep = format!("{}\"admin\"{}", "[".repeat(2000), "]".repeat(2000));
        let mut claims = hs_claims("u").to_string();
        claims.insert_str(1, &format!("\"roles\":{deep},"));
        let token = hs256_token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, SECRET.as_bytes());
        assert_eq!(auth.verify_token(&token).await, Err(AuthError::Malformed));
    }

    fn principal_headers(user: &str, role: &str) -> HeaderMap {
        let p = json!({
            "auth_typ": "aad",
            "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
            "claims": [
                {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", "val": user},
                {"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": role}
            ]
        });
        let mut h = HeaderMap::new();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, p.to_string());
        h.insert("x-ms-client-principal", HeaderValue::from_str(&encoded).unwrap());
        h.insert("x-ms-client-principal-id", HeaderValue::from_str(user).unwrap());
        h.insert("x-ms-client-principal-name", HeaderValue::from_static("mallory@example.com"));
        h
    }

    #[tokio::test]
    async fn test_easy_auth_trusted() {
        let auth = Authenticator::new(AuthConfig { trust_easy_auth: true, ..config() });
        let id = auth.authenticate(&principal_headers("aad-user", "admin")).await.unwrap();
        assert_eq!(
            id,
            Identity { user_id: "aad-user".into(), roles: vec!["admin".into()], source: IdentitySource::EasyAuth }
        );
        // Without a principal, the bearer token is still accepted.
        assert_eq!(check(&auth, &hs_claims("jwt-user")).await.unwrap().user_id, "jwt-user");
    }

    #[tokio::test]
    async fn test_easy_auth_headers_ignored_when_untrusted() {
        let auth = Authenticator::new(config());
        assert_eq!(
            auth.authenticate(&principal_headers("admin-user", "super_admin")).await,
            Err(AuthError::MissingCredential)
        );
        let mut h = principal_headers("admin-user", "super_admin");
        h.extend(bearer(&hs(&hs_claims("real-user"))));
        let id = auth.authenticate(&h).await.unwrap();
        assert_eq!((id.user_id.as_str(), id.roles.len(), id.source), ("real-user", 0, IdentitySource::BearerToken));
    }

    #[tokio::test]
    async fn test_spoofed_user_and_role_headers_grant_nothing() {
        let auth = Authenticator::new(AuthConfig { trust_easy_auth: true, ..config() });
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-user-id", "admin"),
            ("x-user-role", "super_admin"),
            ("x-user-roles", "super_admin"),
            ("x-ms-signalr-userid", "admin"),
            ("x-ms-signalr-user-id", "admin"),
            ("x-ms-client-principal-name", "admin"),
            ("x-ms-client-principal-idp", "aad"),
            ("x-role", "admin"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        assert_eq!(auth.authenticate(&h).await, Err(AuthError::MissingCredential));
        h.extend(bearer(&hs(&hs_claims("plain-user"))));
        let id = auth.authenticate(&h).await.unwrap();
        assert_eq!((id.user_id.as_str(), id.roles.is_empty()), ("plain-user", true));
    }

    #[tokio::test]
    async fn test_garbage_headers() {
        let auth = Authenticator::new(config());
        let token = hs(&hs_claims("u"));
        let mut cases: Vec<(Vec<u8>, AuthError)> = vec![
            (b"Bearer \xff\xfe".to_vec(), AuthError::Malformed),
            (format!("Bearer  {token} {token}").into_bytes(), AuthError::Malformed),
            (format!("Bearer {token} ").into_bytes(), AuthError::Malformed),
            (b"Bearer not-a-jwt".to_vec(), AuthError::Malformed),
            (b"Bearer a.b.c".to_vec(), AuthError::Malformed),
            (b"Bearer ....".to_vec(), AuthError::Malformed),
            (format!("Basic {token}").into_bytes(), AuthError::UnsupportedScheme),
        ];
        let mut huge = b"Bearer ".to_vec();
        huge.resize(64 * 1024, b'a');
        cases.push((huge, AuthError::Malformed));
        for (value, expected) in cases {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, HeaderValue::from_bytes(&value).unwrap());
            assert_eq!(
                auth.authenticate(&h).await,
                Err(expected),
                "{}",
                String::from_utf8_lossy(&value[..value.len().min(40)])
            );
        }
        let mut two = bearer(&token);
        two.append(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        assert_eq!(auth.authenticate(&two).await, Err(AuthError::Malformed));
        // Still fine with one clean header (lower-case scheme too).
        let mut ok = HeaderMap::new();
        ok.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("bearer {token}")).unwrap());
        assert!(auth.authenticate(&ok).await.is_ok());
    }

    #[tokio::test]
    async fn test_errors_and_debug_never_show_secrets_or_tokens() {
        let auth = Authenticator::new(config());
        let debug = format!("{auth:?}");
        assert!(!debug.contains(SECRET) && !debug.contains("test-only-secret"), "{debug}");
        let token = hs(&hs_claims("u"));
        let mut c = hs_claims("u");
        c["exp"] = json!(1);
        let expired = hs(&c);
        let e = auth.authenticate(&bearer(&expired)).await.unwrap_err();
        for text in [e.to_string(), format!("{e:?}"), e.description().to_string()] {
            assert!(!text.contains(&expired) && !text.contains(&token[..20]) && !text.contains(SECRET));
        }
    }

    /// HS256 tokens through `hs256::verify` and through `jsonwebtoken::decode` as this deployment
    /// configured it before `hs256.rs` (`jwt::validation`): the same identity or the same refusal, for headers, claims of every type
    /// and place, signatures and shapes. Times are an hour from now either way, as jsonwebtoken
    /// reads the system clock.
    #[test]
    fn test_hs256_outcomes_are_jsonwebtokens() {
        let now = meschain_model::clock::now_secs();
        let (future, past) = (now + 3600, now - 3600);
        let headers = [
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"HS256"}"#,
            r#" {"typ":"JWT","alg":"HS\u0032\u0035\u0036"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":5}"#,
            r#"{"alg":null}"#,
            r#"{"alg":"HS256","alg":"HS256"}"#,
            r#"{}"#,
            r#"["HS256"]"#,
            r#""HS256""#,
            "not json",
        ];
        let base = |name: &str| -> serde_json::Map<String, serde_json::Value> {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("sub", serde_json::json!("user-1")),
                ("iss", serde_json::json!(ISS)),
                ("aud", serde_json::json!(AUD)),
                ("exp", serde_json::json!(future)),
                ("roles", serde_json::json!(["admin"])),
            ] {
                if k != name {
                    m.insert(k.into(), v);
                }
            }
            m
        };
        let odd_values = [
            "null",
            "true",
            "5",
            "-5",
            "1.5",
            "1e30",
            "\"text\"",
            "\"\"",
            "\"  \"",
            "[]",
            "[1]",
            "[\"x\"]",
            "[\"x\",5]",
            "{}",
            "{\"a\":1}",
            "[[\"admin\"]]",
        ];
        let mut payloads = Vec::new();
        for claim in ["sub", "iss", "aud", "exp", "nbf", "roles", "role"] {
            let without = serde_json::Value::Object(base(claim)).to_string();
            payloads.push(without.clone());
            for value in odd_values.iter().map(|v| v.to_string()).chain([
                format!("{future}"),
                format!("{past}"),
                format!("\"{ISS}\""),
                format!("[\"{AUD}\"]"),
            ]) {
                let open = &without[..without.len() - 1];
                let comma = if open.len() > 1 { "," } else { "" };
                payloads.push(format!("{open}{comma}\"{claim}\":{value}}}"));
            }
        }
        let valid = serde_json::Value::Object(base("")).to_string();
        payloads.extend([
            valid.clone(),
            format!("  {valid}"),
            format!("{valid} x"),
            valid.replacen('{', r#"{"sub":"other","#, 1),
            format!(r#"["user-1",["admin"],null,{future},null,"{ISS}","{AUD}"]"#),
            "[]".into(),
            "\"claims\"".into(),
            "not json".into(),
            String::new(),
        ]);
        let configs = [
            (
                jwt::validation(Algorithm::HS256, Some(ISS), Some(AUD), 30),
                hs256::Rules { issuer: Some(ISS.into()), audience: Some(AUD.into()), leeway_secs: 30 },
            ),
            (
                jwt::validation(Algorithm::HS256, None, None, 0),
                hs256::Rules { issuer: None, audience: None, leeway_secs: 0 },
            ),
        ];
        let theirs_key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
        let ours_key = hs256::Hs256Key::new(SECRET.as_bytes());
        // What `Authenticator::verify_token` does with a token that could not be read.
        let reclassify = |token: &str, r: Result<Identity, AuthError>| match r {
            Err(AuthError::Malformed) => Err(jwt::header_algorithm(token).err().unwrap_or(AuthError::Malformed)),
            other => other,
        };
        let mut compared = 0;
        let mut seen = Vec::new();
        for header in headers {
            for payload in &payloads {
                let signed = hs256_token(header, payload, SECRET.as_bytes());
                let (message, signature) = signed.rsplit_once('.').unwrap();
                let variants = [
                    signed.clone(),
                    hs256_token(header, payload, b"another secret"),
                    format!("{message}.{}", &signature[..20]),
                    format!("{message}.!{signature}"),
                    message.to_string(),
                    format!("{signed}.x"),
                    format!("{message}=.{signature}"),
                ];
                for variant in &variants {
                    for (validation, rules) in &configs {
                        let theirs = reclassify(variant, jwt::verify(variant, &theirs_key, validation));
                        let ours = reclassify(variant, hs256::verify(variant, &ours_key, rules, now));
                        assert_eq!(ours, theirs, "header {header}, payload {payload}, token {variant}");
                        let outcome = ours.map(|_| ());
                        if !seen.contains(&outcome) {
                            seen.push(outcome);
                        }
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 10_000, "{compared}");
        // The corpus reaches every outcome the HS256 path has.
        use AuthError::*;
        for outcome in [
            Ok(()),
            Err(Malformed),
            Err(InvalidSignature),
            Err(Expired),
            Err(NotYetValid),
            Err(MissingExpiry),
            Err(WrongIssuer),
            Err(WrongAudience),
            Err(DisallowedAlgorithm),
            Err(NoUserId),
        ] {
            assert!(seen.contains(&outcome), "{outcome:?} never seen");
        }
    }
}
