//! Client endpoints against a real service: negotiate rules, token checks, the three
//! transports, keep-alive and timeouts, garbage input and slow clients.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use meschain_signalr::hub_protocol::{Message, Protocol};
use meschain_signalr_service::Config;
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const V: &str = "api-version=2022-06-01";

async fn negotiate_status(
    svc: &meschain_signalr_service::RunningService,
    query: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut req = http().post(format!("{}/client/negotiate?{query}", base(svc)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, challenge)
}

#[tokio::test]
async fn test_negotiate_versions_and_errors() {
    let svc = start(Config { max_connections: 3, ..test_config() }).await;
    let t = client_token(KEY, "chat", Some("u"), 3600);
    let r = http().post(format!("{}/client/negotiate?hub=chat", base(&svc))).bearer_auth(&t).send().await.unwrap();
    let v0: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v0["negotiateVersion"], 0);
    assert!(v0.get("connectionToken").is_none());
    assert_eq!(v0["connectionId"].as_str().unwrap().len(), 22);
    assert_eq!(v0["availableTransports"].as_array().unwrap().len(), 3);
    let r = http().post(format!("{}/client/negotiate?hub=Chat&negotiateVersion=5", base(&svc))).bearer_auth(&t);
    let v1: serde_json::Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(v1["negotiateVersion"], 1);
    assert_ne!(v1["connectionToken"], v1["connectionId"]);

    assert_eq!(negotiate_status(&svc, "hub=chat&hub=chat", Some(&t)).await.0, 400);
    assert_eq!(negotiate_status(&svc, "negotiateVersion=1", Some(&t)).await.0, 400);
    assert_eq!(negotiate_status(&svc, "hub=chat", None).await, (401, "Bearer".into()));
    let (s, c) = negotiate_status(&svc, "hub=other", Some(&t)).await;
    assert_eq!((s, c.contains("The audience is invalid")), (401, true));
    let (s, c) = negotiate_status(&svc, "hub=chat", Some(&client_token("nope", "chat", None, 3600))).await;
    assert_eq!((s, c.contains("The signature is invalid")), (401, true));
    let (s, c) = negotiate_status(&svc, "hub=chat", Some(&client_token(KEY, "chat", None, -60))).await;
    assert_eq!((s, c.contains("expired")), (401, true));
    // Secondary key accepted; then the quota (3) is full.
    assert_eq!(negotiate_status(&svc, "hub=chat", Some(&client_token(KEY2, "chat", None, 60))).await.0, 200);
    assert_eq!(negotiate_status(&svc, "hub=chat", Some(&t)).await.0, 429);
    svc.shutdown().await;
}

#[tokio::test]
async fn test_transport_request_errors_and_pending_expiry() {
    let svc = start(Config { pending_timeout: Duration::from_millis(300), ..test_config() }).await;
    let port = svc.local_addr().port();
    let n = negotiate(&svc, "chat", None).await;
    // Unknown id → 404, missing id → 400, bad token → 401.
    let r = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/client/?hub=chat&id=unknown&access_token={}",
        n.access_token
    ))
    .await;
    assert!(matches!(r, Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 404));
    let r = http().get(format!("{}/client/?hub=chat", base(&svc))).bearer_auth(&n.access_token).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/client/?hub=chat&id={}&access_token=x",
        n.token
    ))
    .await;
    assert!(matches!(r, Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 401));
    // The pending token expires. A real wait: the expiry is the service's own timer (std
    // `Instant` in a server reached over a socket), which this test is about.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/client/?hub=chat&id={}&access_token={}",
        n.token, n.access_token
    ))
    .await;
    assert!(matches!(r, Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 404));
    assert_eq!(svc.connection_count(), 0);
    svc.shutdown().await;
}

