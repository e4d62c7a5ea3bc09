//! Login with Amazon: the seller's refresh token exchanged for a one-hour access token
//! (<https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api>).
//!
//! One token is cached with its expiry (read from a [`Clock`], so tests move time) and shared by
//! every call; it is replaced a minute before it expires, so a call never starts with a token
//! about to lapse, and once more when Amazon answers that it expired or is invalid
//! ([`Lwa::invalidate`]). The refresh happens under the cache's lock: calls that find the token
//! stale wait for one refresh instead of each asking for their own. Secrets live in [`Secret`],
//! whose `Debug` prints nothing, and are stripped from any text Amazon sends back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

use meschain_model::clock::Clock;

use crate::connector::ConnectorError;

/// Refresh this long before the token's stated expiry.
const REFRESH_MARGIN_MS: u64 = 60_000;
/// Shortest lifetime accepted from the token endpoint (a smaller `expires_in` is distrusted).
const MIN_LIFETIME_SECS: u64 = 120;
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 64 * 1024;

/// A secret string: no `Debug`/`Display` of its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the token endpoint needs, and the setting names to blame when it refuses.
#[derive(Clone, Debug)]
pub struct LwaCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
}

struct Cached {
    token: Secret,
    expires_at_ms: u64,
}

/// The shared access-token cache.
pub struct Lwa {
    http: reqwest::Client,
    credentials: LwaCredentials,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<Cached>>,
}

impl Lwa {
    pub fn new(http: reqwest::Client, credentials: LwaCredentials, clock: Arc<dyn Clock>) -> Self {
        Lwa { http, credentials, clock, cached: Mutex::new(None) }
    }

    /// A valid access token, refreshed when missing or within a minute of its expiry.
    pub async fn token(&self) -> Result<Secret, ConnectorError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now_ms();
        if let Some(c) = cached.as_ref()
            && now + REFRESH_MARGIN_MS < c.expires_at_ms
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime_secs) = self.refresh().await?;
        let expires_at_ms = self.clock.now_ms() + lifetime_secs * 1000;
        *cached = Some(Cached { token: token.clone(), expires_at_ms });
        Ok(token)
    }

    /// Amazon refused `token` as expired or invalid: drop it, unless another call already
    /// replaced it.
    pub async fn invalidate(&self, token: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == token) {
            *cached = None;
        }
    }

    async fn refresh(&self) -> Result<(Secret, u64), ConnectorError> {
        use meschain_model::settings::{
            AMAZON_CLIENT_ID as CLIENT_ID, AMAZON_CLIENT_SECRET as CLIENT_SECRET,
            AMAZON_REFRESH_TOKEN as REFRESH_TOKEN, AMAZON_TOKEN_URL as TOKEN_URL,
        };
        let c = &self.credentials;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", c.refresh_token.expose()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = self
            .http
            .post(&c.token_url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
            .body(body)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| ConnectorError::transient(format!("amazon token: {}", e.without_url())))?;
        let status = response.status();
        let body = read_small(response).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(ConnectorError::transient(format!("amazon token: HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            let error = v.get("error").and_then(Value::as_str).unwrap_or("");
            let description = v.get("error_description").and_then(Value::as_str).unwrap_or("");
            let blame = match error {
                "invalid_grant" => format!("check {REFRESH_TOKEN}: the seller may have to authorize the app again"),
                "invalid_client" | "unauthorized_client" => format!("check {CLIENT_ID} and {CLIENT_SECRET}"),
                _ => format!("check {TOKEN_URL}, {CLIENT_ID}, {CLIENT_SECRET} and {REFRESH_TOKEN}"),
            };
            let said = self.redact(&format!("{error} {description}"));
            return Err(ConnectorError::Fatal(format!(
                "amazon token: HTTP {} {} ({blame})",
                status.as_u16(),
                said.trim()
            )));
        }
        let token = v.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600).max(MIN_LIFETIME_SECS);
        match token {
            Some(t) => Ok((Secret::new(t), lifetime)),
            None => Err(ConnectorError::transient("amazon token: answer without an access_token")),
        }
    }

    /// Removes our secrets from text that came from outside, before it reaches a log or a status.
    fn redact(&self, text: &str) -> String {
        let mut out: String = text.chars().take(300).collect();
        for s in [self.credentials.client_secret.expose(), self.credentials.refresh_token.expose()] {
            if !s.is_empty() {
                out = out.replace(s, "<redacted>");
            }
        }
        out
    }
}

async fn read_small(mut response: reqwest::Response) -> Result<Vec<u8>, ConnectorError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ConnectorError::transient(format!("amazon token: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ConnectorError::transient("amazon token: answer too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
