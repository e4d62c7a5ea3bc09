//! What `meschain dev` adds to the local host's listener beside the functions:
//!
//! - the dashboard (`web/dist`, built by `npm run build` in `web/`) at `/`, its `config.json`
//!   made from the local settings, and its assets under `/assets/`;
//! - the development "sign in as" endpoint, `POST /dev/token`, minting the same HS256 login
//!   tokens as `meschain token`. It exists only here: the deployed app is static files whose
//!   `config.json` names no such endpoint, and `negotiate` accepts these tokens only where
//!   `AUTH_JWT_SECRET` is the local one;
//! - `POST /admin/signalr/restart[?downMs=N]`: stops the local SignalR service, keeps it down for
//!   N ms (default 0, at most 60,000), and starts it again on the same port with the same keys,
//!   dropping every client connection, so tests can watch clients recover as they must when
//!   Azure SignalR Service restarts or fails over;
//! - `GET /admin/signalr/keys` and `POST /admin/signalr/keys/regenerate` with
//!   `{"keyType": "Primary" | "Secondary"}`: the local service's keys, listed and regenerated in
//!   the shape of ARM's `listKeys` and `regenerateKey`, so a key rotation can be rehearsed.
//!
//! The `/admin/` routes need the local host's control header, as its queue routes do.
//!
//! Everything listens on loopback only, like the whole dev host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meschain_functions_host::config::Settings;
use meschain_functions_host::control::CONTROL_HEADER;
use meschain_model::settings::{
    AUTH_AUDIENCE, AUTH_ISSUER, AUTH_JWT_SECRET, AUTH_OIDC_ISSUER, WEB_OIDC_CLIENT_ID, WEB_OIDC_RESOURCE,
    WEB_OIDC_SCOPE,
};
use meschain_secrets::Secrets;
use meschain_signalr_service::KeyType;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::services::{ServeDir, ServeFile};

use crate::dev_token;
use crate::local_signalr::LocalSignalR;

/// A user id or role longer than this is a mistake, not a name.
const MAX_NAME_CHARS: usize = 128;
const MAX_ROLES: usize = 16;
const MAX_BODY_BYTES: usize = 4 * 1024;

/// The longest outage the restart hook simulates.
const MAX_DOWN: Duration = Duration::from_secs(60);

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
        .route("/config.json", get(config_json))
        .route("/admin/signalr/restart", post(restart_signalr))
        .route("/admin/signalr/keys", get(list_keys))
        .route("/admin/signalr/keys/regenerate", post(regenerate_key))
        .nest_service("/assets", ServeDir::new(dist.join("assets")));
    router = if dist.join("index.html").is_file() {
        router
            .route_service("/", ServeFile::new(dist.join("index.html")))
            .route_service("/index.html", ServeFile::new(dist.join("index.html")))
    } else {
        router.route("/", get(not_built(dist.to_path_buf())))
    };
    if dev_sign_in {
        router = router.route("/dev/token", post(dev_token_endpoint));
    }
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}

