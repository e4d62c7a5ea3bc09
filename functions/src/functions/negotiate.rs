//! `negotiate`: who is calling, which hub they may use, and a SignalR client token for it.
//!
//! The browser's `@microsoft/signalr` client POSTs here first; our `{url, accessToken}` answer
//! redirects it to the SignalR service (https://learn.microsoft.com/azure/azure-signalr/signalr-concept-client-negotiation). The caller's identity comes only from
//! a verified credential ([`crate::auth`]); headers or query parameters that claim a user or a
//! role are never read. The hub is chosen by role ([`crate::hubs`]), and the token carries the
//! user id (`asrs.s.uid`, `nameid`) and roles (`role`) so that the service can address the user
//! and forward the roles to our upstream, where hub methods are authorised again.
//!
//! Every refusal is a [`NegotiateError`], turned into its status and JSON body in one place.

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use std::sync::Arc;

use meschain_functions_protocol::{Context, HttpBinding, HttpRequest, HttpResponse};
use meschain_model::clock::Clock;
use meschain_signalr::connection_string::ConnectionString;
use meschain_signalr::token::{self, ClientClaims, MintError};
use meschain_store::Recorder;
use std::collections::BTreeMap;

use crate::auth::{AuthError, Authenticator, Identity};
use crate::client_tokens::ClientTokenSigner;
use crate::cors::CorsPolicy;
use crate::hubs::{self, Hub, HubChoiceError};
use crate::sync_runtime::{CatalogStatus, SyncRuntime};
use meschain_model::marketplace::SyncOperation;

pub const BINDING: HttpBinding =
    HttpBinding { route: "negotiate", request: "req", response: "res", methods: &[Method::POST, Method::OPTIONS] };

const ALLOWED_METHODS: &str = "POST, OPTIONS";

/// What `negotiate` needs: who may call from a browser, who the caller is, how client tokens
/// are minted (the instance, its signing key, their lifetime), where analytics go, and the
/// clock tokens are dated with.
pub struct Deps {
    cors: CorsPolicy,
    identity: Authenticator,
    tokens: TokenMinter,
    recorder: Recorder,
    /// Whether stock and price syncs can read the catalogue, for `syncOperations`.
    sync: Arc<SyncRuntime>,
    clock: Arc<dyn Clock>,
    /// Admin, marketplace and dashboard hub, made once: they follow from the connection string.
    addresses: [HubAddresses; 3],
}

/// Where a hub's clients connect, and the audience of their tokens.
struct HubAddresses {
    url: String,
    audience: String,
}

/// Mints SignalR client tokens for one instance.
pub struct TokenMinter {
    pub connection: ConnectionString,
    pub signer: ClientTokenSigner,
    pub lifetime_secs: u64,
}

impl Deps {
    pub fn new(
        cors: CorsPolicy,
        identity: Authenticator,
        tokens: TokenMinter,
        recorder: Recorder,
        sync: Arc<SyncRuntime>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let at = |hub: Hub| HubAddresses {
            url: tokens.connection.client_url(hub.name()),
            audience: tokens.connection.client_audience(hub.name()),
        };
        let addresses = [at(Hub::Admin), at(Hub::Marketplace), at(Hub::Dashboard)];
        Deps { cors, identity, tokens, recorder, sync, clock, addresses }
    }

    fn addresses(&self, hub: Hub) -> &HubAddresses {
        let [admin, marketplace, dashboard] = &self.addresses;
        match hub {
            Hub::Admin => admin,
            Hub::Marketplace => marketplace,
            Hub::Dashboard => dashboard,
        }
    }
}

/// negotiate's answer. What the SignalR client reads (`url`, `accessToken`), and beside it the
/// sync operations this caller's hub can start, so the page offers exactly those and keeps no
/// list of its own. For the hubs that start syncs, also what the page shows beside the buttons:
/// whether the catalogue is there (and why not) and how each marketplace would sync.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    url: &'a str,
    access_token: &'a str,
    sync_operations: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<CatalogStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connectors: Option<&'a BTreeMap<&'static str, &'static str>>,
}

