//! The life of one client connection, whatever its transport: handshake, registration,
//! upstream `connected`, the read/write loop with keep-alive pings and the client timeout,
//! then unregistration and upstream `disconnected` (§C.5–C.7, §E.7).
//!
//! One task per connection does all of this with a single `select!`, which keeps an idle
//! connection down to one small future and one bounded queue. Upstream calls run in a separate
//! per-connection task (see `upstream`) so a slow webhook never stalls the client's frames.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use meschain_signalr::hub_protocol::{self, Message, Protocol};
use tokio::time::{Instant, timeout};

use crate::connection::{CloseRequest, Connection};
use crate::service::{Pending, Service};
use crate::transports::Transport;
use crate::upstream::{self, Caller, Event};

/// Frames written to the transport per flush.
const MAX_BATCH: usize = 64;
/// How long a final Close frame may take to go out.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Start {
    pub svc: Arc<Service>,
    /// The connection token (`id` query value) this transport claimed.
    pub token: String,
    pub pending: Pending,
    /// The transport request's query, already stripped of `access_token`.
    pub client_query: String,
}

fn handshake_error(req: &hub_protocol::HandshakeRequest, sse: bool) -> Result<Protocol, String> {
    let Some(protocol) = Protocol::from_name(&req.protocol) else {
        return Err(format!("The protocol '{}' is not supported.", req.protocol));
    };
    if !(1..=2).contains(&req.version) {
        return Err(format!("The server does not support version {} of the '{}' protocol.", req.version, req.protocol));
    }
    if sse && protocol.is_binary() {
        return Err(format!(
            "Cannot use the '{}' protocol on the current transport. The transport does not support 'Binary' transfer format.",
            req.protocol
        ));
    }
    Ok(protocol)
}

/// The SDK's custom handshake timeout claim (§B.4), in seconds, at most 30.
const HANDSHAKE_TIMEOUT_CLAIM: &str = "asrs.s.cht";
const MAX_CUSTOM_HANDSHAKE_TIMEOUT: u64 = 30;

/// The handshake timeout for a connection: the token's `asrs.s.cht` if valid, else the default.
pub fn handshake_timeout(claims: &meschain_signalr::token::ValidatedClaims, default: Duration) -> Duration {
    let secs = match claims.other.get(HANDSHAKE_TIMEOUT_CLAIM) {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    match secs {
        Some(s) if (1..=MAX_CUSTOM_HANDSHAKE_TIMEOUT).contains(&s) => Duration::from_secs(s),
        _ => default,
    }
}

const AUTH_EXPIRED_ERROR: &str = "Connection closed because the access token expired.";

/// With `asrs.s.coae` set, how long until `asrs.s.aeo` (unix seconds) passes; the service then
/// closes the connection. `None` when the token does not ask for it.
pub fn auth_expires_in(claims: &meschain_signalr::token::ValidatedClaims, now: u64) -> Option<Duration> {
    use serde_json::Value;
    let enabled = match claims.other.get("asrs.s.coae") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !enabled {
        return None;
    }
    let at = match claims.other.get("asrs.s.aeo") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .or(claims.exp)?;
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Reads the handshake; on success returns the protocol and any bytes that followed it.
async fn handshake(svc: &Service, transport: &mut Transport, limit: Duration) -> Option<(Protocol, Vec<u8>)> {
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    loop {
        let chunk = match timeout_at(deadline, transport.recv()).await {
            Some(Some(chunk)) => chunk,
            _ => return None,
        };
        buf.extend_from_slice(&chunk);
        let error = match hub_protocol::parse_handshake(&buf, svc.config.max_message_size) {
            Ok(None) => continue,
            Ok(Some((req, used))) => match handshake_error(&req, transport.is_sse()) {
                Ok(protocol) => {
                    buf.drain(..used);
                    return Some((protocol, buf));
                }
                Err(e) => e,
            },
            Err(e) => e.to_string(),
        };
        let mut frames = vec![Bytes::from(hub_protocol::handshake_response(Some(&error)))];
        let _ = timeout(CLOSE_WRITE_TIMEOUT, transport.send(&mut frames, false)).await;
        return None;
    }
}

/// Makes the connection token unknown once its connection ended. Long polling's last frames
/// (a Close, or a handshake error) still wait for a poll; that poll or, if none comes, a timer
/// forgets the token.
fn forget_token(svc: &Arc<Service>, token: &str, transport: &Transport) {
    if transport.is_long_polling() {
        let svc = svc.clone();
        let token = token.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(svc.config.client_timeout).await;
            svc.remove_live(&token);
        });
    } else {
        svc.remove_live(token);
    }
}