#[tokio::test]
async fn test_handshake_errors() {
    let svc = start(test_config()).await;
    for (hs, expected) in [
        ("{\"protocol\":\"xml\",\"version\":1}\x1e", "The protocol 'xml' is not supported."),
        ("{\"protocol\":\"json\",\"version\":9}\x1e", "The server does not support version 9 of the 'json' protocol."),
        ("not json\x1e", "Error reading JSON"),
    ] {
        let n = negotiate(&svc, "chat", None).await;
        let mut ws = connect_raw(&svc, "chat", &n).await;
        ws.send(WsMessage::text(hs)).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap().into_text().unwrap();
        let v: serde_json::Value = serde_json::from_str(reply.trim_end_matches('\x1e')).unwrap();
        assert!(v["error"].as_str().unwrap().starts_with(expected), "{reply}");
        // Then the socket closes.
        assert!(matches!(ws.next().await, Some(Ok(WsMessage::Close(_))) | None | Some(Err(_))));
    }
    svc.shutdown().await;
}

#[tokio::test]
async fn test_handshake_timeout_keepalive_and_client_timeout() {
    let cfg = Config {
        handshake_timeout: Duration::from_millis(300),
        keep_alive_interval: Duration::from_millis(200),
        client_timeout: Duration::from_millis(900),
        ..test_config()
    };
    let svc = start(cfg).await;
    // No handshake: the service hangs up.
    let n = negotiate(&svc, "chat", None).await;
    let mut ws = connect_raw(&svc, "chat", &n).await;
    let end = tokio::time::timeout(Duration::from_secs(3), ws.next()).await.unwrap();
    assert!(matches!(end, Some(Ok(WsMessage::Close(_))) | None | Some(Err(_))));

    // Handshake done, then silence: pings every 200 ms, then Close after the client timeout.
    let mut c = connect(&svc, "chat", None, Protocol::Json).await;
    let mut pings = 0;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(3), c.ws.next()).await.unwrap() {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "{\"type\":6}\x1e" => pings += 1,
            Some(Ok(WsMessage::Text(t))) => break t.to_string(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings >= 2, "{pings} pings");
    assert!(close.starts_with("{\"type\":7,\"error\":\"Server timeout elapsed"), "{close}");
    svc.shutdown().await;
}