fn not_built(dist: PathBuf) -> impl Fn() -> std::future::Ready<Response> + Clone {
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

async fn config_json(State(s): State<DevState>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(s.config.as_ref().clone())).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInAs {
    user: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// Checks a "sign in as" request; the message is fit for the page.
fn validate(req: &SignInAs) -> Result<(), String> {
    let user = req.user.trim();
    if user.is_empty() {
        return Err("the user id must not be empty".into());
    }
    if user.chars().count() > MAX_NAME_CHARS || user.chars().any(char::is_control) {
        return Err(format!("the user id must be at most {MAX_NAME_CHARS} printable characters"));
    }
    if req.roles.len() > MAX_ROLES {
        return Err(format!("at most {MAX_ROLES} roles"));
    }
    if req
        .roles
        .iter()
        .any(|r| r.trim().is_empty() || r.chars().count() > MAX_NAME_CHARS || r.chars().any(char::is_control))
    {
        return Err(format!("each role must have 1 to {MAX_NAME_CHARS} printable characters"));
    }
    Ok(())
}

async fn dev_token_endpoint(State(s): State<DevState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    // JSON only: a cross-site form cannot send it without a CORS preflight, which this host never approves.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send {\"user\": ..., \"roles\": [...]} as application/json");
    }
    let req: SignInAs = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("expected {{\"user\": string, \"roles\": string[]}}: {e}"));
        }
    };
    if let Err(why) = validate(&req) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let now = meschain_model::clock::now_secs();
    let roles: Vec<String> = req.roles.iter().map(|r| r.trim().to_string()).collect();
    match dev_token::mint(&s.settings, &s.secrets, req.user.trim(), &roles, now) {
        Ok(token) => axum::Json(json!({ "token": token, "expiresIn": dev_token::LIFETIME_SECS })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestartQuery {
    #[serde(default)]
    down_ms: u64,
}

async fn restart_signalr(
    State(s): State<DevState>,
    headers: HeaderMap,
    query: Result<Query<RestartQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let signalr = match local_signalr(&s, &headers) {
        Ok(signalr) => signalr,
        Err(refused) => return refused.into_response(),
    };
    let down = match query {
        Ok(Query(q)) if Duration::from_millis(q.down_ms) <= MAX_DOWN => Duration::from_millis(q.down_ms),
        _ => return error(StatusCode::BAD_REQUEST, format!("downMs must be 0 to {}", MAX_DOWN.as_millis())),
    };
    match signalr.restart(down).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Why a control request for the local SignalR service is refused.
enum Refused {
    NoControlHeader,
    NoLocalService,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NoControlHeader => error(StatusCode::FORBIDDEN, format!("missing header {CONTROL_HEADER}: 1")),
            Refused::NoLocalService => {
                error(StatusCode::CONFLICT, "no local SignalR service runs (the settings name a real instance)")
            }
        }
    }
}

/// The local SignalR service, for a request carrying the control header.
fn local_signalr<'a>(s: &'a DevState, headers: &HeaderMap) -> Result<&'a LocalSignalR, Refused> {
    if headers.get(CONTROL_HEADER).is_none_or(|v| v != "1") {
        return Err(Refused::NoControlHeader);
    }
    s.signalr.as_deref().ok_or(Refused::NoLocalService)
}

async fn list_keys(State(s): State<DevState>, headers: HeaderMap) -> Response {
    let signalr = match local_signalr(&s, &headers) {
        Ok(signalr) => signalr,
        Err(refused) => return refused.into_response(),
    };
    match signalr.keys().await {
        Ok(keys) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(keys)).into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// ARM's `regenerateKey` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegenerateKey {
    key_type: String,
}

