//! Calls to the app's upstream webhook (§E): `connections/connected`, `connections/disconnected`
//! and `messages/<target>`.
//!
//! Each connection gets its own queue and task, started only when an event of that connection
//! matches a template, so events of one connection reach upstream in order (connected, then
//! invocations in the order sent, then disconnected) while different connections proceed in
//! parallel. A blocking invocation is answered to the caller as §E.5 says.

use std::sync::Arc;

use bytes::Bytes;
use meschain_signalr::AccessKey;
use meschain_signalr::hub_protocol::{self, Protocol};
use meschain_signalr::upstream as sig;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::connection::Connection;
use crate::keys::AccessKeys;

/// Upstream responses above this are refused (§E.5, the emulator's cap).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Invocations a connection may have waiting for upstream before it is closed.
pub const QUEUE_CAPACITY: usize = 1024;

/// One event to post.
pub struct Event {
    pub category: &'static str,
    pub event: String,
    pub content_type: &'static str,
    pub body: Bytes,
    /// Set for blocking invocations: the caller waits for a Completion with this id.
    pub invocation_id: Option<String>,
}

impl Event {
    pub fn connected() -> Event {
        Event {
            category: "connections",
            event: "connected".into(),
            content_type: "application/json",
            body: Bytes::from_static(b"{\"type\":10}"),
            invocation_id: None,
        }
    }

    /// `{"Type":11}` or `{"Type":11,"Error":"…"}` in the emulator's PascalCase (§E.4).
    pub fn disconnected(error: Option<&str>) -> Event {
        let body = match error {
            None => serde_json::json!({ "Type": 11 }),
            Some(e) => serde_json::json!({ "Type": 11, "Error": e }),
        };
        Event {
            category: "connections",
            event: "disconnected".into(),
            content_type: "application/json",
            body: Bytes::from(body.to_string()),
            invocation_id: None,
        }
    }
}

/// What is known about the connection whose events are posted.
pub struct Caller {
    pub connection_id: String,
    pub hub: String,
    pub user_id: Option<String>,
    pub claims: Vec<(String, String)>,
    /// The connect request's query, `?`-prefixed, without `access_token`.
    pub client_query: String,
    pub protocol: Protocol,
}

/// The request headers of one upstream call (§E.2), signatures for every key (§E.3).
pub fn headers(keys: &[AccessKey], caller: &Caller, category: &str, event: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (sig::HEADER_CONNECTION_ID, caller.connection_id.clone()),
        (sig::HEADER_HUB, caller.hub.clone()),
        (sig::HEADER_CATEGORY, category.to_string()),
        (sig::HEADER_EVENT, event.to_string()),
        (sig::HEADER_SIGNATURE, sig::sign(&caller.connection_id, keys)),
    ];
    if let Some(u) = caller.user_id.as_ref().filter(|u| !u.is_empty()) {
        h.push((sig::HEADER_USER_ID, u.clone()));
    }
    if !caller.claims.is_empty() {
        h.push((
            sig::HEADER_USER_CLAIMS,
            sig::format_claims(caller.claims.iter().map(|(t, v)| (t.as_str(), v.as_str()))),
        ));
    }
    if caller.client_query.len() > 1 {
        h.push((sig::HEADER_CLIENT_QUERY, caller.client_query.clone()));
    }
    h
}

/// The first template matching the event, resolved to a URL.
pub fn resolve(config: &Config, hub: &str, category: &str, event: &str) -> Option<String> {
    config.upstream.iter().find(|t| t.matches(hub, category, event)).map(|t| t.url(hub, category, event))
}

/// What the caller of a blocking invocation gets for an upstream outcome (§E.5).
pub fn completion_for(protocol: Protocol, invocation_id: &str, outcome: Result<(u16, Bytes), String>) -> Bytes {
    match outcome {
        Ok((200, body)) if !body.is_empty() => body,
        Ok((200 | 204, _)) => Bytes::from(hub_protocol::empty_completion_frame(protocol, invocation_id)),
        Ok((status, _)) => Bytes::from(hub_protocol::completion_frame(
            protocol,
            invocation_id,
            Err(format!("Invocation failed, status code {status}")),
        )),
        Err(message) => Bytes::from(hub_protocol::completion_frame(protocol, invocation_id, Err(message))),
    }
}

/// A URL fit for logs: the query may hold a secret (Azure Functions' `?code=`), so it is dropped.
fn redacted(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

async fn post(
    http: &reqwest::Client,
    keys: &AccessKeys,
    caller: &Caller,
    url: &str,
    ev: &Event,
) -> Result<(u16, Bytes), String> {
    let mut req = http.post(url).header("content-type", ev.content_type).body(ev.body.clone());
    for (name, value) in headers(&keys.current(), caller, ev.category, &ev.event) {
        req = req.header(name, value);
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url = redacted(url), error = %e.without_url(), "upstream call failed");
            // The emulator synthesises a 500 for an unreachable upstream.
            return Ok((500, Bytes::new()));
        }
    };
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err("Invocation failed, response too large.".into());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err("Invocation failed, response too large.".into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("Invocation failed, error: {e}.")),
        }
    }
    if !(200..300).contains(&status) {
        tracing::info!(url = redacted(url), status, event = %ev.event, "upstream answered with a non-success status");
    }
    Ok((status, Bytes::from(body)))
}

