//! The HTTP front: routes, body limits and CORS as the service does it for browsers (origin
//! echoed, credentials allowed, any method and header: the browser client sends
//! `withCredentials` plus `X-SignalR-User-Agent`/`X-Requested-With`, §C.3).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};

use crate::service::Service;
use crate::{client, rest};

/// REST bodies above this are refused with 413 (§D.6).
pub const MAX_REST_BODY: usize = 1024 * 1024;

pub fn app(svc: Arc<Service>) -> Router {
    let body_limit = svc.config.max_message_size.max(MAX_REST_BODY);
    Router::new()
        .route("/client/negotiate", post(client::negotiate))
        .route("/client", any(client::transport))
        .route("/client/", any(client::transport))
        .route("/api/{*rest}", any(rest::handle))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(cors))
        .with_state(svc)
}

async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let requested_headers = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    let requested_method = request.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD).cloned();
    let mut response = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if preflight {
            if let Some(m) = requested_method {
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m);
            }
            if let Some(rh) = requested_headers {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, rh);
            }
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    response
}
