//! The application: its shared state and its router, built once at start.

use std::sync::Arc;

use axum::Router;

use meschain_model::settings as names;
use meschain_secrets::{Derived, SecretValue, Secrets};
use meschain_signalr::AccessKey;
use meschain_signalr::connection_string::{ConnectionString, Credential};
use meschain_signalr::token::SigningKey;

use meschain_store::{Recorder, Store};

use crate::auth::Authenticator;
use crate::client_tokens::ClientTokenSigner;
use crate::cors::CorsPolicy;
use crate::dashboard::DashboardCache;
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
    pub currency: String,
    /// `marketplace-sync`'s connectors, store and settings.
    pub sync: crate::sync_runtime::SyncRuntime,
    /// Settings read from Key Vault, refreshed in the background; `secrets.health()` is
    /// `health.secrets` on the dashboard.
    pub secrets: Secrets,
    /// The primary access key while it follows a Key Vault reference.
    rotating_signalr_key: Option<Derived<AccessKey>>,
    /// The secondary access key (accepted on upstream signatures) while it follows one.
    rotating_secondary_key: Option<Derived<AccessKey>>,
}

/// The access key of a connection string held in Key Vault, as the key upstream signatures
/// are checked with and as the key tokens and REST calls are signed with.
struct RotatingSignalRKey {
    access: Derived<AccessKey>,
    signing: Derived<SigningKey>,
}

impl RotatingSignalRKey {
    /// `None` when `setting` is not a Key Vault reference.
    fn follow(secrets: &Secrets, setting: &'static str) -> Result<Option<Self>, EntraError> {
        let Some(handle) = secrets.get(setting) else { return Ok(None) };
        let key = move |v: &SecretValue| match v.expose().parse::<ConnectionString>().map(|c| c.credential) {
            Ok(Credential::AccessKey(key)) => Ok(key),
            _ => Err(format!("{setting} from Key Vault is not a connection string with an AccessKey")),
        };
        let access = Derived::follow(handle.clone(), setting, key).map_err(EntraError)?;
        let signing =
            Derived::follow(handle, setting, move |v| key(v).map(|k| SigningKey::hs256(&k))).map_err(EntraError)?;
        Ok(Some(RotatingSignalRKey { access, signing }))
    }
}

/// The REST endpoint of `connection` (the value of `setting`), and its access key as it rotates
/// when `setting` is a Key Vault reference to an access-key connection string.
fn endpoint(
    secrets: &Secrets,
    setting: &'static str,
    connection: &ConnectionString,
    http: &reqwest::Client,
) -> Result<(Endpoint, Option<Derived<AccessKey>>), EntraError> {
    if connection.access_key().is_some()
        && let Some(keys) = RotatingSignalRKey::follow(secrets, setting)?
    {
        let endpoint = Endpoint::with_auth(connection.clone(), RequestAuth::AccessKey(keys.signing));
        return Ok((endpoint, Some(keys.access)));
    }
    Ok((Endpoint::from_connection(connection.clone(), http)?, None))
}

impl AppState {
    /// Fails only when an Entra credential cannot be built in this environment (e.g. a managed
    /// identity source `azure_identity` does not support).
    ///
    /// `store` is opened by the caller ([`meschain_store::open`] with `settings.store`); the
    /// recorder writes to it from a task on the current runtime.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Result<Self, EntraError> {
        Self::with_secrets(settings, store, Secrets::empty())
    }

    /// Like [`AppState::new`], for settings read with `secrets`: where the SignalR connection
    /// string or `AUTH_JWT_SECRET` is a Key Vault reference, a rotated value is used for new
    /// client tokens and REST calls as soon as it is read, and the previous one is still
    /// accepted (upstream signatures, login tokens) until the overlap ends.
    pub fn with_secrets(settings: Settings, store: Arc<dyn Store>, secrets: Secrets) -> Result<Self, EntraError> {
        // The schedule and queue name are the host's business; they were validated at start.
        let Settings { signalr, auth, cors, token_lifetime_secs, store: store_settings, currency, sync, .. } = settings;
        let recorder = if store_settings.recorder.enabled {
            Recorder::start(store.clone(), store_settings.recorder_config())
        } else {
            Recorder::disabled(store.clone())
        };
        // Connector credentials may be Key Vault references: read them through the secrets.
        let lookup_secrets = secrets.clone();
        let lookup =
            move |name: &str| meschain_secrets::settings::lookup(&lookup_secrets, name, |n| std::env::var(n).ok());
        let sync = crate::sync_runtime::SyncRuntime::new(std::sync::Arc::new(lookup), sync)
            .with_store(store.clone(), recorder.clone());
        let authenticator = Authenticator::new(auth).follow_rotation(&secrets);
        let policy = RetryPolicy::default();
        let http = SignalRRest::http_client(&policy);
        let (primary, rotating) = endpoint(&secrets, names::SIGNALR_CONNECTION_STRING, &signalr.connection, &http)?;
        let client_tokens = match primary.auth() {
            RequestAuth::AccessKey(signer) => ClientTokenSigner::Fixed(signer.clone()),
            // The same credential (and token cache) serves REST calls and key fetches.
            RequestAuth::Entra(token) => ClientTokenSigner::issued(&signalr.connection, token.clone(), http.clone()),
        };
        let mut endpoints = vec![primary];
        if let Some(fallback) = &signalr.fallback {
            endpoints.push(endpoint(&secrets, names::SIGNALR_FALLBACK_CONNECTION_STRING, fallback, &http)?.0);
        }
        // The secondary lends only its access key, to upstream checks.
        let secondary = match signalr.secondary_key {
            Some(_) => RotatingSignalRKey::follow(&secrets, names::SIGNALR_SECONDARY_CONNECTION_STRING)?,
            None => None,
        };
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
            currency,
            rotating_signalr_key: rotating,
            rotating_secondary_key: secondary.map(|k| k.access),
            secrets,
            sync,
        })
    }

    /// The access keys accepted on upstream signatures now: the primary, then the secondary,
    /// each with the key it replaced while a Key Vault rotation's overlap lasts.
    pub fn upstream_keys(&self) -> Vec<AccessKey> {
        let primary: Vec<AccessKey> = match &self.rotating_signalr_key {
            Some(keys) => keys.accepted().iter().map(|k| AccessKey::clone(k)).collect(),
            None => self.signalr.primary_key.iter().cloned().collect(),
        };
        let secondary: Vec<AccessKey> = match &self.rotating_secondary_key {
            Some(keys) => keys.accepted().iter().map(|k| AccessKey::clone(k)).collect(),
            None => self.signalr.secondary_key.iter().cloned().collect(),
        };
        primary.into_iter().chain(secondary).collect()
    }

    /// Starts what runs beside requests: the refresh of a service-issued signing key, and of
    /// the Key Vault secrets.
    pub fn start_background(&self) {
        self.client_tokens.start_refresh();
        self.secrets.spawn_refresh();
    }
}

/// The whole HTTP surface, for `main` and for tests (`tower::ServiceExt::oneshot`): the
/// protocol layer's routes over this app's functions ([`crate::functions`] makes
/// [`AppState`] the protocol's `Handler`).
pub fn app(state: AppState) -> Router {
    meschain_functions_protocol::router(Arc::new(state))
}