/// A connection's upstream queue; the task behind it starts on the first event.
pub struct Queue {
    hub: String,
    tx: Option<mpsc::Sender<(String, Event)>>,
    caller: Option<Caller>,
    config: Arc<Config>,
    keys: Arc<AccessKeys>,
    http: reqwest::Client,
    conn: Option<Arc<Connection>>,
}

impl Queue {
    /// `keys` are read at each call, so a regenerated key signs the next event.
    pub fn new(config: Arc<Config>, keys: Arc<AccessKeys>, http: reqwest::Client, caller: Caller) -> Queue {
        Queue { hub: caller.hub.clone(), tx: None, caller: Some(caller), config, keys, http, conn: None }
    }

    /// The connection that receives blocking invocations' completions.
    pub fn set_connection(&mut self, conn: Arc<Connection>) {
        self.conn = Some(conn);
    }

    /// Queues an event if a template matches it. Returns `Err` with the URL-less outcome when
    /// no template matches (callers answer blocking invocations themselves) and `Ok(false)` when
    /// the queue is full.
    pub fn push(&mut self, ev: Event) -> Result<bool, Event> {
        let Some(url) = resolve(&self.config, &self.hub, ev.category, &ev.event) else {
            return Err(ev);
        };
        if self.tx.is_none() {
            let Some(caller) = self.caller.take() else { return Ok(false) };
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            tokio::spawn(run(self.keys.clone(), self.http.clone(), caller, self.conn.clone(), rx));
            self.tx = Some(tx);
        }
        let tx = self.tx.as_ref().expect("started above");
        Ok(tx.try_send((url, ev)).is_ok())
    }
}

async fn run(
    keys: Arc<AccessKeys>,
    http: reqwest::Client,
    caller: Caller,
    conn: Option<Arc<Connection>>,
    mut rx: mpsc::Receiver<(String, Event)>,
) {
    while let Some((url, ev)) = rx.recv().await {
        let outcome = post(&http, &keys, &caller, &url, &ev).await;
        if let (Some(id), Some(conn)) = (&ev.invocation_id, &conn) {
            conn.send(completion_for(caller.protocol, id, outcome));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamTemplate;
    use meschain_signalr::AccessKey;

    fn caller() -> Caller {
        Caller {
            connection_id: "c1".into(),
            hub: "chat".into(),
            user_id: Some("alice".into()),
            claims: vec![("asrs.s.uid".into(), "alice".into()), ("role".into(), "admin".into())],
            client_query: "?hub=chat&id=x".into(),
            protocol: Protocol::Json,
        }
    }

    #[test]
    fn test_headers_sign_with_every_key() {
        let h = headers(&[AccessKey::new("k1"), AccessKey::new("k2")], &caller(), "messages", "broadcast");
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let signature = get(sig::HEADER_SIGNATURE).unwrap();
        assert_eq!(signature.split(',').count(), 2);
        assert!(sig::verify("c1", signature, &[AccessKey::new("k2")]));
        assert_eq!(get(sig::HEADER_USER_CLAIMS), Some("asrs.s.uid: alice, role: admin"));
        assert_eq!(get(sig::HEADER_CLIENT_QUERY), Some("?hub=chat&id=x"));
        assert_eq!(get(sig::HEADER_EVENT), Some("broadcast"));
    }

    #[test]
    fn test_first_matching_template_wins() {
        let mut first = UpstreamTemplate::any("http://a/{event}");
        first.category_pattern = crate::config::Pattern::parse("connections");
        let config = Config { upstream: vec![first, UpstreamTemplate::any("http://b/{hub}")], ..Config::default() };
        assert_eq!(resolve(&config, "chat", "connections", "connected").as_deref(), Some("http://a/connected"));
        assert_eq!(resolve(&config, "chat", "messages", "x").as_deref(), Some("http://b/chat"));
        assert_eq!(resolve(&Config::default(), "chat", "messages", "x"), None);
    }

    #[test]
    fn test_logged_urls_lose_their_query() {
        assert_eq!(redacted("http://h/runtime/webhooks/signalr?code=secret"), "http://h/runtime/webhooks/signalr");
        assert_eq!(redacted("http://h/x"), "http://h/x");
    }

    #[test]
    fn test_completion_semantics() {
        let body = Bytes::from_static(b"{\"type\":3,\"invocationId\":\"0\",\"result\":1}\x1e");
        assert_eq!(completion_for(Protocol::Json, "0", Ok((200, body.clone()))), body);
        assert_eq!(
            completion_for(Protocol::Json, "0", Ok((204, Bytes::new()))),
            "{\"type\":3,\"invocationId\":\"0\"}\x1e"
        );
        assert_eq!(
            completion_for(Protocol::Json, "0", Ok((200, Bytes::new()))),
            "{\"type\":3,\"invocationId\":\"0\"}\x1e"
        );
        assert_eq!(
            completion_for(Protocol::Json, "0", Ok((404, Bytes::from_static(b"nope")))),
            "{\"type\":3,\"invocationId\":\"0\",\"error\":\"Invocation failed, status code 404\"}\x1e"
        );
        assert_eq!(
            completion_for(Protocol::Json, "0", Err("Invocation failed, response too large.".into())),
            "{\"type\":3,\"invocationId\":\"0\",\"error\":\"Invocation failed, response too large.\"}\x1e"
        );
    }
}
