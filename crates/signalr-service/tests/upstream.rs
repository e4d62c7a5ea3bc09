//! Upstream calls against a real axum webhook on port 0: headers, signatures with two keys,
//! bodies, ordering, and how blocking invocations are answered (§E).

mod common;

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::*;
use meschain_signalr::AccessKey;
use meschain_signalr::hub_protocol::{self, CompletionResult, Invocation, Message, Protocol};
use meschain_signalr::upstream as sig;
use meschain_signalr_service::{Config, Pattern, UpstreamTemplate};
use serde_json::json;
use tokio::sync::mpsc;

#[derive(Debug)]
struct Call {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A webhook that records every call and answers by event name.
async fn webhook() -> (String, mpsc::UnboundedReceiver<Call>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let tx = tx.clone();
        async move {
            let event = headers.get(sig::HEADER_EVENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let msgpack = headers["content-type"] == "application/x-msgpack";
            let _ = tx.send(Call { path: uri.path().to_string(), headers: headers.clone(), body: body.clone() });
            match event.as_str() {
                "echo" => {
                    let inv = hub_protocol::parse_invocation_body(msgpack, &body).unwrap();
                    let protocol = if msgpack { Protocol::MessagePack } else { Protocol::Json };
                    let id = inv.invocation_id.unwrap_or_default();
                    let frame = hub_protocol::completion_frame(protocol, &id, Ok(json!({"echo": inv.arguments})));
                    (StatusCode::OK, frame).into_response()
                }
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    StatusCode::NO_CONTENT.into_response()
                }
                "void" => StatusCode::NO_CONTENT.into_response(),
                "missing" => StatusCode::NOT_FOUND.into_response(),
                _ => StatusCode::OK.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

async fn next_call(rx: &mut mpsc::UnboundedReceiver<Call>) -> Call {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap()
}

fn h<'a>(c: &'a Call, name: &str) -> Option<&'a str> {
    c.headers.get(name).map(|v| v.to_str().unwrap())
}

fn blocking(id: &str, target: &str, args: Vec<serde_json::Value>) -> Message {
    Message::Invocation(Invocation {
        invocation_id: Some(id.into()),
        target: target.into(),
        arguments: args,
        ..Default::default()
    })
}

#[tokio::test]
async fn test_events_headers_signatures_and_completions() {
    let (url, mut calls) = webhook().await;
    let cfg = Config {
        upstream: vec![UpstreamTemplate::any(format!("{url}/{{hub}}/api/{{category}}/{{event}}"))],
        ..test_config()
    };
    let svc = start(cfg).await;
    let mut c = connect(&svc, "chat", Some("alice"), Protocol::Json).await;
    let id = c.connection_id.clone();

    let connected = next_call(&mut calls).await;
    assert_eq!(connected.path, "/chat/api/connections/connected");
    assert_eq!(connected.body, "{\"type\":10}");
    assert_eq!(h(&connected, "content-type"), Some("application/json"));
    assert_eq!(h(&connected, sig::HEADER_CONNECTION_ID), Some(id.as_str()));
    assert_eq!(h(&connected, sig::HEADER_HUB), Some("chat"));
    assert_eq!(h(&connected, sig::HEADER_CATEGORY), Some("connections"));
    assert_eq!(h(&connected, sig::HEADER_EVENT), Some("connected"));
    assert_eq!(h(&connected, sig::HEADER_USER_ID), Some("alice"));
    assert!(h(&connected, sig::HEADER_USER_CLAIMS).unwrap().contains("asrs.s.uid: alice"));
    let query = h(&connected, sig::HEADER_CLIENT_QUERY).unwrap();
    assert!(query.starts_with("?hub=chat&id=") && !query.contains("access_token"), "{query}");
    // One signature per key, no spaces, each verifiable with its own key only.
    let signature = h(&connected, sig::HEADER_SIGNATURE).unwrap();
    assert_eq!(signature, sig::sign(&id, &[AccessKey::new(KEY), AccessKey::new(KEY2)]));
    assert!(!signature.contains(' '));
    assert!(sig::verify(&id, signature, &[AccessKey::new(KEY2)]));
    assert!(!sig::verify(&id, signature, &[AccessKey::new("other")]));
    assert!(!sig::verify("other-id", signature, &[AccessKey::new(KEY)]));

    // A blocking invocation: body forwarded without framing, result forwarded verbatim.
    c.send(&blocking("0", "echo", vec![json!("hi")])).await;
    let call = next_call(&mut calls).await;
    assert_eq!(call.path, "/chat/api/messages/echo");
    assert_eq!(call.body, "{\"type\":1,\"invocationId\":\"0\",\"target\":\"echo\",\"arguments\":[\"hi\"]}");
    assert_eq!(h(&call, sig::HEADER_EVENT), Some("echo"));
    assert_eq!(
        c.next().await,
        Some(Message::Completion {
            invocation_id: "0".into(),
            result: CompletionResult::Result(json!({"echo":["hi"]}))
        })
    );
    // 204 → empty completion; 404 → the service's error string.
    c.send(&blocking("1", "void", vec![])).await;
    assert_eq!(c.next().await, Some(Message::Completion { invocation_id: "1".into(), result: CompletionResult::Void }));
    c.send(&blocking("2", "missing", vec![])).await;
    assert_eq!(
        c.next().await,
        Some(Message::Completion {
            invocation_id: "2".into(),
            result: CompletionResult::Error("Invocation failed, status code 404".into())
        })
    );
    // Non-blocking invocations are posted in order, even behind a slow one.
    c.send(&Message::Invocation(Invocation { target: "slow".into(), ..Default::default() })).await;
    for i in 0..5 {
        c.send(&Message::Invocation(Invocation { target: format!("e{i}"), ..Default::default() })).await;
    }
    let mut events = Vec::new();
    for _ in 0..8 {
        let call = next_call(&mut calls).await;
        events.push(h(&call, sig::HEADER_EVENT).unwrap().to_string());
    }
    assert_eq!(&events[..2], ["void", "missing"]);
    assert_eq!(&events[2..], ["slow", "e0", "e1", "e2", "e3", "e4"]);
    c.send(&Message::Close { error: None, allow_reconnect: false }).await;
    let disconnected = next_call(&mut calls).await;
    assert_eq!(disconnected.path, "/chat/api/connections/disconnected");
    assert_eq!(disconnected.body, "{\"Type\":11}");
    svc.shutdown().await;
}

#[tokio::test]
async fn test_msgpack_invocation_and_template_patterns() {
    let (url, mut calls) = webhook().await;
    let mut only_messages = UpstreamTemplate::any(format!("{url}/first/{{event}}"));
    only_messages.category_pattern = Pattern::parse("messages");
    only_messages.hub_pattern = Pattern::parse("chat, other");
    let cfg = Config { upstream: vec![only_messages, UpstreamTemplate::any(format!("{url}/second"))], ..test_config() };
    let svc = start(cfg).await;
    let mut c = connect(&svc, "chat", None, Protocol::MessagePack).await;
    let connected = next_call(&mut calls).await;
    assert_eq!(connected.path, "/second");
    assert!(h(&connected, sig::HEADER_USER_ID).is_none());
    c.send(&blocking("5", "echo", vec![json!(1)])).await;
    let call = next_call(&mut calls).await;
    assert_eq!(call.path, "/first/echo");
    assert_eq!(h(&call, "content-type"), Some("application/x-msgpack"));
    // Bare msgpack array [1, {}, "5", "echo", [1]], no length prefix.
    assert_eq!(call.body, &b"\x95\x01\x80\xa15\xa4echo\x91\x01"[..]);
    assert_eq!(
        c.next().await,
        Some(Message::Completion { invocation_id: "5".into(), result: CompletionResult::Result(json!({"echo":[1]})) })
    );
    // A hub outside the first template's pattern falls through to the second.
    let mut n = connect(&svc, "news", None, Protocol::Json).await;
    assert_eq!(next_call(&mut calls).await.path, "/second");
    n.send(&blocking("1", "x", vec![])).await;
    assert_eq!(next_call(&mut calls).await.path, "/second");
    assert!(matches!(n.next().await, Some(Message::Completion { .. })));
    svc.shutdown().await;
}

#[tokio::test]
async fn test_unreachable_upstream_fails_the_invocation() {
    // Bound and never listening, so it refuses for as long as it lives (a released port could
    // be handed to a server of a test running in parallel).
    let refused = tokio::net::TcpSocket::new_v4().unwrap();
    refused.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let dead = format!("http://127.0.0.1:{}/", refused.local_addr().unwrap().port());
    let svc = start(Config { upstream: vec![UpstreamTemplate::any(dead)], ..test_config() }).await;
    let mut c = connect(&svc, "chat", None, Protocol::Json).await;
    c.send(&blocking("0", "x", vec![])).await;
    assert_eq!(
        c.next().await,
        Some(Message::Completion {
            invocation_id: "0".into(),
            result: CompletionResult::Error("Invocation failed, status code 500".into())
        })
    );
    svc.shutdown().await;
}
