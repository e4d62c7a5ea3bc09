//! What `meschain dev` adds to the local host's listener beside the functions:
//!
//! - the dashboard (`web/dist`, built by `npm run build` in `web/`) at `/`, its `config.json`
//!   made from the local settings, and its assets under `/assets/` (`dashboard`);
//! - the development "sign in as" endpoint, `POST /dev/token`, minting the same HS256 login
//!   tokens as `meschain token` (`sign_in`);
//! - `POST /admin/signalr/restart`, `GET /admin/signalr/keys` and
//!   `POST /admin/signalr/keys/regenerate`: the local SignalR service restarted, and its keys
//!   listed and regenerated, so tests can rehearse what Azure SignalR Service does to clients
//!   (`signalr_admin`).
//!
//! The `/admin/` routes need the local host's control header, as its queue routes do.
//!
//! Everything listens on loopback only, like the whole dev host. This module wires the routes
//! to one shared state and one body limit; each file beside it holds one of the three.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meschain_functions_host::config::Settings;
use meschain_secrets::Secrets;
use serde_json::{Value, json};
use tower_http::services::{ServeDir, ServeFile};

use crate::local_signalr::LocalSignalR;

mod dashboard;
mod sign_in;
mod signalr_admin;
#[cfg(test)]
mod testing;

pub use dashboard::dashboard_config;

/// No route here takes more than a small JSON object.
const MAX_BODY_BYTES: usize = 4 * 1024;

#[derive(Clone)]
struct DevState {
    settings: Arc<Settings>,
    /// The settings' Key Vault references, kept fresh: dev tokens use the current login secret.
    secrets: Secrets,
    config: Arc<Value>,
    signalr: Option<Arc<LocalSignalR>>,
}

/// The extra routes. `dist` is the built dashboard; `route_prefix` is host.json's HTTP route
/// prefix (where negotiate lives); `signalr` is absent when no local SignalR service runs.
pub fn router(
    settings: Arc<Settings>,
    secrets: Secrets,
    dist: &Path,
    route_prefix: &str,
    signalr: Option<Arc<LocalSignalR>>,
) -> Router {
    let config = Arc::new(dashboard_config(&settings.values, route_prefix));
    let dev_sign_in = config.get("devSignIn").is_some();
    let state = DevState { settings, secrets, config, signalr };
    let mut router = Router::new()
        .route("/config.json", get(dashboard::config_json))
        .route("/admin/signalr/restart", post(signalr_admin::restart_signalr))
        .route("/admin/signalr/keys", get(signalr_admin::list_keys))
        .route("/admin/signalr/keys/regenerate", post(signalr_admin::regenerate_key))
        .nest_service("/assets", ServeDir::new(dist.join("assets")));
    router = if dist.join("index.html").is_file() {
        router
            .route_service("/", ServeFile::new(dist.join("index.html")))
            .route_service("/index.html", ServeFile::new(dist.join("index.html")))
    } else {
        router.route("/", get(dashboard::not_built(dist.to_path_buf())))
    };
    if dev_sign_in {
        router = router.route("/dev/token", post(sign_in::dev_token_endpoint));
    }
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}

/// A refusal as the page reads it: `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}
