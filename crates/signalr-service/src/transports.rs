//! The three client transports (§C.3), reduced to one interface for the connection task:
//! receive client bytes, send batches of frames, close.
//!
//! WebSockets carry both directions on one socket. Server-Sent Events and long polling receive
//! through HTTP POSTs (fed into a channel) and send through a streaming response or polls.
//! The endpoints that accept each transport are in [`crate::client`].

use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::{Mutex, Notify, mpsc};

/// Frames buffered between the connection task and an HTTP transport's response.
pub const HTTP_OUT_CAPACITY: usize = 64;
/// POST bodies waiting for the connection task.
pub const HTTP_IN_CAPACITY: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    ServerSentEvents,
    LongPolling,
}

/// The request-side state of an SSE or long-polling connection, shared by its HTTP requests.
pub struct HttpConnection {
    pub kind: HttpKind,
    pub inbound: mpsc::Sender<Bytes>,
    /// Long polling only: polls take frames from here.
    pub poll: Mutex<Option<mpsc::Receiver<Bytes>>>,
    /// A new poll supersedes the one in progress (which then answers 204).
    pub poll_cancel: Notify,
    /// One POST at a time (a concurrent one gets 409).
    pub send_lock: Mutex<()>,
    /// The client ended the connection (long-polling DELETE).
    pub abort: Notify,
}

impl HttpConnection {
    /// Creates the shared state and the connection task's end of it.
    pub fn new(kind: HttpKind) -> (Arc<HttpConnection>, Transport, mpsc::Receiver<Bytes>) {
        let (in_tx, in_rx) = mpsc::channel(HTTP_IN_CAPACITY);
        let (out_tx, out_rx) = mpsc::channel(HTTP_OUT_CAPACITY);
        let conn = Arc::new(HttpConnection {
            kind,
            inbound: in_tx,
            poll: Mutex::new(None),
            poll_cancel: Notify::new(),
            send_lock: Mutex::new(()),
            abort: Notify::new(),
        });
        let transport = Transport::Http { inbound: in_rx, outbound: out_tx, conn: conn.clone() };
        (conn, transport, out_rx)
    }
}

// One per connection, created once and owned by its task: the size difference costs nothing,
// while boxing the socket would add an allocation per connection.
#[allow(clippy::large_enum_variant)]
pub enum Transport {
    WebSocket(WebSocket),
    Http { inbound: mpsc::Receiver<Bytes>, outbound: mpsc::Sender<Bytes>, conn: Arc<HttpConnection> },
}

impl Transport {
    pub fn is_sse(&self) -> bool {
        matches!(self, Transport::Http { conn, .. } if conn.kind == HttpKind::ServerSentEvents)
    }

    pub fn is_long_polling(&self) -> bool {
        matches!(self, Transport::Http { conn, .. } if conn.kind == HttpKind::LongPolling)
    }

    /// The next chunk of client bytes; `None` once the client is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Bytes> {
        match self {
            Transport::WebSocket(ws) => loop {
                match ws.recv().await? {
                    Ok(WsMessage::Text(t)) => return Some(Bytes::from(t)),
                    Ok(WsMessage::Binary(b)) => return Some(b),
                    Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
                    Ok(WsMessage::Close(_)) | Err(_) => return None,
                }
            },
            Transport::Http { inbound, conn, .. } => tokio::select! {
                b = inbound.recv() => b,
                _ = conn.abort.notified() => None,
            },
        }
    }

    /// Sends every frame in `frames` (draining it) and flushes. False if the client is gone.
    pub async fn send(&mut self, frames: &mut Vec<Bytes>, binary: bool) -> bool {
        match self {
            Transport::WebSocket(ws) => {
                for frame in frames.drain(..) {
                    let msg = if binary {
                        WsMessage::Binary(frame)
                    } else {
                        match Utf8Bytes::try_from(frame) {
                            Ok(t) => WsMessage::Text(t),
                            // Only an upstream answering a JSON client with non-UTF-8 bytes gets here.
                            Err(_) => continue,
                        }
                    };
                    if ws.feed(msg).await.is_err() {
                        return false;
                    }
                }
                ws.flush().await.is_ok()
            }
            Transport::Http { outbound, .. } => {
                for frame in frames.drain(..) {
                    if outbound.send(frame).await.is_err() {
                        return false;
                    }
                }
                true
            }
        }
    }

    pub async fn close(self) {
        match self {
            Transport::WebSocket(mut ws) => {
                let _ = ws.send(WsMessage::Close(None)).await;
            }
            // Dropping the sender ends the SSE stream / makes the next poll answer 204.
            Transport::Http { .. } => {}
        }
    }
}
