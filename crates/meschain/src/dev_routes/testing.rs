//! What the tests of the three route files share: settings, the local identity settings under
//! which `POST /dev/token` is routed, and one request sent through the router.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use meschain_functions_host::config::Settings;
use tower::ServiceExt;

pub fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Local settings: a login secret, issuer and audience, as `local.settings.example.json` names.
pub fn local() -> Arc<Settings> {
    Arc::new(Settings {
        values: settings(&[
            ("AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("AUTH_ISSUER", "meschain-dev"),
            ("AUTH_AUDIENCE", "meschain-realtime"),
        ]),
        ..Default::default()
    })
}

/// Sends `req` through `app`: status, headers, body as text.
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}
