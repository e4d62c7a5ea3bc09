//! HTTP triggers at `http://localhost:{port}/{routePrefix}/{route}`.
//!
//! Two paths, chosen with the host's rule: when `customHandler.enableForwardingHttpRequest` is on
//! and the function is exactly httpTrigger-in + http-out, the request is *forwarded* (same method,
//! headers, query, original `/api/...` path, body only when Content-Length > 0, redirects not
//! followed) and the handler's response is returned as is. Otherwise it is *wrapped*: `Data.req`
//! {Url, Method, Query, Headers, Params, Identities, Body} goes to `POST /{FunctionName}` and the
//! `http` output object {statusCode, body, headers} becomes the response.
//!
//! What both paths share is here, done once before either runs: matching the route (precedence,
//! methods, disabled functions), checking the function key against the route's auth level, and
//! CORS (preflights answered by the host, as the platform's front end does, so the handler never
//! sees them). The two paths are `forward` and `wrapped`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

use crate::config::{AuthLevel, Function, Trigger};
use crate::invoke::Invoker;
use crate::keys::Keys;
use crate::queue::Queues;
use crate::route::RouteTemplate;

mod forward;
mod wrapped;

pub use wrapped::{http_invocation_body, http_output_response};

/// Larger bodies get 413 (the real front end caps requests at 100 MB; a dev host needs less).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

struct HttpRoute {
    function: Arc<Function>,
    template: RouteTemplate,
    methods: Option<Vec<String>>,
    auth_level: AuthLevel,
    binding: String,
    forward: bool,
}

/// Everything the HTTP handler needs; shared by all requests.
pub struct HttpState {
    routes: Vec<HttpRoute>,
    prefix: String,
    invoker: Invoker,
    queues: Arc<Queues>,
    keys: Keys,
    cors: Vec<String>,
    cors_credentials: bool,
    public_base: String,
}

impl HttpState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        functions: &[Arc<Function>],
        prefix: &str,
        forwarding: bool,
        invoker: Invoker,
        queues: Arc<Queues>,
        keys: Keys,
        cors: Vec<String>,
        cors_credentials: bool,
        public_base: String,
    ) -> HttpState {
        let mut routes: Vec<HttpRoute> = functions
            .iter()
            .filter(|f| !f.disabled)
            .filter_map(|f| match &f.trigger {
                Trigger::Http { binding, route, methods, auth_level } => Some(HttpRoute {
                    function: f.clone(),
                    template: RouteTemplate::parse(route).expect("validated when loading"),
                    methods: methods.clone(),
                    auth_level: *auth_level,
                    binding: binding.clone(),
                    forward: forwarding && f.is_http_only(),
                }),
                _ => None,
            })
            .collect();
        routes.sort_by_key(|r| r.template.precedence());
        HttpState { routes, prefix: prefix.to_string(), invoker, queues, keys, cors, cors_credentials, public_base }
    }

    /// `(function name, url)` of each HTTP function, for the start-up banner.
    pub fn urls(&self) -> Vec<(String, String, AuthLevel)> {
        self.routes
            .iter()
            .map(|r| {
                let path = r.function.trigger_route().unwrap_or_default();
                let p = if self.prefix.is_empty() { path } else { format!("{}/{path}", self.prefix) };
                (r.function.name.clone(), format!("{}/{p}", self.public_base), r.auth_level)
            })
            .collect()
    }
}

impl Function {
    fn trigger_route(&self) -> Option<String> {
        match &self.trigger {
            Trigger::Http { route, .. } => Some(route.clone()),
            _ => None,
        }
    }
}

fn plain(status: StatusCode, msg: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(msg.to_string()))
        .expect("valid response")
}

/// Entry point for every request outside `/admin`.
pub async fn handle(state: Arc<HttpState>, req: Request<Body>) -> Response<Body> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let allowed_origin = origin.as_deref().and_then(|o| cors_allow(&state.cors, o));
    // Preflight: answered by the host itself, as the platform's CORS does.
    if req.method() == Method::OPTIONS
        && allowed_origin.is_some()
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut resp = Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).expect("valid");
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"),
        );
        if let Some(rh) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, rh.clone());
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        add_cors(&state, h, allowed_origin.as_deref());
        return resp;
    }
    let mut resp = route_request(&state, req).await;
    add_cors(&state, resp.headers_mut(), allowed_origin.as_deref());
    resp
}

fn cors_allow(cors: &[String], origin: &str) -> Option<String> {
    let origin = origin.trim_end_matches('/');
    if cors.iter().any(|c| c == "*") {
        return Some("*".to_string());
    }
    cors.iter().any(|c| c.eq_ignore_ascii_case(origin)).then(|| origin.to_string())
}

fn add_cors(state: &HttpState, h: &mut HeaderMap, allowed: Option<&str>) {
    let Some(allowed) = allowed else { return };
    if let Ok(v) = HeaderValue::from_str(allowed) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if allowed != "*" {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if state.cors_credentials {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

async fn route_request(state: &HttpState, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let rest = if state.prefix.is_empty() {
        Some(path.trim_start_matches('/'))
    } else {
        path.strip_prefix('/')
            .and_then(|p| p.strip_prefix(state.prefix.as_str()))
            .and_then(|p| if p.is_empty() { Some("") } else { p.strip_prefix('/') })
    };
    let Some(rest) = rest else { return plain(StatusCode::NOT_FOUND, "Not Found") };
    let rest = rest.trim_end_matches('/');
    let mut method_mismatch = false;
    for route in &state.routes {
        let Some(params) = route.template.matches(rest) else { continue };
        if let Some(methods) = &route.methods
            && !methods.iter().any(|m| m == req.method().as_str())
        {
            method_mismatch = true;
            continue;
        }
        if route.function.disabled {
            return plain(StatusCode::NOT_FOUND, "Not Found");
        }
        let level = match state.keys.authorize(req.uri().query(), req.headers()) {
            Some(level) => Some(level),
            None if route.auth_level == AuthLevel::Anonymous => None,
            None => {
                return plain(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized: a function key is required (?code= or x-functions-key)",
                );
            }
        };
        if route.auth_level == AuthLevel::Admin && level != Some(AuthLevel::Admin) {
            return plain(StatusCode::UNAUTHORIZED, "Unauthorized: the master key is required");
        }
        return if route.forward {
            forward::forward(state, req).await
        } else {
            wrapped::wrapped(state, route, req, params, level).await
        };
    }
    if method_mismatch {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    plain(StatusCode::NOT_FOUND, "Not Found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cors_allow() {
        let cors = vec!["http://localhost:5173".to_string()];
        assert_eq!(cors_allow(&cors, "http://localhost:5173"), Some("http://localhost:5173".into()));
        assert_eq!(cors_allow(&cors, "http://evil.example"), None);
        assert_eq!(cors_allow(&["*".to_string()], "http://x"), Some("*".into()));
    }
}
