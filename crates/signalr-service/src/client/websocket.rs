//! WebSocket transport: one socket for both directions; JSON frames go in text messages,
//! MessagePack frames in binary messages.
//!
//! tungstenite's default read and write buffers are 128 KB each, which alone would be 256 KB
//! per idle connection. SignalR messages are small, so the buffers are kept small; they grow
//! only while a large message is in flight.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;

use crate::service::{Live, Pending, Service};
use crate::session::{self, Start};
use crate::transports::Transport;

const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 0;
/// WebSocket messages may carry several hub frames; the hub protocol's own size limit applies
/// per frame, so the WebSocket limit only needs to stop absurd messages.
const WS_MESSAGE_SLACK: usize = 64 * 1024;

pub fn start(
    svc: Arc<Service>,
    ws: WebSocketUpgrade,
    token: String,
    pending: Pending,
    client_query: String,
) -> Response {
    svc.set_live(&token, Live::WebSocket);
    let max = svc.config.max_message_size;
    let svc2 = svc.clone();
    let token2 = token.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max.saturating_add(WS_MESSAGE_SLACK))
        .max_frame_size(max.saturating_add(WS_MESSAGE_SLACK))
        .on_failed_upgrade(move |_| svc2.remove_live(&token2))
        .on_upgrade(move |socket| async move {
            session::run(Start { svc, token, pending, client_query }, Transport::WebSocket(socket)).await;
        })
}
