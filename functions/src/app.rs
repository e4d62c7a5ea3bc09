//! The application: each function's dependencies, built once at start from the settings, and
//! the table ([`AppState`], the protocol's [`Handler`]) that hands each function its own.
//!
//! Functions never see this state: each takes a `Deps` of its module (what it reads, what it
//! writes, its clock), so a function's signature says what it needs and a test of one function
//! builds only that. What two functions share (the SignalR REST client, the store, the
//! recorder, the dashboard snapshot) is built here once and handed to both.

use std::sync::Arc;

use axum::Router;
use http::StatusCode;

use meschain_functions_protocol::{Context, Handler, HttpRequest, HttpResponse, InvocationRequest, TriggerFailure};
use meschain_model::clock::{Clock, SystemClock};
use meschain_model::settings as names;
use meschain_secrets::{Derived, SecretValue, Secrets};
use meschain_signalr::AccessKey;
use meschain_signalr::connection_string::{ConnectionString, Credential};
use meschain_signalr::token::SigningKey;

use meschain_store::{Recorder, Store};

use crate::auth::Authenticator;
use crate::client_tokens::ClientTokenSigner;
use crate::dashboard::Snapshots;
use crate::functions::connection_events::upstream::UpstreamKeys;
use crate::functions::{Function, admin_broadcast, catalog_sync, connection_events, marketplace_sync, negotiate};
use crate::settings::Settings;
use crate::signalr_rest::entra::EntraError;
use crate::signalr_rest::{Endpoint, RequestAuth, SignalRRest, retry::RetryPolicy};

/// The function table: each function's dependencies, and what runs beside requests.
pub struct AppState {
    negotiate: negotiate::Deps,
    connection_events: connection_events::Deps,
    admin_broadcast: admin_broadcast::Deps,
    marketplace_sync: marketplace_sync::Deps,
    catalog_sync: catalog_sync::Deps,
    /// Signs client access tokens: the primary access key, or the key the service issues to
    /// our Entra identity (fetched by [`AppState::start_background`]).
    client_tokens: ClientTokenSigner,
    authenticator: Authenticator,
    rest: Arc<SignalRRest>,
    /// Analytics events, counters and presence changes, written in the background; flushed
    /// by `main` at shutdown.
    recorder: Recorder,
    /// Settings read from Key Vault, refreshed in the background.
    secrets: Secrets,
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
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let recorder = if store_settings.recorder.enabled {
            Recorder::start(store.clone(), store_settings.recorder_config())
        } else {
            Recorder::disabled(store.clone())
        };
        // Connector credentials may be Key Vault references: read them through the secrets.
        let lookup_secrets = secrets.clone();
        let lookup =
            move |name: &str| meschain_secrets::settings::lookup(&lookup_secrets, name, |n| std::env::var(n).ok());
        let sync = Arc::new(crate::sync_runtime::SyncRuntime::new(Arc::new(lookup), sync));
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
        // Upstream signatures: each key as it rotates when it follows Key Vault, else as set.
        // The secondary lends only its access key, to these checks.
        let primary_key = rotating.or_else(|| signalr.primary_key.clone().map(Derived::fixed));
        let secondary_key = match &signalr.secondary_key {
            Some(fixed) => Some(
                RotatingSignalRKey::follow(&secrets, names::SIGNALR_SECONDARY_CONNECTION_STRING)?
                    .map_or_else(|| Derived::fixed(fixed.clone()), |keys| keys.access),
            ),
            None => None,
        };
        let upstream_keys = UpstreamKeys::new(primary_key.into_iter().chain(secondary_key).collect(), secrets.clone());
        let rest = Arc::new(SignalRRest::with_http(endpoints, policy, http));
        let snapshots = Arc::new(Snapshots::new(
            store.clone(),
            rest.clone(),
            recorder.clone(),
            secrets.clone(),
            clock.now_ms(),
            currency,
        ));
        let tokens = negotiate::TokenMinter {
            connection: signalr.connection,
            signer: client_tokens.clone(),
            lifetime_secs: token_lifetime_secs,
        };
        Ok(AppState {
            negotiate: negotiate::Deps::new(
                cors,
                authenticator.clone(),
                tokens,
                recorder.clone(),
                sync.clone(),
                clock.clone(),
            ),
            connection_events: connection_events::Deps::new(
                upstream_keys,
                rest.clone(),
                store.clone(),
                snapshots.clone(),
                sync.clone(),
                recorder.clone(),
                clock.clone(),
            ),
            admin_broadcast: admin_broadcast::Deps::new(snapshots, rest.clone(), recorder.clone(), clock.clone()),
            catalog_sync: catalog_sync::Deps::new(sync.clone(), clock.clone()),
            marketplace_sync: marketplace_sync::Deps::new(sync, store, recorder.clone(), rest.clone(), clock),
            client_tokens,
            authenticator,
            rest,
            recorder,
            secrets,
        })
    }

    /// The access keys accepted on upstream signatures now: the primary, then the secondary,
    /// each with the key it replaced while a Key Vault rotation's overlap lasts.
    pub fn upstream_keys(&self) -> Vec<AccessKey> {
        self.connection_events.upstream_keys()
    }

    /// Who callers are (login tokens), for `main` to load the provider's keys early.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// The client-token signer negotiate uses.
    pub fn client_tokens(&self) -> &ClientTokenSigner {
        &self.client_tokens
    }

    /// The SignalR REST client the functions share.
    pub fn rest(&self) -> &SignalRRest {
        &self.rest
    }

    /// The analytics recorder, for `main` to flush at shutdown.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Starts what runs beside requests: the refresh of a service-issued signing key, and of
    /// the Key Vault secrets.
    pub fn start_background(&self) {
        self.client_tokens.start_refresh();
        self.secrets.spawn_refresh();
    }
}

/// Each function called with its own dependencies.
impl Handler for AppState {
    type Function = Function;

    async fn call_http(&self, function: Function, ctx: &mut Context, req: HttpRequest) -> HttpResponse {
        match function {
            Function::Negotiate => negotiate::run(&self.negotiate, ctx, &req).await,
            Function::ConnectionEvents => connection_events::run(&self.connection_events, ctx, &req).await,
            // The server routes only functions with an HTTP binding here.
            Function::AdminBroadcast | Function::MarketplaceSync | Function::CatalogSync => {
                HttpResponse::error(StatusCode::NOT_FOUND, "not_found", "not an HTTP function")
            }
        }
    }

    async fn call_trigger(
        &self,
        function: Function,
        ctx: &mut Context,
        payload: &InvocationRequest,
    ) -> Result<(), TriggerFailure> {
        match function {
            Function::AdminBroadcast => admin_broadcast::run(&self.admin_broadcast, ctx, payload).await,
            Function::MarketplaceSync => marketplace_sync::run(&self.marketplace_sync, ctx, payload).await,
            Function::CatalogSync => catalog_sync::run(&self.catalog_sync, ctx, payload).await,
            Function::Negotiate | Function::ConnectionEvents => {
                Err(TriggerFailure::bad_input("this function is HTTP-triggered".into()))
            }
        }
    }
}

/// The whole HTTP surface, for `main` and for tests (`tower::ServiceExt::oneshot`): the
/// protocol layer's routes over this app's functions.
pub fn app(state: AppState) -> Router {
    meschain_functions_protocol::router(Arc::new(state))
}
