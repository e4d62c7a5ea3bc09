//! What the authenticator is told to trust, and the settings it comes from.
//!
//! The settings module owns reading the environment; [`AuthConfig::from_settings`] is offered
//! so the rules about *these* settings (which combinations are safe, which URLs are allowed)
//! live next to the code that relies on them and are reported by name, never by value.

use std::fmt;
use std::time::Duration;

use meschain_model::clock::SharedClock;
use url::Url;
use zeroize::Zeroize;

/// HS256 secrets shorter than the hash output make brute force practical (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// A shared secret. Zeroed on drop; `Debug` never shows it; not `Clone`, so the only
/// copies are this one and the one inside the verifying key built from it.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        // `into_bytes` reuses the String's buffer: no copy is left behind un-zeroed.
        Secret(secret.into().into_bytes())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where asymmetric verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document (`AUTH_JWKS_URL`).
    Url(Url),
    /// An OpenID provider (`AUTH_OIDC_ISSUER`); the JWKS URL is found through
    /// `{issuer}/.well-known/openid-configuration`. Kept as the exact string, since it is
    /// also compared byte for byte with the discovery document's and the tokens' `iss`.
    OidcIssuer(String),
}

impl JwksSource {
    pub fn url(value: &str) -> Result<Self, &'static str> {
        Ok(JwksSource::Url(key_source_url(value)?))
    }

    pub fn oidc_issuer(value: &str) -> Result<Self, &'static str> {
        key_source_url(value)?;
        Ok(JwksSource::OidcIssuer(value.to_owned()))
    }
}

/// Keys fetched over plain HTTP could be swapped by anyone on the path, so only HTTPS is
/// accepted, except on loopback (local development and tests).
pub(crate) fn key_source_url(value: &str) -> Result<Url, &'static str> {
    let url = Url::parse(value).map_err(|_| "is not an absolute URL")?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err("is not an absolute URL");
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err("must use https (http is allowed only for loopback hosts)"),
        _ => Err("must be an https URL"),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[derive(Debug)]
pub struct AuthConfig {
    /// `AUTH_JWT_SECRET`: enables HS256 tokens.
    pub hs256_secret: Option<Secret>,
    /// `AUTH_JWKS_URL` / `AUTH_OIDC_ISSUER`: enables RS256 and ES256 tokens.
    pub jwks: Option<JwksSource>,
    /// `AUTH_ISSUER`: the required `iss`. With an OIDC issuer and no `AUTH_ISSUER`, tokens
    /// verified with the provider's keys must carry the provider's issuer.
    pub issuer: Option<String>,
    /// `AUTH_AUDIENCE`: the required `aud` (one of the token's audiences).
    pub audience: Option<String>,
    /// `AUTH_TRUST_EASY_AUTH`: App Service Authentication runs in front of the app, so its
    /// `X-MS-CLIENT-PRINCIPAL*` headers were set by the platform, not by the caller.
    pub trust_easy_auth: bool,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// A setting that is missing or wrong. `reason` is fixed text: values are never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} {reason}")]
pub struct InvalidSetting {
    pub name: &'static str,
    pub reason: &'static str,
}

impl AuthConfig {
    /// Builds the configuration from settings looked up by name (empty values count as
    /// unset), reporting every problem at once.
    pub fn from_settings(mut get: impl FnMut(&str) -> Option<String>) -> Result<Self, Vec<InvalidSetting>> {
        let mut get = move |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut errors = Vec::new();
        let mut bad = |name, reason| errors.push(InvalidSetting { name, reason });

        let hs256_secret = get("AUTH_JWT_SECRET").map(Secret::new);
        if hs256_secret.as_ref().is_some_and(|s| s.len() < MIN_SECRET_BYTES) {
            bad("AUTH_JWT_SECRET", "must be at least 32 bytes");
        }
        let (jwks_url, oidc_issuer) = (get("AUTH_JWKS_URL"), get("AUTH_OIDC_ISSUER"));
        let jwks_requested = jwks_url.is_some() || oidc_issuer.is_some();
        let jwks = match (jwks_url, oidc_issuer) {
            (Some(_), Some(_)) => {
                bad("AUTH_OIDC_ISSUER", "cannot be combined with AUTH_JWKS_URL");
                None
            }
            (Some(url), None) => JwksSource::url(&url).map_err(|r| bad("AUTH_JWKS_URL", r)).ok(),
            (None, Some(issuer)) => JwksSource::oidc_issuer(&issuer).map_err(|r| bad("AUTH_OIDC_ISSUER", r)).ok(),
            (None, None) => None,
        };
        let issuer = get("AUTH_ISSUER");
        let audience = get("AUTH_AUDIENCE");
        // A shared identity provider signs tokens for many applications; without an
        // audience, a token minted for any of them would open ours.
        if jwks_requested && audience.is_none() {
            bad("AUTH_AUDIENCE", "is required when AUTH_JWKS_URL or AUTH_OIDC_ISSUER is set");
        }
        let trust_easy_auth = match get("AUTH_TRUST_EASY_AUTH").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => false,
            Some(_) => {
                bad("AUTH_TRUST_EASY_AUTH", "must be true or false");
                false
            }
        };
        if hs256_secret.is_none() && !jwks_requested && !trust_easy_auth {
            bad(
                "AUTH_JWT_SECRET",
                "(or AUTH_JWKS_URL, AUTH_OIDC_ISSUER, AUTH_TRUST_EASY_AUTH) must be set: no caller could authenticate",
            );
        }
        if errors.is_empty() {
            Ok(AuthConfig { hs256_secret, jwks, issuer, audience, trust_easy_auth, leeway_secs: DEFAULT_LEEWAY_SECS })
        } else {
            Err(errors)
        }
    }
}

