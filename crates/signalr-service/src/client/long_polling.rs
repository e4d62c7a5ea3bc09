//! Long-polling transport: the first GET establishes the connection (200, empty); each later
//! GET waits for frames (200 with the frames, 200 empty on poll timeout, 204 when superseded by
//! a newer poll or when the connection ended); client frames arrive by POST; DELETE ends it.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;

use crate::service::{Live, Pending, Service};
use crate::session::{self, Start};
use crate::transports::{HttpConnection, HttpKind};

/// Bytes a single poll response collects before returning.
const MAX_POLL_BYTES: usize = 1024 * 1024;

pub fn start(svc: Arc<Service>, token: String, pending: Pending, client_query: String) -> Response {
    let (conn, transport, out_rx) = HttpConnection::new(HttpKind::LongPolling);
    if let Ok(mut slot) = conn.poll.try_lock() {
        *slot = Some(out_rx);
    }
    svc.set_live(&token, Live::Http(conn));
    tokio::spawn(session::run(Start { svc, token, pending, client_query }, transport));
    StatusCode::OK.into_response()
}

pub async fn poll(svc: &Service, token: &str, conn: &HttpConnection) -> Response {
    conn.poll_cancel.notify_waiters();
    let mut slot = conn.poll.lock().await;
    let Some(rx) = slot.as_mut() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let first = tokio::select! {
        f = rx.recv() => f,
        _ = conn.poll_cancel.notified() => return StatusCode::NO_CONTENT.into_response(),
        _ = tokio::time::sleep(svc.config.long_poll_timeout) => return StatusCode::OK.into_response(),
    };
    let Some(first) = first else {
        *slot = None;
        svc.remove_live(token);
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut body = BytesMut::from(&first[..]);
    while body.len() < MAX_POLL_BYTES {
        match rx.try_recv() {
            Ok(f) => body.extend_from_slice(&f),
            Err(_) => break,
        }
    }
    let mut response = (StatusCode::OK, body.freeze()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response
}
