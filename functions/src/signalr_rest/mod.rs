//! A client for the SignalR service's data-plane REST API (2022-06-01), used by every function
//! that pushes to browsers or manages groups.
//!
//! Each request carries its own short-lived token whose audience is the request URL as the
//! official SDK builds it ([`meschain_signalr::rest`]). Connections are pooled. Transient
//! failures are retried within a fixed time budget ([`retry`]). Several endpoints may be
//! configured (a primary and fallbacks of separate instances): calls go to the first healthy
//! one, and an endpoint that keeps failing is benched for a while so the next call goes
//! straight to a fallback.
//!
//! A request is authorised either with a token signed by the instance's access key or, for an
//! `AuthType` connection string, with a Microsoft Entra token ([`entra`]), the raw Entra token
//! being the bearer as in the SDK's `RestApiAccessTokenGenerator` (https://github.com/Azure/azure-signalr).

pub mod entra;
pub mod retry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meschain_functions_protocol::Escaped;
use meschain_model::clock;
use meschain_signalr::connection_string::Credential;
use meschain_signalr::rest::{self, Method, Operation, RestCall};
use meschain_signalr::token::SigningKey;
use meschain_signalr::{AccessKey, ConnectionString};
use serde_json::{Value, json};

use entra::{EntraError, EntraToken};

use retry::{Attempt, RetryPolicy, parse_retry_after};

/// How long a failing endpoint is skipped before it is tried again.
const BENCH_FOR: Duration = Duration::from_secs(30);
/// Lifetime of the per-request REST tokens (each is used once, right away).
const REST_TOKEN_LIFETIME_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// The service refused the request (a 4xx other than an expected "not found").
    #[error("SignalR service refused the request with status {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Rejected { status: u16, code: Option<String> },
    /// No endpoint answered successfully within the retry budget.
    #[error("SignalR service unavailable: {0}")]
    Unavailable(String),
    #[error("could not build a request token")]
    Token,
    /// No Entra token could be had for any endpoint (identity endpoint down, identity refused).
    #[error("{0}")]
    Credential(EntraError),
}

/// How requests to one endpoint are authorised. `Debug` shows the kind, never a key or token.
#[derive(Clone)]
pub enum RequestAuth {
    /// A fresh HS256 token per request, signed with the access key (audience = request URL).
    /// Follows Key Vault rotations when the connection string is a vault reference.
    AccessKey(meschain_secrets::Derived<SigningKey>),
    /// The Entra token for the SignalR scope, cached by the credential.
    Entra(EntraToken),
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestAuth::AccessKey(_) => f.write_str("AccessKey(<redacted>)"),
            RequestAuth::Entra(t) => f.debug_tuple("Entra").field(t).finish(),
        }
    }
}

impl RequestAuth {
    pub fn access_key(key: &AccessKey) -> Self {
        RequestAuth::AccessKey(meschain_secrets::Derived::fixed(SigningKey::hs256(key)))
    }

    /// The bearer token for a request whose SDK audience is `audience`.
    pub async fn bearer(&self, audience: &str, timeout: Duration) -> Result<String, RestError> {
        match self {
            RequestAuth::AccessKey(signer) => signer
                .current()
                .rest_token(audience, clock::now_ms() / 1000, REST_TOKEN_LIFETIME_SECS)
                .map_err(|_| RestError::Token),
            RequestAuth::Entra(token) => {
                token.bearer(timeout).await.map(|t| t.secret().to_string()).map_err(RestError::Credential)
            }
        }
    }
}

/// One SignalR instance the app may call.
#[derive(Debug)]
pub struct Endpoint {
    connection: ConnectionString,
    auth: RequestAuth,
    benched_until_ms: AtomicU64,
}

impl Endpoint {
    /// An endpoint whose requests are signed with `key`.
    pub fn new(connection: ConnectionString, key: &AccessKey) -> Self {
        Self::with_auth(connection, RequestAuth::access_key(key))
    }

    pub fn with_auth(connection: ConnectionString, auth: RequestAuth) -> Self {
        Endpoint { connection, auth, benched_until_ms: AtomicU64::new(0) }
    }

    /// The endpoint its connection string describes: access key or Entra credential (whose
    /// identity requests go through `http`).
    pub fn from_connection(connection: ConnectionString, http: &reqwest::Client) -> Result<Self, EntraError> {
        let auth = match &connection.credential {
            Credential::AccessKey(key) => RequestAuth::access_key(key),
            Credential::EntraId(entra) => RequestAuth::Entra(EntraToken::from_auth(entra, http.clone())?),
        };
        Ok(Self::with_auth(connection, auth))
    }

    pub fn auth(&self) -> &RequestAuth {
        &self.auth
    }

    pub fn connection(&self) -> &ConnectionString {
        &self.connection
    }

    fn is_benched(&self, now_ms: u64) -> bool {
        self.benched_until_ms.load(Ordering::Relaxed) > now_ms
    }
}

/// The REST client. Cheap to share behind an `Arc`.
pub struct SignalRRest {
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    policy: RetryPolicy,
}

impl SignalRRest {
    /// `endpoints` in order of preference; must not be empty.
    pub fn new(endpoints: Vec<Endpoint>, policy: RetryPolicy) -> Self {
        Self::with_http(endpoints, policy, Self::http_client(&policy))
    }