/// Why negotiate refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NegotiateError {
    #[error("negotiate accepts POST")]
    MethodNotAllowed,
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The verified user id or a role could not travel intact through the service
    /// ([`token::carries_intact`]).
    #[error("your user id or a role contains a control character or \", \", which a SignalR access token cannot carry")]
    UnrepresentableIdentity,
    #[error("hub may be given at most once")]
    HubRepeated,
    #[error("hub must be one of MesChainAdminHub, MesChainMarketplaceHub, MesChainDashboardHub")]
    UnknownHub,
    #[error("your role does not allow {0}")]
    ForbiddenHub(Hub),
    /// Entra ID: the service has not issued us a signing key yet (or could not be reached).
    #[error("the real-time service cannot issue access tokens right now; try again shortly")]
    SigningKeyUnavailable,
    #[error("your identity carries too many roles for a SignalR access token")]
    IdentityTooLarge,
    #[error("could not issue an access token")]
    Signing,
}

impl From<HubChoiceError> for NegotiateError {
    fn from(e: HubChoiceError) -> Self {
        match e {
            HubChoiceError::UnknownHub => NegotiateError::UnknownHub,
            HubChoiceError::Forbidden(hub) => NegotiateError::ForbiddenHub(hub),
        }
    }
}

impl From<MintError> for NegotiateError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::TooLong(_) => NegotiateError::IdentityTooLarge,
            MintError::UnsafeClaim => NegotiateError::UnrepresentableIdentity,
            MintError::Signing => NegotiateError::Signing,
        }
    }
}