async fn timeout_at<F: std::future::Future>(deadline: Instant, f: F) -> Option<F::Output> {
    tokio::time::timeout_at(deadline, f).await.ok()
}

pub async fn run(start: Start, mut transport: Transport) {
    let Start { svc, token, pending, client_query } = start;
    let limit = handshake_timeout(&pending.claims, svc.config.handshake_timeout);
    let Some((protocol, rest)) = handshake(&svc, &mut transport, limit).await else {
        forget_token(&svc, &token, &transport);
        transport.close().await;
        return;
    };
    let user_id = pending.claims.user_id().map(str::to_string);
    let (conn, rx) = Connection::new(
        pending.connection_id.clone(),
        pending.hub.clone(),
        user_id.clone(),
        protocol,
        svc.config.send_queue_capacity,
    );
    let conn = Arc::new(conn);
    let caller = Caller {
        connection_id: pending.connection_id.clone(),
        hub: pending.hub.clone(),
        user_id,
        claims: pending.claims.pairs(),
        client_query,
        protocol,
    };
    let mut upstream = upstream::Queue::new(svc.config.clone(), svc.keys.clone(), svc.http.clone(), caller);
    upstream.set_connection(conn.clone());

    let hub = svc.registry.with_hub(&pending.hub, |hub| {
        hub.add(conn.clone(), std::time::Instant::now());
        hub.clone()
    });
    // Close-on-auth-expiration (§B.5): only when the token asks for it.
    let expiry = auth_expires_in(&pending.claims, meschain_model::clock::now_secs()).map(|after| {
        let conn = conn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            conn.request_close(CloseRequest {
                error: Some(AUTH_EXPIRED_ERROR.to_string()),
                allow_reconnect: false,
                abort: false,
            });
        })
    });
    let mut frames = vec![Bytes::from(hub_protocol::handshake_response(None))];
    let mut session = Session { svc: svc.clone(), conn: conn.clone(), protocol, upstream, buf: Vec::new() };
    let error = if transport.send(&mut frames, false).await {
        let _ = session.upstream.push(Event::connected());
        session.run(&mut transport, rx, rest).await
    } else {
        None
    };
    if let Some(timer) = expiry {
        timer.abort();
    }
    hub.remove(&conn);
    forget_token(&svc, &token, &transport);
    let _ = session.upstream.push(Event::disconnected(error.as_deref()));
    transport.close().await;
    drop(pending.slot);
}

struct Session {
    svc: Arc<Service>,
    conn: Arc<Connection>,
    protocol: Protocol,
    upstream: upstream::Queue,
    buf: Vec<u8>,
}

/// Why the read/write loop ended.
enum End {
    /// The client went away or said Close; the error (if any) goes to upstream.
    Client(Option<String>),
    /// The service closes: send a Close frame first.
    Service(CloseRequest),
}