async fn regenerate_key(State(s): State<DevState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let signalr = match local_signalr(&s, &headers) {
        Ok(signalr) => signalr,
        Err(refused) => return refused.into_response(),
    };
    let which = match serde_json::from_slice::<RegenerateKey>(&body).map(|r| r.key_type) {
        Ok(t) if t.eq_ignore_ascii_case("primary") => KeyType::Primary,
        Ok(t) if t.eq_ignore_ascii_case("secondary") => KeyType::Secondary,
        _ => return error(StatusCode::BAD_REQUEST, r#"expected {"keyType": "Primary" | "Secondary"}"#),
    };
    match signalr.regenerate(which).await {
        Ok(keys) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(keys)).into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::collections::BTreeMap;
    use tower::ServiceExt;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn local() -> Arc<Settings> {
        Arc::new(Settings {
            values: settings(&[
                ("AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("AUTH_ISSUER", "meschain-dev"),
                ("AUTH_AUDIENCE", "meschain-realtime"),
            ]),
            ..Default::default()
        })
    }

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

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn post_json(uri: &str, body: &str) -> Request<Body> {
        Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
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

    #[tokio::test]
    async fn test_dev_token_mints_a_login_token() {
        let app = router(local(), Secrets::empty(), Path::new("/nonexistent"), "api", None);
        let (status, _, body) = send(&app, post_json("/dev/token", r#"{"user":" alice ","roles":["admin"]}"#)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = serde_json::from_str::<Value>(&body).unwrap()["token"].as_str().unwrap().to_string();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&["meschain-realtime"]);
        v.set_issuer(&["meschain-dev"]);
        let key = jsonwebtoken::DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let claims = jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap().claims;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["roles"], json!(["admin"]));
    }

    #[tokio::test]
    async fn test_dev_token_refuses_bad_requests() {
        let app = router(local(), Secrets::empty(), Path::new("/nonexistent"), "api", None);
        for (body, want) in [
            (r#"{"user":"","roles":[]}"#, "must not be empty"),
            (r#"{"user":"a","roles":[""]}"#, "each role"),
            (r#"{"user":"a","roles":"admin"}"#, "expected"),
            (r#"{"user":"a","admin":true}"#, "expected"),
            ("not json", "expected"),
        ] {
            let (status, _, text) = send(&app, post_json("/dev/token", body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(text.contains(want), "{body}: {text}");
        }
        let long = format!(r#"{{"user":"{}"}}"#, "x".repeat(200));
        assert_eq!(send(&app, post_json("/dev/token", &long)).await.0, StatusCode::BAD_REQUEST);
        let form = Request::post("/dev/token")
            .header("content-type", "text/plain")
            .body(Body::from(r#"{"user":"a"}"#))
            .unwrap();
        assert_eq!(send(&app, form).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let huge = format!(r#"{{"user":"a","roles":["{}"]}}"#, "r".repeat(10_000));
        assert_eq!(send(&app, post_json("/dev/token", &huge)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn test_no_dev_token_without_the_local_secret() {
        let s = Settings {
            values: settings(&[("AUTH_OIDC_ISSUER", "https://x"), ("WEB_OIDC_CLIENT_ID", "abc")]),
            ..Default::default()
        };
        let app = router(Arc::new(s), Secrets::empty(), Path::new("/nonexistent"), "api", None);
        let (status, _, _) = send(&app, post_json("/dev/token", r#"{"user":"a","roles":[]}"#)).await;
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED, "{status}");
    }

    async fn local_service() -> Arc<LocalSignalR> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Arc::new(LocalSignalR::start(Default::default(), listener).await.unwrap())
    }

    fn control(req: axum::http::request::Builder) -> axum::http::request::Builder {
        req.header(CONTROL_HEADER, "1")
    }

    #[tokio::test]
    async fn test_restart_needs_the_control_header_and_a_sane_outage() {
        let signalr = local_service().await;
        let app = router(local(), Secrets::empty(), Path::new("/nonexistent"), "api", Some(signalr.clone()));
        let bare = Request::post("/admin/signalr/restart").body(Body::empty()).unwrap();
        assert_eq!(send(&app, bare).await.0, StatusCode::FORBIDDEN);
        let ok = control(Request::post("/admin/signalr/restart?downMs=20")).body(Body::empty()).unwrap();
        assert_eq!(send(&app, ok).await.0, StatusCode::NO_CONTENT);
        assert!(signalr.connection_string().await.is_some(), "running again after the restart");
        for bad in ["downMs=-1", "downMs=60001", "downMs=x"] {
            let req = control(Request::post(format!("/admin/signalr/restart?{bad}"))).body(Body::empty()).unwrap();
            assert_eq!(send(&app, req).await.0, StatusCode::BAD_REQUEST, "{bad}");
        }
        let none = router(local(), Secrets::empty(), Path::new("/nonexistent"), "api", None);
        let req = control(Request::post("/admin/signalr/restart")).body(Body::empty()).unwrap();
        assert_eq!(send(&none, req).await.0, StatusCode::CONFLICT);
        signalr.shutdown().await;
    }

    #[tokio::test]
    async fn test_keys_listed_and_regenerated_like_arm() {
        let signalr = local_service().await;
        let app = router(local(), Secrets::empty(), Path::new("/nonexistent"), "api", Some(signalr.clone()));
        assert_eq!(
            send(&app, Request::get("/admin/signalr/keys").body(Body::empty()).unwrap()).await.0,
            StatusCode::FORBIDDEN
        );
        let (status, headers, body) =
            send(&app, control(Request::get("/admin/signalr/keys")).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let before: Value = serde_json::from_str(&body).unwrap();
        let regenerate = |body: &str| {
            control(Request::post("/admin/signalr/keys/regenerate"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        let (status, _, body) = send(&app, regenerate(r#"{"keyType":"Secondary"}"#)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let after: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(after["primaryKey"], before["primaryKey"]);
        assert_ne!(after["secondaryKey"], before["secondaryKey"]);
        let secondary = after["secondaryKey"].as_str().unwrap();
        assert!(after["secondaryConnectionString"].as_str().unwrap().contains(secondary));
        for bad in [r#"{"keyType":"Tertiary"}"#, r#"{}"#, "nope", r#"{"keyType":"Primary","x":1}"#] {
            assert_eq!(send(&app, regenerate(bad)).await.0, StatusCode::BAD_REQUEST, "{bad}");
        }
        signalr.shutdown().await;
    }
}
