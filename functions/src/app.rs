//! The application: its shared state and its router, built once at start.

use std::sync::Arc;

use axum::Router;

use crate::analytics::{AnalyticsSink, InMemoryAnalytics};
use crate::auth::Authenticator;
use crate::client_tokens::ClientTokenSigner;
use crate::cors::CorsPolicy;
use crate::presence::Presence;
use crate::settings::{Settings, SignalRSettings};
use crate::signalr_rest::entra::EntraError;
use crate::signalr_rest::{Endpoint, RequestAuth, SignalRRest, retry::RetryPolicy};

/// Recent analytics events kept in memory until the Cosmos DB store is configured.
const IN_MEMORY_ANALYTICS_EVENTS: usize = 10_000;

/// Everything a function needs, shared by all requests.
pub struct AppState {
    pub signalr: SignalRSettings,
    pub cors: CorsPolicy,
    pub token_lifetime_secs: u64,
    /// Signs client access tokens: the primary access key, or the key the service issues to
    /// our Entra identity (call [`AppState::start_background`] to fetch it).
    pub client_tokens: ClientTokenSigner,
    pub authenticator: Authenticator,
    pub rest: SignalRRest,
    pub presence: Presence,
    pub analytics: Arc<dyn AnalyticsSink>,
    /// `marketplace-sync`'s connectors, store and settings.
    pub sync: crate::functions::marketplace_sync::SyncRuntime,
}

impl AppState {
    /// Fails only when an Entra credential cannot be built in this environment (e.g. a managed
    /// identity source `azure_identity` does not support).
    pub fn new(settings: Settings) -> Result<Self, EntraError> {
        // The schedule and queue name are the host's business; they were validated at start.
        let Settings { signalr, auth, cors, token_lifetime_secs, sync, .. } = settings;
        let sync = crate::functions::marketplace_sync::SyncRuntime::from_env(sync);
        let authenticator = Authenticator::new(auth);
        let policy = RetryPolicy::default();
        let http = SignalRRest::http_client(&policy);
        let primary = Endpoint::from_connection(signalr.connection.clone(), &http)?;
        let client_tokens = match primary.auth() {
            RequestAuth::AccessKey(signer) => ClientTokenSigner::Fixed(Arc::clone(signer)),
            // The same credential (and token cache) serves REST calls and key fetches.
            RequestAuth::Entra(token) => ClientTokenSigner::issued(&signalr.connection, token.clone(), http.clone()),
        };
        let mut endpoints = vec![primary];
        if let Some(fallback) = &signalr.fallback {
            endpoints.push(Endpoint::from_connection(fallback.clone(), &http)?);
        }
        let rest = SignalRRest::with_http(endpoints, policy, http);
        Ok(AppState {
            signalr,
            cors,
            token_lifetime_secs,
            client_tokens,
            authenticator,
            rest,
            presence: Presence::default(),
            analytics: Arc::new(InMemoryAnalytics::new(IN_MEMORY_ANALYTICS_EVENTS)),
            sync,
        })
    }

    /// Starts what runs beside requests: the refresh of a service-issued signing key.
    pub fn start_background(&self) {
        self.client_tokens.start_refresh();
    }
}

/// The whole HTTP surface, for `main` and for tests (`tower::ServiceExt::oneshot`): the
/// protocol layer's routes over this app's functions ([`crate::functions`] makes
/// [`AppState`] the protocol's `Handler`).
pub fn app(state: AppState) -> Router {
    meschain_functions_protocol::router(Arc::new(state))
}
