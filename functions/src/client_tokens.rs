//! Who signs the client access tokens `negotiate` hands out.
//!
//! With an access key that key signs them, forever. With Microsoft Entra ID the app never sees
//! an access key: the service issues a signing key to an Entra-authenticated caller
//! (`GET {server}/api/v1/auth/accessKey` → `{"KeyId","AccessKey"}`, https://learn.microsoft.com/azure/azure-signalr/signalr-concept-client-negotiation), and
//! tokens signed with it must name it in the JWT header (`kid`) so the service can find it.
//! Like the SDK we fetch a fresh one every 55 minutes. A failed refresh keeps the previous key
//! in use (the service still knows it), so a short identity or service outage does not stop
//! logins; until a first key has been obtained, negotiate answers 503.
//!
//! The hot path (every negotiate) reads the key without writing memory the other cores share
//! (`ArcSwap`, see `meschain_secrets::Derived`); the only writer is the refresh task, once an hour.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use meschain_functions_protocol::Escaped;
use meschain_secrets::Derived;
use meschain_signalr::token::SigningKey;
use meschain_signalr::{AccessKey, ConnectionString};

use crate::signalr_rest::entra::EntraToken;

/// How often the SDK re-authorises for a signing key (`AadAccessKey`).
pub const REFRESH_EVERY: Duration = Duration::from_secs(55 * 60);
/// Retry delays after a failed fetch: quick while no key exists yet, then capped.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX_WITHOUT_KEY: Duration = Duration::from_secs(30);
const RETRY_MAX_WITH_KEY: Duration = Duration::from_secs(5 * 60);
/// Time allowed for one key fetch, token included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A key response is a few hundred bytes; anything much larger is not one.
const MAX_KEY_RESPONSE: usize = 16 * 1024;

/// Signs client tokens. `Debug` shows no key.
#[derive(Clone)]
pub enum ClientTokenSigner {
    /// The connection string's access key (following Key Vault rotations when the setting is
    /// a vault reference).
    Fixed(Derived<SigningKey>),
    /// A key the service issued to our Entra identity, refreshed in the background.
    Issued(Arc<IssuedKey>),
}

impl std::fmt::Debug for ClientTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientTokenSigner::Fixed(_) => f.write_str("Fixed(<redacted>)"),
            ClientTokenSigner::Issued(k) => write!(f, "Issued(url={}, has_key={})", k.url, k.current().is_some()),
        }
    }
}

impl ClientTokenSigner {
    pub fn fixed(key: &AccessKey) -> Self {
        ClientTokenSigner::Fixed(Derived::fixed(SigningKey::hs256(key)))
    }

    /// A signer for `connection` that fetches its key with `token` over `http`.
    pub fn issued(connection: &ConnectionString, token: EntraToken, http: reqwest::Client) -> Self {
        ClientTokenSigner::Issued(Arc::new(IssuedKey::new(connection, token, http)))
    }

    /// Runs `sign` with the current key; `None` when no key has been obtained yet.
    pub fn with_key<R>(&self, sign: impl FnOnce(&SigningKey) -> R) -> Option<R> {
        match self {
            ClientTokenSigner::Fixed(k) => Some(sign(k.snapshot().current())),
            ClientTokenSigner::Issued(k) => k.with_current(sign),
        }
    }

    /// Starts the refresh task of an issued key (nothing to do for a fixed key).
    pub fn start_refresh(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            ClientTokenSigner::Fixed(_) => None,
            ClientTokenSigner::Issued(k) => Some(tokio::spawn(Arc::clone(k).refresh_forever(REFRESH_EVERY))),
        }
    }
}

/// The service-issued signing key and how to get a new one.
pub struct IssuedKey {
    current: ArcSwapOption<SigningKey>,
    url: String,
    token: EntraToken,
    http: reqwest::Client,
}

/// Why a key fetch failed. Never carries the key or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFetchError {
    #[error("{0}")]
    Token(crate::signalr_rest::entra::EntraError),
    #[error("key request failed: {0}")]
    Request(String),
    #[error("key request refused with status {0}")]
    Status(u16),
    #[error("key response is not {{\"KeyId\",\"AccessKey\"}} with non-empty values")]
    BadResponse,
}

/// Reads the service's answer. The SDK uses PascalCase names; camelCase is accepted too, as
/// the 2024-12-01 swagger's `AccessKeyResponse` model is serialised by ASP.NET defaults.
pub fn parse_key_response(body: &[u8]) -> Result<(String, AccessKey), KeyFetchError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| KeyFetchError::BadResponse)?;
    let field = |pascal: &str, camel: &str| {
        value.get(pascal).or_else(|| value.get(camel)).and_then(|v| v.as_str()).map(str::to_string)
    };
    let key_id = field("KeyId", "keyId").ok_or(KeyFetchError::BadResponse)?;
    let access_key = field("AccessKey", "accessKey").ok_or(KeyFetchError::BadResponse)?;
    if key_id.trim().is_empty() || access_key.is_empty() {
        return Err(KeyFetchError::BadResponse);
    }
    Ok((key_id, AccessKey::new(access_key)))
}

