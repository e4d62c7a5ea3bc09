//! Server-Sent Events transport: frames stream out as `data:` lines of one long response;
//! client frames arrive by POST. Text (JSON) only.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;

use crate::service::{Live, Pending, Service};
use crate::session::{self, Start};
use crate::transports::{HttpConnection, HttpKind};

/// One frame as an SSE event: each line as `data: <line>\r\n`, then a blank line (§C.3).
pub fn format_event(frame: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.len() + 16);
    for line in frame.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

pub fn start(svc: Arc<Service>, token: String, pending: Pending, client_query: String) -> Response {
    let (conn, transport, out_rx) = HttpConnection::new(HttpKind::ServerSentEvents);
    svc.set_live(&token, Live::Http(conn));
    tokio::spawn(session::run(Start { svc, token, pending, client_query }, transport));
    let first = stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b":\r\n")) });
    let events = stream::unfold(out_rx, |mut rx| async move {
        let frame = rx.recv().await?;
        Some((Ok(format_event(&frame)), rx))
    });
    let mut response =
        (StatusCode::OK, Body::from_stream(futures_util::StreamExt::chain(first, events))).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache,no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_event_format() {
        assert_eq!(format_event(b"{\"type\":6}\x1e"), "data: {\"type\":6}\x1e\r\n\r\n");
        assert_eq!(format_event(b"a\nb"), "data: a\r\ndata: b\r\n\r\n");
    }
}
