//! The client-facing endpoints (§C.1): `POST /client/negotiate?hub=` and the transport requests
//! on `/client/?hub=&id=`, dispatched to WebSockets ([`websocket`]), Server-Sent Events ([`sse`])
//! or long polling ([`long_polling`]), each of which hands the connection to a session over the
//! one [`crate::transports::Transport`] interface.

pub mod long_polling;
pub mod sse;
pub mod websocket;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use serde_json::json;

use crate::auth;
use crate::service::{Live, Pending, Service};
use crate::transports::HttpKind;

/// A new connection id or token: 16 random bytes, base64url without padding (22 characters).
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hub (and application) names the service accepts (§D.3).
pub fn valid_hub_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_`,.[]".contains(c))
}

/// The parts of a client query string the service cares about.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientQuery {
    /// Lower-cased: the hub key everything else uses.
    pub hub: String,
    pub id: Option<String>,
    pub negotiate_version: u32,
}

pub fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// Parses `hub`, `id` and `negotiateVersion`; more than one `hub` is a 400 (§C.1, §F.13).
pub fn parse_query(query: &str) -> Result<ClientQuery, &'static str> {
    let mut hub = None;
    let mut id = None;
    let mut version = 0;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "hub" if hub.is_some() => return Err("Query parameter 'hub' must not be repeated."),
            "hub" => hub = Some(v.into_owned()),
            "id" => id = Some(v.into_owned()),
            "negotiateVersion" => version = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let hub = hub.ok_or("Query parameter 'hub' is required.")?;
    if !valid_hub_name(&hub) {
        return Err("Invalid hub name.");
    }
    Ok(ClientQuery { hub: hub.to_ascii_lowercase(), id, negotiate_version: version })
}

fn host(headers: &HeaderMap) -> &str {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost")
}

pub async fn negotiate(State(svc): State<Arc<Service>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let q = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let tokens = auth::header_tokens(&headers);
    let claims =
        match auth::validate_client(&tokens, &svc.keys.current(), svc.config.token_leeway_secs, host(&headers), &q.hub)
        {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
    let Some(slot) = svc.take_slot() else {
        return (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "error": "Maximum connection count reached." })))
            .into_response();
    };
    let connection_id = new_id();
    let version = q.negotiate_version.min(1);
    let transports = json!([
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
        {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
        {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
    ]);
    let (key, body) = if version >= 1 {
        let token = new_id();
        let body = json!({
            "negotiateVersion": 1,
            "connectionId": connection_id,
            "connectionToken": token,
            "availableTransports": transports,
        });
        (token, body)
    } else {
        let body = json!({ "negotiateVersion": 0, "connectionId": connection_id, "availableTransports": transports });
        (connection_id.clone(), body)
    };
    svc.add_pending(key, Pending { connection_id, hub: q.hub, claims, created: Instant::now(), slot });
    Json(body).into_response()
}

/// The query forwarded upstream in `X-ASRS-Client-Query`: `?`-prefixed, `access_token` removed
/// so the client's bearer token is not handed on.
fn client_query(query: &str) -> String {
    let kept: Vec<&str> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("access_token=") && *p != "access_token").collect();
    if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) }
}

/// `GET`, `POST` and `DELETE` on `/client/?hub=&id=`.
pub async fn transport(
    State(svc): State<Arc<Service>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let q = match parse_query(&query) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let Some(id) = q.id.clone() else {
        return bad_request("Connection ID required");
    };
    let is_sse =
        headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    // ASP.NET reads `access_token` from the query only for WebSocket and SSE requests, and only
    // when no Authorization header came (§C.3).
    let mut tokens = auth::header_tokens(&headers);
    if tokens.is_empty()
        && (ws.is_ok() || is_sse)
        && let Some(t) = auth::query_token(&query)
    {
        tokens.push(t);
    }
    if let Err(e) =
        auth::validate_client(&tokens, &svc.keys.current(), svc.config.token_leeway_secs, host(&headers), &q.hub)
    {
        return e.into_response();
    }
    let live = svc.live(&id);
    match (method, live) {
        (Method::GET, None) => {
            let Some(pending) = svc.take_pending(&id, Instant::now()) else {
                return (StatusCode::NOT_FOUND, "No Connection with that ID").into_response();
            };
            if pending.hub != q.hub {
                return (StatusCode::NOT_FOUND, "No Connection with that ID").into_response();
            }
            let cq = client_query(&query);
            if let Ok(ws) = ws {
                websocket::start(svc, ws, id, pending, cq)
            } else if is_sse {
                sse::start(svc, id, pending, cq)
            } else {
                long_polling::start(svc, id, pending, cq)
            }
        }
        (Method::GET, Some(Live::WebSocket)) => {
            (StatusCode::CONFLICT, "WebSocket connection is already in use for this ID").into_response()
        }
        (Method::GET, Some(Live::Http(conn))) => match conn.kind {
            HttpKind::LongPolling if !is_sse && ws.is_err() => long_polling::poll(&svc, &id, &conn).await,
            _ => bad_request("Cannot change transports mid-connection"),
        },
        (Method::POST, Some(Live::Http(conn))) => {
            if body.len() > svc.config.max_message_size {
                return StatusCode::PAYLOAD_TOO_LARGE.into_response();
            }
            let Ok(_guard) = conn.send_lock.try_lock() else {
                return (StatusCode::CONFLICT, "Another send request is in progress").into_response();
            };
            match tokio::time::timeout(svc.config.client_timeout, conn.inbound.send(body)).await {
                Ok(Ok(())) => StatusCode::OK.into_response(),
                _ => (StatusCode::NOT_FOUND, "No Connection with that ID").into_response(),
            }
        }
        (Method::POST, Some(Live::WebSocket)) => {
            (StatusCode::METHOD_NOT_ALLOWED, "POST requests are not allowed for WebSocket connections.").into_response()
        }
        (Method::DELETE, Some(Live::Http(conn))) if conn.kind == HttpKind::LongPolling => {
            conn.abort.notify_one();
            StatusCode::ACCEPTED.into_response()
        }
        (Method::DELETE, Some(_)) => bad_request("Cannot terminate this connection using the DELETE endpoint."),
        (Method::POST | Method::DELETE, None) => (StatusCode::NOT_FOUND, "No Connection with that ID").into_response(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_are_22_chars_base64url() {
        let id = new_id();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(new_id(), id);
    }

    #[test]
    fn test_query_rules() {
        assert_eq!(
            parse_query("hub=Chat&negotiateVersion=1&id=x").unwrap(),
            ClientQuery { hub: "chat".into(), id: Some("x".into()), negotiate_version: 1 }
        );
        assert_eq!(parse_query("hub=a&hub=b").unwrap_err(), "Query parameter 'hub' must not be repeated.");
        assert_eq!(parse_query("id=x").unwrap_err(), "Query parameter 'hub' is required.");
        assert_eq!(parse_query("hub=1abc").unwrap_err(), "Invalid hub name.");
        assert!(valid_hub_name("app_Hub.v1[2]"));
        assert!(!valid_hub_name(&"a".repeat(129)));
    }

    #[test]
    fn test_client_query_drops_token() {
        assert_eq!(client_query("hub=chat&id=x&access_token=secret"), "?hub=chat&id=x");
        assert_eq!(client_query("access_token=secret"), "");
    }
}
