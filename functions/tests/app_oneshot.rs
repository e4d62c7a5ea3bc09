//! The whole app as a `tower::Service`, without a socket: `app()` driven with `oneshot`, as
//! axum's testing example does. Both transports reach the same function.

mod common;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use meschain_functions::app::{AppState, app};
use meschain_functions::settings::Settings;
use serde_json::{Value, json};
use tower::ServiceExt;

fn state() -> AppState {
    let settings = common::settings();
    AppState::new(Settings::from_lookup(|k| settings.get(k).cloned()).unwrap()).unwrap()
}

async fn call(req: Request<Body>) -> (StatusCode, Value) {
    let resp = app(state()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() })
}

#[tokio::test]
async fn test_app_is_drivable_with_oneshot() {
    let (status, body) = call(Request::post("/api/negotiate").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));

    let envelope = json!({"Data": {"req": {"Method": "POST", "Headers": {}}}, "Metadata": {}});
    let (status, body) = call(Request::post("/negotiate").body(Body::from(envelope.to_string())).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Outputs"]["res"]["statusCode"], 401);

    let (status, _) = call(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