impl Session {
    /// The read/write loop. Returns the error reported upstream in `disconnected`.
    async fn run(
        &mut self,
        transport: &mut Transport,
        mut rx: tokio::sync::mpsc::Receiver<Bytes>,
        rest: Vec<u8>,
    ) -> Option<String> {
        let cfg = self.svc.config.clone();
        let binary = self.protocol.is_binary();
        let mut shutdown = self.svc.shutdown.clone();
        let mut last_recv = Instant::now();
        let mut last_sent = Instant::now();
        let sleep = tokio::time::sleep(cfg.keep_alive_interval.min(cfg.client_timeout));
        tokio::pin!(sleep);
        let mut batch: Vec<Bytes> = Vec::new();
        let conn = self.conn.clone();
        // Created once, not per loop turn: a busy connection goes round this loop for every
        // frame it sends, and re-creating these futures each time was measurable.
        let closed = conn.closed();
        tokio::pin!(closed);
        let shutting_down = async move { shutdown.wait_for(|s| *s).await.map(|_| ()) };
        tokio::pin!(shutting_down);

        let mut end = self.receive(Bytes::from(rest)).err();
        while end.is_none() {
            tokio::select! {
                biased;
                req = &mut closed => end = Some(End::Service(req)),
                _ = &mut shutting_down => {
                    end = Some(End::Service(CloseRequest { error: None, allow_reconnect: true, abort: false }));
                }
                data = transport.recv() => match data {
                    None => end = Some(End::Client(None)),
                    Some(data) => {
                        last_recv = Instant::now();
                        if let Err(e) = self.receive(data) {
                            end = Some(e);
                        }
                    }
                },
                Some(frame) = rx.recv() => {
                    batch.push(frame);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(f) => batch.push(f),
                            Err(_) => break,
                        }
                    }
                    end = write(transport, &conn, &mut batch, binary, cfg.client_timeout).await;
                    last_sent = Instant::now();
                }
                _ = &mut sleep => {
                    let now = Instant::now();
                    if now >= last_recv + cfg.client_timeout {
                        end = Some(End::Service(CloseRequest {
                            error: Some("Server timeout elapsed without receiving a message from the client.".into()),
                            allow_reconnect: false,
                            abort: false,
                        }));
                    } else if now >= last_sent + cfg.keep_alive_interval {
                        batch.push(Bytes::from(hub_protocol::ping_frame(self.protocol)));
                        end = write(transport, &conn, &mut batch, binary, cfg.client_timeout).await;
                        last_sent = now;
                    }
                    sleep.as_mut().reset((last_recv + cfg.client_timeout).min(last_sent + cfg.keep_alive_interval));
                }
            }
        }
        match end.expect("loop ends with a reason") {
            End::Client(error) => error,
            End::Service(req) => {
                if !req.abort {
                    while let Ok(f) = rx.try_recv() {
                        batch.push(f);
                    }
                }
                let close = hub_protocol::close_frame(self.protocol, req.error.as_deref(), req.allow_reconnect);
                batch.push(Bytes::from(close));
                let _ = timeout(CLOSE_WRITE_TIMEOUT, transport.send(&mut batch, binary)).await;
                req.error
            }
        }
    }

    /// Feeds client bytes through the frame parser and handles every complete message.
    fn receive(&mut self, data: Bytes) -> Result<(), End> {
        if data.is_empty() {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        let result = if buf.is_empty() {
            let r = self.handle_frames(&data);
            if let Ok(used) = r {
                buf.extend_from_slice(&data[used..]);
            }
            r
        } else {
            buf.extend_from_slice(&data);
            let r = self.handle_frames(&buf);
            if let Ok(used) = r {
                buf.drain(..used);
            }
            r
        };
        self.buf = buf;
        result.map(|_| ())
    }

    /// Handles the complete frames at the front of `data`; returns the bytes consumed.
    fn handle_frames(&mut self, data: &[u8]) -> Result<usize, End> {
        let max = self.svc.config.max_message_size;
        let mut used = 0;
        loop {
            let span = match hub_protocol::next_frame(self.protocol, &data[used..], max) {
                Ok(Some(span)) => span,
                Ok(None) => return Ok(used),
                Err(e) => return Err(protocol_error(e)),
            };
            let body = &data[used + span.start..used + span.end];
            used += span.consumed;
            let message = hub_protocol::parse_message(self.protocol, body).map_err(protocol_error)?;
            self.handle(message, body)?;
        }
    }

    fn handle(&mut self, message: Message, body: &[u8]) -> Result<(), End> {
        match message {
            Message::Invocation(inv) => {
                let ev = Event {
                    category: "messages",
                    event: inv.target,
                    content_type: self.protocol.upstream_content_type(),
                    body: Bytes::copy_from_slice(body),
                    invocation_id: inv.invocation_id,
                };
                match self.upstream.push(ev) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(End::Service(CloseRequest {
                            error: Some("Too many invocations are waiting for the upstream.".into()),
                            allow_reconnect: false,
                            abort: false,
                        }));
                    }
                    Err(ev) => {
                        if let Some(id) = ev.invocation_id {
                            let frame = hub_protocol::completion_frame(
                                self.protocol,
                                &id,
                                Err(format!("Invocation failed, no upstream is configured for event '{}'.", ev.event)),
                            );
                            self.conn.send(Bytes::from(frame));
                        }
                    }
                }
            }
            Message::StreamInvocation(inv) => {
                let frame = hub_protocol::completion_frame(
                    self.protocol,
                    inv.invocation_id.as_deref().unwrap_or_default(),
                    Err("Stream invocations are not supported in serverless mode.".into()),
                );
                self.conn.send(Bytes::from(frame));
            }
            Message::Close { error, .. } => return Err(End::Client(error)),
            // Pings only prove liveness; stream items, completions, cancels, acks and unknown
            // types have no meaning for a serverless hub and are dropped, as the emulator does.
            _ => {}
        }
        Ok(())
    }
}