#[tokio::test]
async fn test_garbage_frames_close_only_that_connection() {
    let svc = start(Config { max_message_size: 4096, ..test_config() }).await;
    let mut healthy = connect(&svc, "chat", None, Protocol::Json).await;
    let bad_inputs: Vec<(Protocol, Vec<u8>)> = vec![
        (Protocol::Json, b"{nope}\x1e".to_vec()),
        (Protocol::Json, b"[1,2]\x1e".to_vec()),
        (Protocol::Json, b"{\"type\":1,\"target\":5,\"arguments\":[]}\x1e".to_vec()),
        (Protocol::Json, vec![b'x'; 5000]),
        (Protocol::MessagePack, vec![0x03, 0xc1, 0xc1, 0xc1]),
        (Protocol::MessagePack, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        (Protocol::MessagePack, vec![0x80, 0x80, 0x01]),
    ];
    for (protocol, bytes) in bad_inputs {
        let mut c = connect(&svc, "chat", None, protocol).await;
        c.send_raw(bytes.clone()).await;
        match c.next().await {
            Some(Message::Close { error: Some(e), .. }) => {
                assert!(e.starts_with("Connection closed with an error."), "{e}")
            }
            other => panic!("{protocol:?} ({} bytes): {other:?}", bytes.len()),
        }
    }
    // A frame split across WebSocket messages is fine (incremental parsing): Ping in 3 chunks.
    let mut c = connect(&svc, "chat", None, Protocol::MessagePack).await;
    for chunk in [&b"\x02"[..], b"\x91", b"\x06"] {
        c.ws.send(WsMessage::binary(chunk.to_vec())).await.unwrap();
    }
    assert_eq!(c.next_within(Duration::from_millis(200)).await, None);

    rest(&svc, Method::POST, &format!("/api/hubs/chat/:send?{V}"), Some(json!({"target":"still"}))).await;
    assert_eq!(invocation(healthy.next().await).0, "still");
    svc.shutdown().await;
}

#[tokio::test]
async fn test_slow_client_is_dropped_without_slowing_others() {
    let svc = start(Config { send_queue_capacity: 16, ..test_config() }).await;
    let mut fast = connect(&svc, "chat", None, Protocol::Json).await;
    // A client that never reads: its socket buffers fill, then its queue, then it is closed.
    let slow = connect(&svc, "chat", None, Protocol::Json).await;
    let slow_id = slow.connection_id.clone();
    let payload = "x".repeat(256 * 1024);
    let path = format!("/api/hubs/chat/:send?{V}");
    let token = rest_token(KEY, &path);
    let url = format!("{}{path}", base(&svc));
    let mut received = 0;
    for i in 0..200 {
        let body = json!({"target":"big","arguments":[i, payload]});
        let r = http().post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 202);
        let (_, args) = invocation(fast.next().await);
        assert_eq!(args[0], json!(i));
        received += 1;
    }
    assert_eq!(received, 200);
    let exists = format!("/api/hubs/chat/connections/{slow_id}?{V}");
    let mut gone = false;
    for _ in 0..50 {
        if rest(&svc, Method::HEAD, &exists, None).await.status() == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the slow connection was not dropped");
    drop(slow);
    svc.shutdown().await;
}

#[tokio::test]
async fn test_client_close_and_stream_invocation() {
    let svc = start(test_config()).await;
    let mut c = connect(&svc, "chat", None, Protocol::Json).await;
    c.send(&Message::StreamInvocation(meschain_signalr::hub_protocol::Invocation {
        invocation_id: Some("9".into()),
        target: "s".into(),
        ..Default::default()
    }))
    .await;
    match c.next().await {
        Some(Message::Completion {
            invocation_id,
            result: meschain_signalr::hub_protocol::CompletionResult::Error(_),
        }) => {
            assert_eq!(invocation_id, "9")
        }
        other => panic!("{other:?}"),
    }
    // A blocking invocation with no upstream configured gets an error, not a hang.
    c.send(&Message::Invocation(meschain_signalr::hub_protocol::Invocation {
        invocation_id: Some("1".into()),
        target: "m".into(),
        ..Default::default()
    }))
    .await;
    assert!(matches!(c.next().await, Some(Message::Completion { .. })));
    let id = c.connection_id.clone();
    c.send(&Message::Close { error: None, allow_reconnect: false }).await;
    // The server removes the connection, then closes the socket: wait for that end (nothing
    // more arrives) rather than for a fixed time.
    assert_eq!(c.next().await, None);
    let r = rest(&svc, Method::HEAD, &format!("/api/hubs/chat/connections/{id}?{V}"), None).await;
    assert_eq!(r.status(), 404);
    svc.shutdown().await;
}

/// Server-Sent Events: stream down, POST up; long polling: poll down, POST up, DELETE.
#[tokio::test]
async fn test_sse_and_long_polling() {
    let svc = start(Config { long_poll_timeout: Duration::from_millis(500), ..test_config() }).await;
    let b = base(&svc);

    // SSE: token in the query.
    let n = negotiate(&svc, "chat", Some("sse-user")).await;
    let url = format!("{b}/client/?hub=chat&id={}", n.token);
    let mut stream = http()
        .get(format!("{url}&access_token={}", n.access_token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(stream.chunk().await.unwrap().unwrap(), ":\r\n");
    let r = http().post(&url).bearer_auth(&n.access_token).body("{\"protocol\":\"json\",\"version\":1}\x1e").send();
    assert_eq!(r.await.unwrap().status(), 200);
    assert_eq!(stream.chunk().await.unwrap().unwrap(), "data: {}\x1e\r\n\r\n");
    rest(&svc, Method::POST, &format!("/api/hubs/chat/users/sse-user/:send?{V}"), Some(json!({"target":"hi"}))).await;
    let chunk = stream.chunk().await.unwrap().unwrap();
    assert_eq!(chunk, "data: {\"type\":1,\"target\":\"hi\",\"arguments\":[]}\x1e\r\n\r\n");
    // MessagePack over SSE is refused in the handshake; POST without a token is 401.
    let r = http().post(&url).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().post(&url).bearer_auth(&n.access_token).body(vec![b'x'; 2 * 1024 * 1024]).send().await.unwrap();
    assert_eq!(r.status(), 413);

    // Long polling: token in the header.
    let n = negotiate(&svc, "chat", Some("lp-user")).await;
    let url = format!("{b}/client/?hub=chat&id={}", n.token);
    let get = || http().get(&url).bearer_auth(&n.access_token).send();
    let first = get().await.unwrap();
    assert_eq!((first.status().as_u16(), first.bytes().await.unwrap().len()), (200, 0));
    let hs = http().post(&url).bearer_auth(&n.access_token).body("{\"protocol\":\"messagepack\",\"version\":1}\x1e");
    assert_eq!(hs.send().await.unwrap().status(), 200);
    let r = get().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap(), "{}\x1e");
    // Poll timeout → 200 empty.
    let r = get().await.unwrap();
    assert_eq!((r.status().as_u16(), r.bytes().await.unwrap().len()), (200, 0));
    rest(
        &svc,
        Method::POST,
        &format!("/api/hubs/chat/users/lp-user/:send?{V}"),
        Some(json!({"target":"t","arguments":[1]})),
    )
    .await;
    let r = get().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), &b"\x08\x95\x01\x80\xc0\xa1t\x91\x01"[..]);
    // DELETE ends it; the next poll gets 204, then the id is unknown.
    let r = http().delete(&url).bearer_auth(&n.access_token).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get().await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&204) || statuses.contains(&404), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 404);
    svc.shutdown().await;
}

