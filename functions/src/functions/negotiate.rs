//! `negotiate`: who is calling, which hub they may use, and a SignalR client token for it.
//!
//! The browser's `@microsoft/signalr` client POSTs here first; our `{url, accessToken}` answer
//! redirects it to the SignalR service (reference §B.6). The caller's identity comes only from
//! a verified credential ([`crate::auth`]); headers or query parameters that claim a user or a
//! role are never read. The hub is chosen by role ([`crate::hubs`]), and the token carries the
//! user id (`asrs.s.uid`, `nameid`) and roles (`role`) so that the service can address the user
//! and forward the roles to our upstream, where hub methods are authorised again.

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use meschain_signalr::token::{ClientClaims, MintError};
use serde_json::json;

use super::HttpBinding;
use crate::app::AppState;
use crate::auth::AuthError;
use crate::host::InvocationContext;
use crate::host::http::{HttpRequest, HttpResponse};
use crate::hubs::{self, HubChoiceError};

pub const BINDING: HttpBinding =
    HttpBinding { route: "negotiate", request: "req", response: "res", methods: &[Method::POST, Method::OPTIONS] };

const ALLOWED_METHODS: &str = "POST, OPTIONS";

pub async fn run(state: &AppState, ctx: &mut InvocationContext, req: &HttpRequest) -> HttpResponse {
    if req.method == Method::OPTIONS {
        return state.cors.preflight(req, ALLOWED_METHODS);
    }
    let mut resp = if req.method == Method::POST {
        negotiate(state, ctx, req).await
    } else {
        let mut r = HttpResponse::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "negotiate accepts POST");
        r.headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        r
    };
    // Tokens are per caller and short-lived: no cache may keep them.
    resp.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    state.cors.decorate(req, &mut resp);
    resp
}

async fn negotiate(state: &AppState, ctx: &mut InvocationContext, req: &HttpRequest) -> HttpResponse {
    let identity = match state.authenticator.authenticate(&req.headers).await {
        Ok(identity) => identity,
        Err(e) => {
            ctx.log(format!("negotiate refused: {}", e.description()));
            return unauthorized(&e);
        }
    };

    let mut hubs_asked = req.query_all("hub");
    let requested = hubs_asked.next();
    if hubs_asked.next().is_some() {
        return HttpResponse::error(StatusCode::BAD_REQUEST, "invalid_request", "hub may be given at most once");
    }
    let hub = match hubs::choose(&identity.roles, requested) {
        Ok(hub) => hub,
        Err(HubChoiceError::UnknownHub) => {
            return HttpResponse::error(
                StatusCode::BAD_REQUEST,
                "unknown_hub",
                "hub must be one of MesChainAdminHub, MesChainMarketplaceHub, MesChainDashboardHub",
            );
        }
        Err(HubChoiceError::Forbidden(hub)) => {
            ctx.log(format!("negotiate refused: user {} may not use {hub}", identity.user_id));
            return HttpResponse::error(
                StatusCode::FORBIDDEN,
                "forbidden_hub",
                &format!("your role does not allow {hub}"),
            );
        }
    };

    let cs = &state.signalr.connection;
    let claims = ClientClaims { user_id: Some(&identity.user_id), roles: &identity.roles };
    let minted = state.client_tokens.with_key(|key| {
        key.client_token(&cs.client_audience(hub.name()), &claims, crate::app::now(), state.token_lifetime_secs)
    });
    let token = match minted {
        // Entra ID: the service has not issued us a signing key yet (or could not be reached).
        None => {
            let mut r = HttpResponse::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "signalr_unavailable",
                "the real-time service cannot issue access tokens right now; try again shortly",
            );
            r.headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
        Some(Ok(t)) => t,
        Some(Err(MintError::TooLong(_))) => {
            return HttpResponse::error(
                StatusCode::BAD_REQUEST,
                "identity_too_large",
                "your identity carries too many roles for a SignalR access token",
            );
        }
        Some(Err(MintError::Signing)) => {
            return HttpResponse::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "could not issue an access token",
            );
        }
    };
    ctx.log(format!("negotiated {hub} for user {}", identity.user_id));
    HttpResponse::json(StatusCode::OK, &json!({ "url": cs.client_url(hub.name()), "accessToken": token }))
}

fn unauthorized(e: &AuthError) -> HttpResponse {
    let mut resp = HttpResponse::error(StatusCode::UNAUTHORIZED, "invalid_token", e.description());
    // `description()` is a fixed ASCII string without quotes, so it fits in the header.
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", e.description());
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers.insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