/// Writes a batch. A client that stops reading blocks the write; a close request (the queue
/// overflowing meanwhile, or a REST close) or the client timeout ends the wait.
async fn write(
    transport: &mut Transport,
    conn: &Connection,
    batch: &mut Vec<Bytes>,
    binary: bool,
    limit: Duration,
) -> Option<End> {
    let end = tokio::select! {
        r = timeout(limit, transport.send(batch, binary)) => match r {
            Ok(true) => None,
            _ => Some(End::Client(None)),
        },
        req = conn.closed() => Some(End::Service(req)),
    };
    batch.clear();
    end
}

fn protocol_error(e: hub_protocol::ProtocolError) -> End {
    End::Service(CloseRequest {
        error: Some(format!("Connection closed with an error. {e}")),
        allow_reconnect: false,
        abort: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: serde_json::Value) -> meschain_signalr::token::ValidatedClaims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn test_custom_handshake_timeout_claim() {
        let d = Duration::from_secs(15);
        assert_eq!(handshake_timeout(&claims(serde_json::json!({})), d), d);
        assert_eq!(handshake_timeout(&claims(serde_json::json!({"asrs.s.cht": "20"})), d), Duration::from_secs(20));
        assert_eq!(handshake_timeout(&claims(serde_json::json!({"asrs.s.cht": 25})), d), Duration::from_secs(25));
        assert_eq!(handshake_timeout(&claims(serde_json::json!({"asrs.s.cht": "99"})), d), d);
        assert_eq!(handshake_timeout(&claims(serde_json::json!({"asrs.s.cht": "x"})), d), d);
    }

    #[test]
    fn test_close_on_auth_expiration_claims() {
        let c = |j| claims(j);
        assert_eq!(auth_expires_in(&c(serde_json::json!({"exp": 200})), 100), None);
        assert_eq!(
            auth_expires_in(&c(serde_json::json!({"asrs.s.coae": "True", "asrs.s.aeo": "160"})), 100),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            auth_expires_in(&c(serde_json::json!({"asrs.s.coae": true, "exp": 150})), 100),
            Some(Duration::from_secs(50))
        );
        assert_eq!(
            auth_expires_in(&c(serde_json::json!({"asrs.s.coae": true, "asrs.s.aeo": 50})), 100),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn test_handshake_checks() {
        let req = |p: &str, v| hub_protocol::HandshakeRequest { protocol: p.into(), version: v };
        assert_eq!(handshake_error(&req("json", 1), true), Ok(Protocol::Json));
        assert_eq!(handshake_error(&req("messagepack", 2), false), Ok(Protocol::MessagePack));
        assert!(handshake_error(&req("messagepack", 1), true).unwrap_err().contains("'Binary' transfer format"));
        assert!(handshake_error(&req("json", 0), false).is_err());
        assert!(handshake_error(&req("blob", 1), false).is_err());
    }
}