impl From<NegotiateError> for HttpResponse {
    fn from(e: NegotiateError) -> Self {
        let (status, code) = match &e {
            NegotiateError::Auth(auth) => return HttpResponse::from(*auth),
            NegotiateError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            NegotiateError::UnrepresentableIdentity => (StatusCode::BAD_REQUEST, "unrepresentable_identity"),
            NegotiateError::HubRepeated => (StatusCode::BAD_REQUEST, "invalid_request"),
            NegotiateError::UnknownHub => (StatusCode::BAD_REQUEST, "unknown_hub"),
            NegotiateError::ForbiddenHub(_) => (StatusCode::FORBIDDEN, "forbidden_hub"),
            NegotiateError::SigningKeyUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "signalr_unavailable"),
            NegotiateError::IdentityTooLarge => (StatusCode::BAD_REQUEST, "identity_too_large"),
            NegotiateError::Signing => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        };
        let mut resp = HttpResponse::error(status, code, &e.to_string());
        match e {
            NegotiateError::MethodNotAllowed => {
                resp.headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            }
            NegotiateError::SigningKeyUnavailable => {
                resp.headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

pub async fn run(deps: &Deps, ctx: &mut Context, req: &HttpRequest) -> HttpResponse {
    if req.method == Method::OPTIONS {
        return deps.cors.preflight(req, ALLOWED_METHODS);
    }
    let started = std::time::Instant::now();
    let result = if req.method == Method::POST {
        negotiate(deps, ctx, req).await
    } else {
        Err(NegotiateError::MethodNotAllowed)
    };
    record(deps, &result, started.elapsed());
    let mut resp = result.map(|(resp, _, _)| resp).unwrap_or_else(HttpResponse::from);
    // Tokens are per caller and short-lived: no cache may keep them.
    resp.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    deps.cors.decorate(req, &mut resp);
    resp
}

/// Counters, latency and the negotiate event for the dashboard: a few atomic adds, written in
/// the background ([`meschain_store::Recorder::negotiated`]).
fn record(deps: &Deps, result: &Result<(HttpResponse, Hub, String), NegotiateError>, took: std::time::Duration) {
    match result {
        Ok((_, hub, user)) => deps.recorder.negotiated(hub.name(), user, took, deps.clock.now_ms()),
        // The error's own words (never a token: they name the problem, not the input).
        Err(e) => deps.recorder.negotiate_failed(&e.to_string(), took, deps.clock.now_ms()),
    }
}

async fn negotiate(
    deps: &Deps,
    ctx: &mut Context,
    req: &HttpRequest,
) -> Result<(HttpResponse, Hub, String), NegotiateError> {
    let identity = deps.identity.authenticate(&req.headers).await.inspect_err(|e| {
        ctx.log(format_args!("negotiate refused: {}", e.description()));
    })?;
    check_representable(&identity).inspect_err(|_| {
        ctx.log(format_args!("negotiate refused: user id {} or a role cannot be carried in a token", identity.user_id));
    })?;

    let mut hubs_asked = req.query_all("hub");
    let requested = hubs_asked.next();
    if hubs_asked.next().is_some() {
        return Err(NegotiateError::HubRepeated);
    }
    let hub = hubs::choose(&identity.roles, requested).inspect_err(|e| {
        if let HubChoiceError::Forbidden(hub) = e {
            ctx.log(format_args!("negotiate refused: user {} may not use {hub}", identity.user_id));
        }
    })?;

    let TokenMinter { signer, lifetime_secs, .. } = &deps.tokens;
    let addresses = deps.addresses(hub);
    let claims = ClientClaims { user_id: Some(&identity.user_id), roles: &identity.roles };
    let now = deps.clock.now_secs();
    let token = signer
        .with_key(|key| key.client_token(&addresses.audience, &claims, now, *lifetime_secs))
        .ok_or(NegotiateError::SigningKeyUnavailable)??;
    ctx.log(format_args!("negotiated {hub} for user {}", identity.user_id));
    let mut answer = Answer {
        url: &addresses.url,
        access_token: &token,
        sync_operations: Vec::new(),
        catalog: None,
        connectors: None,
    };
    if matches!(hub, Hub::Admin | Hub::Marketplace) {
        // Read each time: the catalogue's settings may be a Key Vault reference that rotates.
        let catalog = deps.sync.catalog_status();
        answer.sync_operations =
            SyncOperation::ALL.iter().filter(|o| o.startable_from_hub(catalog.configured)).map(|o| o.name()).collect();
        answer.catalog = Some(catalog);
        answer.connectors = Some(deps.sync.connector_modes());
    }
    let resp = HttpResponse::json_of(StatusCode::OK, &answer);
    Ok((resp, hub, identity.user_id))
}

/// Checked before anything else so such an id is never used, e.g. in a log line.
fn check_representable(identity: &Identity) -> Result<(), NegotiateError> {
    if token::carries_intact(&identity.user_id) && identity.roles.iter().all(|r| token::carries_intact(r)) {
        Ok(())
    } else {
        Err(NegotiateError::UnrepresentableIdentity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(user_id: &str, roles: &[&str]) -> Identity {
        Identity {
            user_id: user_id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            source: crate::auth::IdentitySource::BearerToken,
        }
    }

    #[test]
    fn test_identity_the_service_cannot_carry() {
        assert!(check_representable(&identity("alice", &["admin"])).is_ok());
        for (user, roles) in
            [("eve\r\nx", &["viewer"][..]), ("eve\0", &[]), ("eve, role: admin", &[]), ("eve", &["a\nb"])]
        {
            assert_eq!(check_representable(&identity(user, roles)), Err(NegotiateError::UnrepresentableIdentity));
        }
    }

    #[test]
    fn test_error_statuses() {
        let status = |e: NegotiateError| HttpResponse::from(e).status;
        assert_eq!(status(NegotiateError::Auth(AuthError::Expired)), StatusCode::UNAUTHORIZED);
        assert_eq!(status(NegotiateError::Auth(AuthError::KeySourceUnavailable)), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(NegotiateError::UnrepresentableIdentity), StatusCode::BAD_REQUEST);
        assert_eq!(status(NegotiateError::ForbiddenHub(Hub::Admin)), StatusCode::FORBIDDEN);
        assert_eq!(status(NegotiateError::SigningKeyUnavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(MintError::TooLong(5000).into()), StatusCode::BAD_REQUEST);
    }
}