/// The next wait after `failures` consecutive failed fetches.
pub fn retry_delay(failures: u32, has_key: bool) -> Duration {
    let cap = if has_key { RETRY_MAX_WITH_KEY } else { RETRY_MAX_WITHOUT_KEY };
    RETRY_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(cap)
}

impl IssuedKey {
    pub fn new(connection: &ConnectionString, token: EntraToken, http: reqwest::Client) -> Self {
        IssuedKey {
            current: ArcSwapOption::empty(),
            url: format!("{}api/v1/auth/accessKey", connection.server_base()),
            token,
            http,
        }
    }

    /// The key to sign with now, as a handle that outlives a refresh.
    pub fn current(&self) -> Option<Arc<SigningKey>> {
        self.current.load_full()
    }

    /// Runs `sign` with the key now, if there is one, without touching its reference count.
    fn with_current<R>(&self, sign: impl FnOnce(&SigningKey) -> R) -> Option<R> {
        self.current.load().as_deref().map(sign)
    }

    /// Fetches a key now and makes it current. On failure the previous key stays current.
    pub async fn refresh(&self) -> Result<(), KeyFetchError> {
        let token = self.token.bearer(FETCH_TIMEOUT).await.map_err(KeyFetchError::Token)?;
        let resp =
            self.http.get(&self.url).bearer_auth(token.secret()).timeout(FETCH_TIMEOUT).send().await.map_err(|e| {
                KeyFetchError::Request(if e.is_timeout() { "timed out".into() } else { "no answer".into() })
            })?;
        if !resp.status().is_success() {
            return Err(KeyFetchError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n as usize > MAX_KEY_RESPONSE) {
            return Err(KeyFetchError::BadResponse);
        }
        let body = resp.bytes().await.map_err(|_| KeyFetchError::Request("body unreadable".into()))?;
        if body.len() > MAX_KEY_RESPONSE {
            return Err(KeyFetchError::BadResponse);
        }
        let (kid, key) = parse_key_response(&body)?;
        let signer = Arc::new(SigningKey::hs256_with_kid(&key, &kid));
        self.current.store(Some(signer));
        tracing::info!(key_id = %Escaped(&kid), "SignalR client-token signing key obtained");
        Ok(())
    }

    /// Refreshes every `every`, retrying failures with backoff; never returns.
    pub async fn refresh_forever(self: Arc<Self>, every: Duration) {
        let mut failures = 0u32;
        loop {
            let wait = match self.refresh().await {
                Ok(()) => {
                    failures = 0;
                    every
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let has_key = self.current().is_some();
                    let wait = retry_delay(failures, has_key).min(every);
                    tracing::warn!(
                        "SignalR signing key refresh failed ({}); {}; retrying in {} s",
                        Escaped(&e.to_string()),
                        if has_key {
                            "keeping the previous key"
                        } else {
                            "negotiate answers 503 until one is obtained"
                        },
                        wait.as_secs_f32()
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_key_response() {
        let (kid, key) = parse_key_response(br#"{"KeyId":"k1","AccessKey":"secret"}"#).unwrap();
        assert_eq!((kid.as_str(), key.expose()), ("k1", "secret"));
        assert!(parse_key_response(br#"{"keyId":"k2","accessKey":"s"}"#).is_ok());
        for bad in [
            &br#"{"KeyId":"","AccessKey":"s"}"#[..],
            br#"{"KeyId":"k"}"#,
            br#"{"KeyId":1,"AccessKey":"s"}"#,
            b"[]",
            b"<html>",
        ] {
            assert_eq!(
                parse_key_response(bad).unwrap_err(),
                KeyFetchError::BadResponse,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn test_retry_delay() {
        assert_eq!(retry_delay(1, false), Duration::from_secs(1));
        assert_eq!(retry_delay(3, false), Duration::from_secs(4));
        assert_eq!(retry_delay(10, false), RETRY_MAX_WITHOUT_KEY);
        assert_eq!(retry_delay(10, true), RETRY_MAX_WITH_KEY);
        assert_eq!(retry_delay(u32::MAX, true), RETRY_MAX_WITH_KEY);
    }

    #[test]
    fn test_fixed_signer_and_debug() {
        let s = ClientTokenSigner::fixed(&AccessKey::new("fixed-secret"));
        assert!(s.with_key(|_| ()).is_some());
        assert!(!format!("{s:?}").contains("fixed-secret"));
    }
}
