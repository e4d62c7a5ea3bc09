//! The development "sign in as" endpoint, `POST /dev/token`, minting the same HS256 login
//! tokens as `meschain token` for any user id and roles the page asks for.
//!
//! It exists only here: the deployed app is static files whose `config.json` names no such
//! endpoint, and `negotiate` accepts these tokens only where `AUTH_JWT_SECRET` is the local one.
//! Even here it is routed only when the settings can verify what it mints (the page's
//! `config.json` then offers it). It takes JSON only, so that a cross-site form cannot reach it
//! without a CORS preflight, and bounds names and roles so that a mistake is refused with a
//! message the page can show rather than minted.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{DevState, error};
use crate::dev_token;

/// A user id or role longer than this is a mistake, not a name.
const MAX_NAME_CHARS: usize = 128;
const MAX_ROLES: usize = 16;

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

pub(super) async fn dev_token_endpoint(
    State(s): State<DevState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use meschain_functions_host::config::Settings;
    use meschain_secrets::Secrets;
    use serde_json::Value;

    use super::*;
    use crate::dev_routes::router;
    use crate::dev_routes::testing::{local, send, settings};

    fn post_json(uri: &str, body: &str) -> Request<Body> {
        Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
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
}
