//! The dashboard (`web/dist`, built by `npm run build` in `web/`) at `/`, its `config.json`
//! made from the local settings, and its assets under `/assets/`.
//!
//! The page learns at run time, from `config.json` beside it, where the API is and how to sign
//! in, so one build serves both here and in Azure, where the `dashboardConfig` output of the
//! infrastructure template is written as that file. Locally it is made from the same settings
//! the functions read, offering only what can work with them.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use meschain_model::settings::{
    AUTH_AUDIENCE, AUTH_ISSUER, AUTH_JWT_SECRET, AUTH_OIDC_ISSUER, WEB_OIDC_CLIENT_ID, WEB_OIDC_RESOURCE,
    WEB_OIDC_SCOPE,
};
use serde_json::{Value, json};

use super::DevState;

pub(super) fn not_built(dist: PathBuf) -> impl Fn() -> std::future::Ready<Response> + Clone {
    move || {
        std::future::ready(
            (
                StatusCode::NOT_FOUND,
                format!(
                    "The dashboard is not built ({} is missing): run `npm ci && npm run build` in web/ (scripts/run.sh does).\n",
                    dist.join("index.html").display()
                ),
            )
                .into_response(),
        )
    }
}

/// The page's config.json: where the API is and which sign-in methods exist, from the settings.
pub fn dashboard_config(values: &std::collections::BTreeMap<String, String>, route_prefix: &str) -> Value {
    let set = |name: &str| values.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let api_base = if route_prefix.is_empty() { "/".to_string() } else { format!("/{route_prefix}") };
    let mut config = json!({ "apiBase": api_base });
    // Development tokens are only worth offering where negotiate can verify them.
    if [AUTH_JWT_SECRET, AUTH_ISSUER, AUTH_AUDIENCE].iter().all(|s| set(s).is_some()) {
        config["devSignIn"] = json!("/dev/token");
    }
    if let (Some(authority), Some(client_id)) = (set(AUTH_OIDC_ISSUER), set(WEB_OIDC_CLIENT_ID)) {
        let mut oidc = json!({
            "authority": authority,
            "clientId": client_id,
            "scope": set(WEB_OIDC_SCOPE).unwrap_or("openid profile"),
        });
        if let Some(resource) = set(WEB_OIDC_RESOURCE) {
            oidc["resource"] = json!(resource);
        }
        config["oidc"] = oidc;
    }
    config
}

pub(super) async fn config_json(State(s): State<DevState>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(s.config.as_ref().clone())).into_response()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::body::Body;
    use axum::http::Request;
    use meschain_secrets::Secrets;

    use super::*;
    use crate::dev_routes::router;
    use crate::dev_routes::testing::{local, send, settings};

    fn dist() -> PathBuf {
        let d = std::env::temp_dir().join(format!("meschain-dist-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(d.join("assets")).unwrap();
        std::fs::write(d.join("index.html"), "<!doctype html><title>MesChain</title>").unwrap();
        std::fs::write(d.join("assets/app.js"), "console.log(1)").unwrap();
        d
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    }

    #[test]
    fn test_config_offers_what_the_settings_allow() {
        let local = dashboard_config(&local().values, "api");
        assert_eq!(local, json!({ "apiBase": "/api", "devSignIn": "/dev/token" }));
        let oidc_only = dashboard_config(
            &settings(&[
                ("AUTH_OIDC_ISSUER", "https://login.example/t/v2.0"),
                ("WEB_OIDC_CLIENT_ID", "abc"),
                ("WEB_OIDC_RESOURCE", "api://x"),
            ]),
            "",
        );
        assert_eq!(
            oidc_only,
            json!({ "apiBase": "/", "oidc": { "authority": "https://login.example/t/v2.0", "clientId": "abc", "scope": "openid profile", "resource": "api://x" } })
        );
        // An issuer without a client id cannot sign anyone in: no OIDC section rather than a broken one.
        assert_eq!(
            dashboard_config(&settings(&[("AUTH_OIDC_ISSUER", "https://x")]), "api"),
            json!({ "apiBase": "/api" })
        );
    }

    #[tokio::test]
    async fn test_serves_the_page_config_and_assets() {
        let d = dist();
        let app = router(local(), Secrets::empty(), &d, "api", None);
        let (status, headers, body) = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("MesChain"));
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let (status, _, body) = send(&app, Request::get("/assets/app.js").body(Body::empty()).unwrap()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "console.log(1)"));
        let (status, _, _) = send(&app, Request::get("/assets/../index.html").body(Body::empty()).unwrap()).await;
        assert_ne!(status, StatusCode::OK, "no path traversal out of assets/");
        let (status, headers, body) = send(&app, Request::get("/config.json").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["devSignIn"], "/dev/token");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[tokio::test]
    async fn test_unbuilt_dashboard_says_how_to_build_it() {
        let app = router(local(), Secrets::empty(), Path::new("/nonexistent/dist"), "api", None);
        let (status, _, body) = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("npm run build"), "{body}");
    }
}
