//! The cache of an identity provider's public keys (JWKS).
//!
//! Reads are the hot path: a read lock held for one `Arc` clone, then a scan of a handful of
//! keys. Fetches are the cold path and the one an attacker can try to amplify (every token
//! with a fresh `kid` asks for a refresh), so they are funnelled through one async mutex:
//! one fetch in flight, callers that queued behind it reuse its result, and a new fetch
//! starts at most once per `min_refresh_interval`. Every fetch runs under one overall
//! timeout, so a provider that hangs costs a caller at most that long, and a provider that
//! fails answers `KeySourceUnavailable` immediately until the interval has passed.
//!
//! The interval and the keys' age are read from `JwksOptions::clock` (a wall clock, the system's
//! in production), so tests step over them with a `ManualClock` while the provider stays a real
//! server on loopback; the fetch timeout is a tokio timer, as it bounds real I/O.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use meschain_model::clock::Clock;
use serde::Deserialize;
use url::Url;

use super::AuthError;
use super::config::{JwksOptions, JwksSource, key_source_url};

/// Larger key sets are cut: providers publish a few keys, and the scan must stay short.
const MAX_KEYS: usize = 64;

/// A verification key with the one algorithm it may verify.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// One fetched generation of keys.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
    /// Clock reading (ms) when these keys were fetched.
    fetched_at: Option<u64>,
    generation: u64,
}

impl KeySet {
    /// The key for a token's `kid` and algorithm. A token without `kid` is accepted only
    /// when exactly one key could verify it, so it never picks among several.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerifyKey>> {
        let mut usable = self.keys.iter().filter(|k| k.alg == alg);
        match kid {
            Some(kid) => usable.find(|k| k.kid.as_deref() == Some(kid)).cloned(),
            None => match (usable.next(), usable.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            },
        }
    }
}

/// The algorithm a JWK may verify, decided by its key type: RSA → RS256, P-256 → ES256.
/// Symmetric (`oct`) keys, encryption keys, other curves and keys declaring another `alg`
/// are not used: a JWKS is public, so an `oct` entry in it would be a public HMAC secret.
fn usable_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let (alg, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|a| a != declared) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey { kid: jwk.common.key_id.clone(), alg, key })
}

/// Parses a JWKS document. Entries that are not usable keys are skipped one by one (a
/// provider adding a key type we do not know must not take the others down); a document
/// with no usable key at all is an error, so it never replaces a working set.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<VerifyKey>, FetchError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let doc: Document = serde_json::from_slice(body).map_err(|_| FetchError::NotAJwks)?;
    let keys: Vec<VerifyKey> = doc
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter_map(|jwk| usable_key(&jwk))
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(keys)
}

