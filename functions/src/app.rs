//! The application: its shared state and its router, built once at start.

use std::sync::Arc;

use axum::Router;

use meschain_store::{Recorder, Store};

use crate::auth::Authenticator;
use crate::client_tokens::ClientTokenSigner;
use crate::cors::CorsPolicy;
use crate::dashboard::{DashboardCache, SecretsHealth};
use crate::settings::{Settings, SignalRSettings};
use crate::signalr_rest::entra::EntraError;
use crate::signalr_rest::{Endpoint, RequestAuth, SignalRRest, retry::RetryPolicy};

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
    /// Shared state (presence, counters, marketplace status): embedded or Cosmos DB.
    pub store: Arc<dyn Store>,
    /// Analytics events, counters and presence changes, written in the background.
    pub recorder: Recorder,
    /// When this process started (Unix ms), for `uptimeSeconds`.
    pub started_ms: u64,
    /// The last dashboard data read from the store, shown while the store is down.
    pub dashboard_cache: DashboardCache,
    /// What the secrets layer reports for `health.secrets`.
    pub secrets_health: SecretsHealth,
    pub currency: String,
}

impl AppState {
    /// Fails only when an Entra credential cannot be built in this environment (e.g. a managed
    /// identity source `azure_identity` does not support).
    ///
    /// `store` is opened by the caller ([`meschain_store::open`] with `settings.store`); the
    /// recorder writes to it from a task on the current runtime.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<Self, EntraError> {
        // The schedule and queue name are the host's business; they were validated at start.
        let Settings { signalr, auth, cors, token_lifetime_secs, store: store_settings, currency, .. } = settings;
        let recorder = if store_settings.recorder.enabled {
            Recorder::start(store.clone(), store_settings.recorder_config())
        } else {
            Recorder::disabled(store.clone())
        };
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
            store,
            recorder,
            started_ms: meschain_model::clock::now_ms(),
            dashboard_cache: DashboardCache::default(),
            secrets_health: SecretsHealth::default(),
            currency,
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
