//! `servicebus::send_message` against a loopback stand-in for the Service Bus REST endpoint that
//! follows its documented contract: `POST /{queue}/messages` with a SAS `Authorization` header,
//! 201 Created on success, 401 on a bad or missing signature.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use meschain_functions_host::servicebus::{Auth, SendError, send_message, verify_sas};
use meschain_model::clock::now_secs as now;
use serde_json::json;

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String, String)>>>);

const KEY_NAME: &str = "send";
const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";

async fn start() -> (String, Seen) {
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let base2 = base.clone();
    let app = Router::new()
        .route(
            "/{queue}/messages",
            post(move |State(seen): State<Seen>, Path(queue): Path<String>, headers: HeaderMap, body: Bytes| {
                let base = base2.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if verify_sas(auth, &format!("{base}/{queue}"), KEY_NAME, KEY, now()).is_err() {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let broker =
                        headers.get("brokerproperties").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    seen.0.lock().unwrap().push((queue, broker, String::from_utf8_lossy(&body).to_string()));
                    StatusCode::CREATED
                }
            }),
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn test_send_with_sas_is_accepted() {
    let (base, seen) = start().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = Auth::Sas { key_name: KEY_NAME.into(), key: KEY.into() };
    let body = br#"{"requestId":"r1"}"#.to_vec();
    send_message(
        &client,
        &format!("{base}/orders"),
        &auth,
        body,
        "application/json",
        &json!({"MessageId":"r1"}),
        now(),
    )
    .await
    .unwrap();
    let seen = seen.0.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "orders");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&seen[0].1).unwrap(), json!({"MessageId":"r1"}));
    assert_eq!(seen[0].2, r#"{"requestId":"r1"}"#);
}

#[tokio::test]
async fn test_bad_key_or_token_is_rejected_with_401() {
    let (base, seen) = start().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for auth in [
        Auth::Sas { key_name: KEY_NAME.into(), key: "wrong".into() },
        Auth::Sas { key_name: "other".into(), key: KEY.into() },
        Auth::Bearer("not-a-sas".into()),
    ] {
        let err = send_message(
            &client,
            &format!("{base}/orders"),
            &auth,
            b"{}".to_vec(),
            "application/json",
            &json!({}),
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SendError::Rejected { status: 401, .. }), "{err}");
    }
    assert!(seen.0.lock().unwrap().is_empty());
}