/// Why a fetch failed; logged for operators, never shown to callers.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no HTTP client could be built")]
    NoClient,
    #[error("request failed: {0}")]
    Http(reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body above the size limit")]
    TooLarge,
    #[error("discovery document is not valid JSON with jwks_uri")]
    NotADiscoveryDocument,
    #[error("discovery document names another issuer")]
    IssuerMismatch,
    #[error("discovery jwks_uri {0}")]
    BadJwksUri(&'static str),
    #[error("JWKS is not valid JSON with a keys array")]
    NotAJwks,
    #[error("JWKS has no usable RS256/ES256 key")]
    NoUsableKeys,
    #[error("timed out")]
    TimedOut,
}

struct RefreshState {
    /// The discovered JWKS URL, kept until a fetch from it fails.
    jwks_uri: Option<Url>,
    last_failed: bool,
}

pub struct JwksCache {
    source: JwksSource,
    client: Option<reqwest::Client>,
    options: JwksOptions,
    keys: RwLock<Arc<KeySet>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Clock reading (ms) when the last fetch started; `u64::MAX` before the first.
    last_attempt_ms: AtomicU64,
}

impl JwksCache {
    pub fn new(source: JwksSource, options: JwksOptions) -> Self {
        let fetch_timeout = options.fetch_timeout;
        let client = meschain_tls::client_builder()
            .connect_timeout(fetch_timeout)
            .timeout(fetch_timeout)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Same rule as the configured URL: a redirect must not downgrade to plain HTTP.
                if attempt.previous().len() >= 3 || key_source_url(attempt.url().as_str()).is_err() {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("meschain-functions/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the HTTP client for JWKS fetches"))
            .ok();
        JwksCache {
            source,
            client,
            options,
            keys: RwLock::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(RefreshState { jwks_uri: None, last_failed: false }),
            last_attempt_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// The issuer the provider's tokens must carry, for an OIDC source.
    pub fn oidc_issuer(&self) -> Option<&str> {
        match &self.source {
            JwksSource::OidcIssuer(iss) => Some(iss),
            JwksSource::Url(_) => None,
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        // A poisoned lock only means a writer panicked between two whole-Arc stores.
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key for `kid` and `alg`, refreshing once (rate limited) when it is not cached.
    pub async fn key_for(self: &Arc<Self>, kid: Option<&str>, alg: Algorithm) -> Result<Arc<VerifyKey>, AuthError> {
        let set = self.current();
        if let Some(key) = set.find(kid, alg) {
            let stale = set.fetched_at.is_some_and(|t| self.options.clock.at_least_since(t, self.options.max_age));
            if stale && self.may_attempt() {
                self.refresh_in_background(set.generation);
            }
            return Ok(key);
        }
        let set = self.refresh(set.generation).await?;
        set.find(kid, alg).ok_or(AuthError::UnknownKey)
    }

    fn refresh_in_background(self: &Arc<Self>, seen_generation: u64) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            handle.spawn(async move {
                let _ = this.refresh_now(seen_generation).await;
            });
        }
    }

    fn now_ms(&self) -> u64 {
        self.options.clock.now_ms().min(u64::MAX - 1)
    }

    fn may_attempt(&self) -> bool {
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        last == u64::MAX || self.options.clock.at_least_since(last, self.options.min_refresh_interval)
    }

    /// Fetches a new key set unless another caller already replaced `seen_generation` or
    /// the rate limit says not yet. Returns the newest set either way.
    ///
    /// The fetch runs in its own task: a caller that goes away (the client hung up and the
    /// request future was dropped) must not cancel a fetch others are queued behind, nor
    /// leave the cache empty until the next allowed attempt.
    pub async fn refresh(self: &Arc<Self>, seen_generation: u64) -> Result<Arc<KeySet>, AuthError> {
        let this = self.clone();
        match tokio::spawn(async move { this.refresh_now(seen_generation).await }).await {
            Ok(result) => result,
            Err(_) => Err(AuthError::KeySourceUnavailable),
        }
    }

    /// Loads keys if none were loaded yet; for warming the cache at start.
    pub async fn warm_up(self: &Arc<Self>) -> Result<(), AuthError> {
        let set = self.current();
        if set.fetched_at.is_none() {
            self.refresh(set.generation).await?;
        }
        Ok(())
    }

    async fn refresh_now(&self, seen_generation: u64) -> Result<Arc<KeySet>, AuthError> {
        let mut state = self.refresh.lock().await;
        let current = self.current();
        if current.generation != seen_generation {
            return Ok(current);
        }
        if !self.may_attempt() {
            return if state.last_failed { Err(AuthError::KeySourceUnavailable) } else { Ok(current) };
        }
        self.last_attempt_ms.store(self.now_ms(), Ordering::Release);
        let outcome = match tokio::time::timeout(self.options.fetch_timeout, self.fetch(&mut state)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::TimedOut),
        };
        match outcome {
            Ok(keys) => {
                let set = Arc::new(KeySet {
                    keys: keys.into_iter().map(Arc::new).collect(),
                    fetched_at: Some(self.now_ms()),
                    generation: current.generation + 1,
                });
                tracing::info!(keys = set.keys.len(), generation = set.generation, "loaded signing keys");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = set.clone();
                state.last_failed = false;
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not load signing keys");
                state.last_failed = true;
                Err(AuthError::KeySourceUnavailable)
            }
        }
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<Vec<VerifyKey>, FetchError> {
        let client = self.client.as_ref().ok_or(FetchError::NoClient)?;
        let max = self.options.max_body_bytes;
        let jwks_uri = match (&self.source, &state.jwks_uri) {
            (JwksSource::Url(url), _) => url.clone(),
            (JwksSource::OidcIssuer(_), Some(url)) => url.clone(),
            (JwksSource::OidcIssuer(issuer), None) => {
                let url = discover(client, issuer, max).await?;
                state.jwks_uri = Some(url.clone());
                url
            }
        };
        let result = get_body(client, jwks_uri, max).await.and_then(|body| parse_jwks(&body));
        if result.is_err() {
            // The provider may have moved its keys: discover again next time.
            state.jwks_uri = None;
        }
        result
    }
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache").field("source", &self.source).field("keys", &self.current().keys.len()).finish()
    }
}

async fn discover(client: &reqwest::Client, issuer: &str, max: usize) -> Result<Url, FetchError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let url = Url::parse(&url).map_err(|_| FetchError::BadJwksUri("cannot be derived from the issuer"))?;
    let body = get_body(client, url, max).await?;
    let doc: Discovery = serde_json::from_slice(&body).map_err(|_| FetchError::NotADiscoveryDocument)?;
    // OpenID Connect Discovery §4.3: the document must be for the issuer we asked about.
    if doc.issuer != issuer {
        return Err(FetchError::IssuerMismatch);
    }
    key_source_url(&doc.jwks_uri).map_err(FetchError::BadJwksUri)
}

async fn get_body(client: &reqwest::Client, url: Url, max: usize) -> Result<Vec<u8>, FetchError> {
    let mut response =
        client.get(url).header(http::header::ACCEPT, "application/json").send().await.map_err(FetchError::Http)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Http(e.without_url()))? {
        if body.len() + chunk.len() > max {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::testing;

    fn keys_of(doc: serde_json::Value) -> Result<Vec<VerifyKey>, FetchError> {
        parse_jwks(&serde_json::to_vec(&doc).unwrap())
    }

    #[test]
    fn test_parse_jwks_decides_algorithm_by_key_type() {
        let keys = keys_of(json!({"keys": [testing::rsa_jwk("a", "rsa-1"), testing::ec_jwk("e-1")]})).unwrap();
        let algs: Vec<_> = keys.iter().map(|k| (k.kid.as_deref().unwrap(), k.alg)).collect();
        assert_eq!(algs, [("rsa-1", Algorithm::RS256), ("e-1", Algorithm::ES256)]);
    }

    #[test]
    fn test_parse_jwks_skips_unusable_entries() {
        let mut enc = testing::rsa_jwk("a", "enc");
        enc["use"] = json!("enc");
        let mut ps = testing::rsa_jwk("a", "ps");
        ps["alg"] = json!("PS256");
        let oct = json!({"kty": "oct", "kid": "oct", "k": "c2VjcmV0"});
        let okp =
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let unknown = json!({"kty": "XYZ", "kid": "what"});
        let keys = keys_of(json!({"keys": [enc, ps, oct, okp, unknown, testing::rsa_jwk("a", "good")]})).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("good"));
    }

    #[test]
    fn test_parse_jwks_garbage() {
        assert!(matches!(parse_jwks(b"<html>"), Err(FetchError::NotAJwks)));
        assert!(matches!(parse_jwks(b"{\"keys\": 5}"), Err(FetchError::NotAJwks)));
        assert!(matches!(parse_jwks(b"{\"keys\": []}"), Err(FetchError::NoUsableKeys)));
    }

    #[test]
    fn test_find_by_kid_and_algorithm() {
        let keys = keys_of(json!({"keys": [testing::rsa_jwk("a", "k1"), testing::ec_jwk("k2")]})).unwrap();
        let set = KeySet { keys: keys.into_iter().map(Arc::new).collect(), fetched_at: None, generation: 1 };
        assert!(set.find(Some("k1"), Algorithm::RS256).is_some());
        // The RSA key never verifies an ES256 token, whatever the token's kid says.
        assert!(set.find(Some("k1"), Algorithm::ES256).is_none());
        assert!(set.find(Some("nope"), Algorithm::RS256).is_none());
        // No kid: only when exactly one key fits.
        assert_eq!(set.find(None, Algorithm::ES256).unwrap().kid.as_deref(), Some("k2"));
        let two = keys_of(json!({"keys": [testing::rsa_jwk("a", "k1"), testing::rsa_jwk("b", "k3")]})).unwrap();
        let set = KeySet { keys: two.into_iter().map(Arc::new).collect(), fetched_at: None, generation: 1 };
        assert!(set.find(None, Algorithm::RS256).is_none());
    }
}
