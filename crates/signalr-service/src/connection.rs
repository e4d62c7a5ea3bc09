//! One connected client as the rest of the service sees it: identity, protocol, and a bounded
//! queue of pre-serialised frames.
//!
//! REST sends never wait on a client. They `try_send` into the queue; a full queue means the
//! client is not keeping up, and the connection is closed instead of slowing everyone else
//! (or growing without bound). Frames are `Bytes` so one broadcast serialisation is shared by
//! every recipient.

use std::sync::Mutex;

use bytes::Bytes;
use meschain_signalr::hub_protocol::Protocol;
use tokio::sync::{Notify, mpsc};

/// Why a connection is being closed by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// Sent as the Close message's `error` (and upstream `disconnected` `Error`).
    pub error: Option<String>,
    pub allow_reconnect: bool,
    /// Skip the queue: the client is not reading, so queued frames would never get out.
    pub abort: bool,
}

pub const SLOW_CLIENT_ERROR: &str = "Connection closed because the client did not read messages fast enough.";

pub struct Connection {
    pub id: String,
    pub hub: String,
    pub user_id: Option<String>,
    pub protocol: Protocol,
    tx: mpsc::Sender<Bytes>,
    close: Mutex<Option<CloseRequest>>,
    close_notify: Notify,
}

impl Connection {
    pub fn new(
        id: String,
        hub: String,
        user_id: Option<String>,
        protocol: Protocol,
        capacity: usize,
    ) -> (Connection, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let conn = Connection { id, hub, user_id, protocol, tx, close: Mutex::new(None), close_notify: Notify::new() };
        (conn, rx)
    }

    /// Queues a frame; a full queue closes the connection. Returns whether it was queued.
    pub fn send(&self, frame: Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.request_close(CloseRequest {
                    error: Some(SLOW_CLIENT_ERROR.to_string()),
                    allow_reconnect: false,
                    abort: true,
                });
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the connection's task to close it; the first request wins.
    pub fn request_close(&self, request: CloseRequest) {
        let mut slot = self.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(request);
            self.close_notify.notify_one();
        }
    }

    /// Waits until a close was requested and returns the request.
    pub async fn closed(&self) -> CloseRequest {
        loop {
            if let Some(r) = self.close.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return r;
            }
            self.close_notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_overflow_requests_abort_and_first_close_wins() {
        let (conn, mut rx) = Connection::new("c".into(), "h".into(), None, Protocol::Json, 2);
        assert!(conn.send(Bytes::from_static(b"1")));
        assert!(conn.send(Bytes::from_static(b"2")));
        assert!(!conn.send(Bytes::from_static(b"3")));
        conn.request_close(CloseRequest { error: None, allow_reconnect: true, abort: false });
        let req = conn.closed().await;
        assert!(req.abort);
        assert_eq!(req.error.as_deref(), Some(SLOW_CLIENT_ERROR));
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"1"));
    }
}
