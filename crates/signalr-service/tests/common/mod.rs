//! Shared helpers: a real service on a loopback port 0, tokens, a WebSocket hub client.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use meschain_signalr::AccessKey;
use meschain_signalr::hub_protocol::{self, Message, Protocol};
use meschain_signalr::token::{ClientClaims, SigningKey};
use meschain_signalr_service::{Config, RunningService};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub const KEY: &str = "primary-key-for-tests-0123456789abcdefghijkl";
pub const KEY2: &str = "secondary-key-for-tests-0123456789abcdefghij";

pub use meschain_model::clock::now_secs as now;

pub fn test_config() -> Config {
    Config { access_keys: vec![AccessKey::new(KEY), AccessKey::new(KEY2)], ..Config::default() }
}

pub async fn start(config: Config) -> RunningService {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_signalr_service::start(config, listener).await.unwrap()
}

pub fn client_token(key: &str, hub: &str, user: Option<&str>, lifetime: i64) -> String {
    let issued = if lifetime < 0 { now() - 7200 } else { now() };
    SigningKey::hs256(&AccessKey::new(key))
        .client_token(
            &format!("http://localhost/client/?hub={hub}"),
            &ClientClaims { user_id: user, roles: &[] },
            issued,
            lifetime.unsigned_abs(),
        )
        .unwrap()
}

/// A REST token for `path_and_query` as the SDK mints it (aud without port).
pub fn rest_token(key: &str, path_and_query: &str) -> String {
    SigningKey::hs256(&AccessKey::new(key))
        .rest_token(&format!("http://localhost{path_and_query}"), now(), 3600)
        .unwrap()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn base(svc: &RunningService) -> String {
    format!("http://127.0.0.1:{}", svc.local_addr().port())
}

/// A REST call with a valid token; `path_and_query` is what the token's audience names.
pub async fn rest(
    svc: &RunningService,
    method: reqwest::Method,
    path_and_query: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req =
        http().request(method, format!("{}{path_and_query}", base(svc))).bearer_auth(rest_token(KEY, path_and_query));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub struct Negotiated {
    pub connection_id: String,
    pub token: String,
    pub access_token: String,
}

pub async fn negotiate(svc: &RunningService, hub: &str, user: Option<&str>) -> Negotiated {
    let access_token = client_token(KEY, hub, user, 3600);
    let resp = http()
        .post(format!("{}/client/negotiate?hub={hub}&negotiateVersion=1", base(svc)))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    Negotiated {
        connection_id: body["connectionId"].as_str().unwrap().to_string(),
        token: body["connectionToken"].as_str().unwrap().to_string(),
        access_token,
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A hub client over a raw WebSocket, speaking either protocol.
pub struct Client {
    pub ws: Ws,
    pub protocol: Protocol,
    pub connection_id: String,
    buf: Vec<u8>,
}

pub async fn connect_raw(svc: &RunningService, hub: &str, n: &Negotiated) -> Ws {
    let url = format!(
        "ws://127.0.0.1:{}/client/?hub={hub}&id={}&access_token={}",
        svc.local_addr().port(),
        n.token,
        n.access_token
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

pub async fn connect(svc: &RunningService, hub: &str, user: Option<&str>, protocol: Protocol) -> Client {
    let n = negotiate(svc, hub, user).await;
    let mut ws = connect_raw(svc, hub, &n).await;
    let hs = format!("{{\"protocol\":\"{}\",\"version\":1}}\x1e", protocol.name());
    ws.send(WsMessage::text(hs)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply.into_data().as_ref(), b"{}\x1e");
    Client { ws, protocol, connection_id: n.connection_id, buf: Vec::new() }
}

impl Client {
    /// The next hub message other than Ping, or `None` if the socket closed / 5 s passed.
    pub async fn next(&mut self) -> Option<Message> {
        self.next_within(Duration::from_secs(5)).await
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(span) = hub_protocol::next_frame(self.protocol, &self.buf, 1 << 24).unwrap() {
                let msg = hub_protocol::parse_message(self.protocol, &self.buf[span.start..span.end]).unwrap();
                self.buf.drain(..span.consumed);
                if msg == Message::Ping {
                    continue;
                }
                return Some(msg);
            }
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(t)))) => self.buf.extend_from_slice(t.as_bytes()),
                Ok(Some(Ok(WsMessage::Binary(b)))) => self.buf.extend_from_slice(&b),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        let msg = if self.protocol.is_binary() {
            WsMessage::binary(bytes)
        } else {
            WsMessage::text(String::from_utf8(bytes).unwrap())
        };
        self.ws.send(msg).await.unwrap();
    }

    pub async fn send(&mut self, m: &Message) {
        self.send_raw(hub_protocol::write_message(self.protocol, m)).await;
    }
}

/// The `(target, arguments)` of an Invocation, panicking on anything else.
pub fn invocation(m: Option<Message>) -> (String, Vec<serde_json::Value>) {
    match m {
        Some(Message::Invocation(inv)) => (inv.target, inv.arguments),
        other => panic!("expected an invocation, got {other:?}"),
    }
}
