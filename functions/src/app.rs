//! The application: its shared state and its router, built once at start.

use std::sync::Arc;

use axum::Router;
use meschain_signalr::token::SigningKey;

use crate::analytics::{AnalyticsSink, InMemoryAnalytics};
use crate::auth::Authenticator;
use crate::cors::CorsPolicy;
use crate::presence::Presence;
use crate::settings::{Settings, SignalRSettings};
use crate::signalr_rest::{Endpoint, SignalRRest, retry::RetryPolicy};

/// Recent analytics events kept in memory until the Cosmos DB store is configured.
const IN_MEMORY_ANALYTICS_EVENTS: usize = 10_000;

/// Everything a function needs, shared by all requests.
pub struct AppState {
    pub signalr: SignalRSettings,
    pub cors: CorsPolicy,
    pub token_lifetime_secs: u64,
    /// Signs client access tokens with the primary key.
    pub client_tokens: SigningKey,
    pub authenticator: Authenticator,
    pub rest: SignalRRest,
    pub presence: Presence,
    pub analytics: Arc<dyn AnalyticsSink>,
}

impl AppState {
    pub fn new(settings: Settings) -> Self {
        // The schedule and queue name are the host's business; they were validated at start.
        let Settings { signalr, auth, cors, token_lifetime_secs, .. } = settings;
        let client_tokens = SigningKey::hs256(&signalr.primary_key);
        let authenticator = Authenticator::new(auth);
        let endpoints = std::iter::once(Endpoint::new(signalr.connection.clone(), &signalr.primary_key))
            .chain(signalr.fallback.iter().map(|(cs, key)| Endpoint::new(cs.clone(), key)))
            .collect();
        let rest = SignalRRest::new(endpoints, RetryPolicy::default());
        AppState {
            signalr,
            cors,
            token_lifetime_secs,
            client_tokens,
            authenticator,
            rest,
            presence: Presence::default(),
            analytics: Arc::new(InMemoryAnalytics::new(IN_MEMORY_ANALYTICS_EVENTS)),
        }
    }
}

/// The whole HTTP surface, for `main` and for tests (`tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    crate::host::server::router(Arc::new(state))
}

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Seconds since the Unix epoch. A clock before 1970 is treated as 1970 rather than panicking.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