/// Limits on key fetching. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// Bound on one whole refresh (discovery + JWKS), connect included.
    pub fetch_timeout: Duration,
    /// At most one fetch starts per interval, however many unknown `kid`s arrive.
    pub min_refresh_interval: Duration,
    /// Keys older than this are refreshed in the background, so removed (revoked) keys stop
    /// verifying; the old set keeps serving while the source is down.
    pub max_age: Duration,
    /// Larger discovery or JWKS bodies are refused.
    pub max_body_bytes: usize,
    /// What the refresh interval and `max_age` are measured with.
    pub clock: SharedClock,
}

impl Default for JwksOptions {
    fn default() -> Self {
        JwksOptions {
            fetch_timeout: Duration::from_secs(5),
            min_refresh_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(3600),
            max_body_bytes: 256 * 1024,
            clock: SharedClock::system(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings(pairs: &[(&str, &str)]) -> Result<AuthConfig, Vec<InvalidSetting>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AuthConfig::from_settings(|name| map.get(name).cloned())
    }

    fn names(errors: Vec<InvalidSetting>) -> Vec<&'static str> {
        errors.into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn test_secret_debug_is_redacted() {
        let s = Secret::new("super-secret-value");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let config = settings(&[("AUTH_JWT_SECRET", SECRET)]).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }

    #[test]
    fn test_from_settings_hs256_only() {
        let c = settings(&[("AUTH_JWT_SECRET", SECRET), ("AUTH_ISSUER", "https://login.example")]).unwrap();
        assert_eq!(c.hs256_secret.unwrap().expose(), SECRET.as_bytes());
        assert_eq!(c.issuer.as_deref(), Some("https://login.example"));
        assert!(c.jwks.is_none() && c.audience.is_none() && !c.trust_easy_auth);
        assert_eq!(c.leeway_secs, DEFAULT_LEEWAY_SECS);
    }

    #[test]
    fn test_from_settings_reports_every_problem_by_name_without_values() {
        let errors = settings(&[
            ("AUTH_JWT_SECRET", "short-secret-value"),
            ("AUTH_JWKS_URL", "http://keys.example.com/jwks"),
            ("AUTH_TRUST_EASY_AUTH", "maybe"),
        ])
        .unwrap_err();
        let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(!text.contains("short-secret-value") && !text.contains("keys.example.com"), "{text}");
        assert_eq!(names(errors), ["AUTH_JWT_SECRET", "AUTH_JWKS_URL", "AUTH_AUDIENCE", "AUTH_TRUST_EASY_AUTH"]);
    }

    #[test]
    fn test_from_settings_jwks_requires_audience_and_one_source() {
        let e = settings(&[("AUTH_JWKS_URL", "https://idp.example/keys")]).unwrap_err();
        assert_eq!(names(e), ["AUTH_AUDIENCE"]);
        let e = settings(&[
            ("AUTH_JWKS_URL", "https://idp.example/keys"),
            ("AUTH_OIDC_ISSUER", "https://idp.example"),
            ("AUTH_AUDIENCE", "api://meschain"),
        ])
        .unwrap_err();
        assert_eq!(names(e), ["AUTH_OIDC_ISSUER"]);
        let c =
            settings(&[("AUTH_OIDC_ISSUER", "https://idp.example/tenant/v2.0"), ("AUTH_AUDIENCE", "api://m")]).unwrap();
        assert_eq!(c.jwks, Some(JwksSource::OidcIssuer("https://idp.example/tenant/v2.0".into())));
    }

    #[test]
    fn test_from_settings_nothing_to_authenticate_with_is_an_error() {
        assert_eq!(names(settings(&[]).unwrap_err()), ["AUTH_JWT_SECRET"]);
        assert_eq!(names(settings(&[("AUTH_JWT_SECRET", "  ")]).unwrap_err()), ["AUTH_JWT_SECRET"]);
        let c = settings(&[("AUTH_TRUST_EASY_AUTH", "True")]).unwrap();
        assert!(c.trust_easy_auth);
    }

    #[test]
    fn test_key_source_url_rules() {
        assert!(key_source_url("https://idp.example/keys").is_ok());
        assert!(key_source_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(key_source_url("http://[::1]:8080/keys").is_ok());
        assert!(key_source_url("http://localhost/keys").is_ok());
        assert!(key_source_url("http://idp.example/keys").is_err());
        assert!(key_source_url("ftp://idp.example/keys").is_err());
        assert!(key_source_url("file:///etc/keys").is_err());
        assert!(key_source_url("not a url").is_err());
    }
}
