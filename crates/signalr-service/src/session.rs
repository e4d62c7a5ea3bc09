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

/// Reads the handshake; on success returns the protocol and any bytes that followed it.
async fn handshake(svc: &Service, transport: &mut Transport) -> Option<(Protocol, Vec<u8>)> {
    let deadline = Instant::now() + svc.config.handshake_timeout;
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

async fn timeout_at<F: std::future::Future>(deadline: Instant, f: F) -> Option<F::Output> {
    tokio::time::timeout_at(deadline, f).await.ok()
}

pub async fn run(start: Start, mut transport: Transport) {
    let Start { svc, token, pending, client_query } = start;
    let Some((protocol, rest)) = handshake(&svc, &mut transport).await else {
        svc.remove_live(&token);
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
    let mut upstream = upstream::Queue::new(svc.config.clone(), svc.http.clone(), caller);
    upstream.set_connection(conn.clone());

    let hub = svc.registry.hub(&pending.hub);
    hub.add(conn.clone(), std::time::Instant::now());
    let mut frames = vec![Bytes::from(hub_protocol::handshake_response(None))];
    let mut session = Session { svc: svc.clone(), conn: conn.clone(), protocol, upstream, buf: Vec::new() };
    let error = if transport.send(&mut frames, false).await {
        let _ = session.upstream.push(Event::connected());
        session.run(&mut transport, rx, rest).await
    } else {
        None
    };
    hub.remove(&conn);
    if transport.is_long_polling() {
        // The last frames (the Close) still wait for a poll; that poll or, if none comes, this
        // timer forgets the token.
        let svc = svc.clone();
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(svc.config.client_timeout).await;
            svc.remove_live(&token);
        });
    } else {
        svc.remove_live(&token);
    }
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

        let mut end = self.receive(Bytes::from(rest)).err();
        while end.is_none() {
            tokio::select! {
                biased;
                req = conn.closed() => end = Some(End::Service(req)),
                _ = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => {
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