#[tokio::test]
async fn test_cors_preflight_and_echo() {
    let svc = start(test_config()).await;
    let r = http()
        .request(Method::OPTIONS, format!("{}/client/negotiate?hub=chat", base(&svc)))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-signalr-user-agent,authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://app.example");
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert_eq!(r.headers()["access-control-allow-headers"], "x-signalr-user-agent,authorization");
    let r = http()
        .post(format!("{}/client/negotiate?hub=chat", base(&svc)))
        .header("origin", "http://app.example")
        .bearer_auth(client_token(KEY, "chat", None, 60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://app.example");
    svc.shutdown().await;
}

#[tokio::test]
async fn test_shutdown_closes_clients_and_stops_listening() {
    let svc = start(test_config()).await;
    let addr = svc.local_addr();
    let mut c = connect(&svc, "chat", None, Protocol::MessagePack).await;
    let started = std::time::Instant::now();
    let shutdown = tokio::spawn(svc.shutdown());
    assert_eq!(c.next().await, Some(Message::Close { error: None, allow_reconnect: true }));
    shutdown.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn test_close_on_auth_expiration() {
    let svc = start(test_config()).await;
    let claims = json!({
        "asrs.s.uid": "u",
        "asrs.s.coae": "True",
        "asrs.s.aeo": now() + 1,
        "exp": now() + 3600,
        "aud": "http://localhost/client/?hub=chat",
    });
    let key = jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let r = http()
        .post(format!("{}/client/negotiate?hub=chat&negotiateVersion=1", base(&svc)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let n = Negotiated {
        connection_id: body["connectionId"].as_str().unwrap().into(),
        token: body["connectionToken"].as_str().unwrap().into(),
        access_token: token,
    };
    let mut ws = connect_raw(&svc, "chat", &n).await;
    ws.send(WsMessage::text("{\"protocol\":\"json\",\"version\":1}\x1e")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), b"{}\x1e");
    let close = tokio::time::timeout(Duration::from_secs(4), ws.next()).await.unwrap().unwrap().unwrap();
    assert!(close.into_text().unwrap().contains("access token expired"));
    svc.shutdown().await;
}

#[tokio::test]
async fn test_long_polling_handshake_error_reaches_the_next_poll() {
    let svc = start(test_config()).await;
    let n = negotiate(&svc, "chat", None).await;
    let url = format!("{}/client/?hub=chat&id={}", base(&svc), n.token);
    let first = http().get(&url).bearer_auth(&n.access_token).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let hs = http().post(&url).bearer_auth(&n.access_token).body("{\"protocol\":\"xml\",\"version\":1}\x1e");
    assert_eq!(hs.send().await.unwrap().status(), 200);
    let r = http().get(&url).bearer_auth(&n.access_token).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), "{\"error\":\"The protocol 'xml' is not supported.\"}\x1e");
    let r = http().get(&url).bearer_auth(&n.access_token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    svc.shutdown().await;
}
