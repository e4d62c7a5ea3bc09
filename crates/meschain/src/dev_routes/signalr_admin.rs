//! Control routes for the local SignalR service, which `meschain dev` runs in place of Azure
//! SignalR Service unless the settings name a real instance:
//!
//! - `POST /admin/signalr/restart[?downMs=N]`: stops the local SignalR service, keeps it down for
//!   N ms (default 0, at most 60,000), and starts it again on the same port with the same keys,
//!   dropping every client connection, so tests can watch clients recover as they must when
//!   Azure SignalR Service restarts or fails over;
//! - `GET /admin/signalr/keys` and `POST /admin/signalr/keys/regenerate` with
//!   `{"keyType": "Primary" | "Secondary"}`: the local service's keys, listed and regenerated in
//!   the shape of ARM's `listKeys` and `regenerateKey`, so a key rotation can be rehearsed.
//!
//! They need the local host's control header, as its queue routes do, and answer 409 when the
//! settings name a real SignalR instance: there is no local service to control then.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use meschain_functions_host::control::CONTROL_HEADER;
use meschain_signalr_service::KeyType;
use serde::Deserialize;

use super::{DevState, error};
use crate::local_signalr::LocalSignalR;

/// The longest outage the restart hook simulates.
const MAX_DOWN: Duration = Duration::from_secs(60);

/// `?downMs=N`: how long the service stays down.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RestartQuery {
    #[serde(default)]
    down_ms: u64,
}

pub(super) async fn restart_signalr(
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

pub(super) async fn list_keys(State(s): State<DevState>, headers: HeaderMap) -> Response {
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

pub(super) async fn regenerate_key(State(s): State<DevState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
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
    use std::path::Path;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use meschain_secrets::Secrets;
    use serde_json::Value;

    use super::*;
    use crate::dev_routes::router;
    use crate::dev_routes::testing::{local, send};

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