    /// The pooled client REST calls (and the identity requests behind Entra tokens) share.
    pub fn http_client(policy: &RetryPolicy) -> reqwest::Client {
        meschain_tls::client_builder()
            .connect_timeout(policy.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    }

    pub fn with_http(endpoints: Vec<Endpoint>, policy: RetryPolicy, http: reqwest::Client) -> Self {
        assert!(!endpoints.is_empty(), "at least one SignalR endpoint");
        SignalRRest { http, endpoints, policy }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Every endpoint, in order of preference (the primary, then the fallback).
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint calls go to now: the first one not benched (the primary if all are).
    pub fn active(&self) -> &Endpoint {
        let now = clock::now_ms();
        self.endpoints.iter().find(|e| !e.is_benched(now)).unwrap_or(&self.endpoints[0])
    }

    /// Sends `target(arguments)` to the connections the operation names.
    pub async fn send(&self, hub: &str, op: Operation<'_>, target: &str, arguments: &[Value]) -> Result<(), RestError> {
        let body = json!({ "target": target, "arguments": arguments });
        self.execute(hub, &op, Some(&body)).await.map(|_| ())
    }

    /// Runs a non-send operation. `Ok(false)` is the service's documented "not found" for
    /// existence checks and group removals; `Ok(true)` is success.
    pub async fn run(&self, hub: &str, op: Operation<'_>) -> Result<bool, RestError> {
        self.execute(hub, &op, None).await
    }

    /// Whether the active endpoint answers its health check.
    pub async fn healthy(&self) -> bool {
        let call = rest::health(self.active().connection());
        matches!(
            self.attempt(self.active(), &call, None, self.policy.attempt_timeout).await,
            Ok(Answer::Status { status: 200, .. })
        )
    }

    async fn execute(&self, hub: &str, op: &Operation<'_>, body: Option<&Value>) -> Result<bool, RestError> {
        let started = Instant::now();
        let mut last = String::from("no attempt was made");
        // Set when the last endpoint tried could not be authorised at all.
        let mut credential_failure: Option<EntraError> = None;
        let now = clock::now_ms();
        // Healthy endpoints first, in configured order; benched ones as a last resort.
        let order: Vec<&Endpoint> = self
            .endpoints
            .iter()
            .filter(|e| !e.is_benched(now))
            .chain(self.endpoints.iter().filter(|e| e.is_benched(now)))
            .collect();
        for endpoint in order {
            let call = rest::call(endpoint.connection(), hub, op);
            let mut attempt_no = 0;
            let mut no_token = None;
            loop {
                attempt_no += 1;
                let Some(timeout) = self.policy.attempt_timeout(started.elapsed()) else {
                    return Err(RestError::Unavailable(format!("retry budget spent; last failure: {last}")));
                };
                let answer = match self.attempt(endpoint, &call, body, timeout).await {
                    Ok(answer) => answer,
                    // The credential already retried within its own pipeline: try the next
                    // endpoint (it may have other credentials) rather than this one again.
                    Err(RestError::Credential(e)) => {
                        no_token = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let (outcome, retry_after, error_code) = match answer {
                    Answer::Status { status, retry_after, error_code } => {
                        (Attempt::Status(status), retry_after, error_code)
                    }
                    Answer::Timeout => (Attempt::Timeout, None, None),
                    Answer::ConnectFailed => (Attempt::ConnectFailed, None, None),
                };
                if let Attempt::Status(status) = outcome {
                    if call.expect.success.contains(&status) {
                        return Ok(true);
                    }
                    if status == 404
                        && call.expect.not_found_code.is_some()
                        && error_code.as_deref() == call.expect.not_found_code
                    {
                        return Ok(false);
                    }
                    if !outcome.is_transient() {
                        return Err(RestError::Rejected { status, code: error_code });
                    }
                }
                last = match outcome {
                    Attempt::Status(s) => format!("status {s}"),
                    Attempt::Timeout => "timed out".into(),
                    Attempt::ConnectFailed => "could not connect".into(),
                };
                match self.policy.next_delay(attempt_no, outcome, retry_after, started.elapsed(), rand::random::<f64>())
                {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => break,
                }
            }
            if let Some(e) = &no_token {
                last = e.to_string();
            }
            credential_failure = no_token;
            endpoint.benched_until_ms.store(clock::now_ms() + BENCH_FOR.as_millis() as u64, Ordering::Relaxed);
            tracing::warn!(endpoint = %endpoint.connection().server_base(), "SignalR endpoint failing ({}); benched", Escaped(&last));
        }
        match credential_failure {
            // Every endpoint tried; the last one failed for want of a token: say exactly that.
            Some(e) => Err(RestError::Credential(e)),
            _ => Err(RestError::Unavailable(last)),
        }
    }

    async fn attempt(
        &self,
        endpoint: &Endpoint,
        call: &RestCall,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Answer, RestError> {
        let fetching = Instant::now();
        let token = endpoint.auth.bearer(&call.audience, timeout).await?;
        // A slow token fetch comes out of this attempt's time, not on top of it.
        let timeout = timeout.saturating_sub(fetching.elapsed());
        if timeout.is_zero() {
            return Ok(Answer::Timeout);
        }
        let method = match call.method {
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut req = self.http.request(method, &call.url).bearer_auth(token).timeout(timeout);
        if let Some(body) = body.filter(|_| call.has_body) {
            req = req.json(body);
        }
        Ok(match req.send().await {
            Ok(resp) => {
                let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                Answer::Status {
                    status: resp.status().as_u16(),
                    retry_after: header("retry-after").as_deref().and_then(parse_retry_after),
                    error_code: header("x-ms-error-code"),
                }
            }
            Err(e) if e.is_timeout() => Answer::Timeout,
            Err(_) => Answer::ConnectFailed,
        })
    }
}

/// What one attempt got back.
enum Answer {
    Status { status: u16, retry_after: Option<Duration>, error_code: Option<String> },
    Timeout,
    ConnectFailed,
}
