//! The dev host's control endpoint under `/admin` (loopback only, like the whole listener):
//! enqueue into the local queues, list messages and dead letters, resubmit, host status.
//!
//! Enqueueing mirrors the Service Bus REST API (`POST …/{queue}/messages`, body = message body,
//! `BrokerProperties` header with `MessageId`/`CorrelationId`/`Label`, 201 on success), so
//! `meschain enqueue` uses one code path for the local queue and for Azure. State-changing
//! requests must carry `X-Meschain-Control: 1`: a web page cannot add that header cross-origin
//! without a CORS preflight, which `/admin` never approves, so a random site open in the
//! developer's browser cannot inject messages.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::queue::{NewMessage, Queues, StoreError, StoredMessage};
use crate::worker::WorkerStatus;

/// Service Bus Standard's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
pub const CONTROL_HEADER: &str = "x-meschain-control";

#[derive(Clone)]
pub struct ControlState {
    pub queues: Arc<Queues>,
    pub worker: watch::Receiver<WorkerStatus>,
    pub functions: Vec<String>,
}

pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/admin/host/status", get(status))
        .route("/admin/queues", get(list_queues))
        .route("/admin/queues/{name}/messages", post(enqueue).get(list_messages))
        .route("/admin/queues/{name}/deadletters", get(list_dead))
        .route("/admin/queues/{name}/deadletters/{id}/resubmit", post(resubmit))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": msg.into() }))).into_response()
}

/// `Some(403 response)` when the anti-CSRF header is missing.
fn require_control(headers: &HeaderMap) -> Option<Response> {
    match headers.get(CONTROL_HEADER) {
        Some(v) if v == "1" => None,
        _ => Some(error(StatusCode::FORBIDDEN, format!("missing header {CONTROL_HEADER}: 1"))),
    }
}

async fn status(State(s): State<ControlState>) -> Response {
    let w = s.worker.borrow().clone();
    axum::Json(json!({
        "state": if w.port.is_some() { "Running" } else { "Initializing" },
        "handler": { "pid": w.pid, "port": w.port, "starts": w.starts },
        "functions": s.functions,
    }))
    .into_response()
}

async fn list_queues(State(s): State<ControlState>) -> Response {
    let list: Vec<Value> = s
        .queues
        .all()
        .map(|q| {
            let (available, locked, dead) = q.counts();
            json!({ "name": q.name, "active": available + locked, "locked": locked, "deadLetters": dead })
        })
        .collect();
    axum::Json(list).into_response()
}

/// JSON view of a message for `meschain queue`.
pub fn message_view(m: &StoredMessage, state: &str) -> Value {
    let body = m.body_bytes();
    let (text, encoding) = match std::str::from_utf8(&body) {
        Ok(t) => (t.to_string(), "utf8"),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&body), "base64"),
    };
    let mut v = json!({
        "sequenceNumber": m.sequence_number,
        "messageId": m.message_id,
        "enqueuedTimeUtc": m.enqueued_time,
        "deliveryCount": m.delivery_count,
        "state": state,
        "contentType": m.content_type,
        "body": text,
        "bodyEncoding": encoding,
        "applicationProperties": m.application_properties,
    });
    if let Some(r) = &m.dead_letter_reason {
        v["deadLetterReason"] = json!(r);
        v["deadLetterErrorDescription"] = json!(m.dead_letter_error_description);
    }
    v
}

#[derive(Deserialize, Default)]
struct BrokerProperties {
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "CorrelationId")]
    correlation_id: Option<String>,
    #[serde(rename = "Label")]
    label: Option<String>,
}

async fn enqueue(State(s): State<ControlState>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = require_control(&headers) {
        return r;
    }
    let Some(queue) = s.queues.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no queue named {name:?} in this app"));
    };
    let props: BrokerProperties = match headers.get("BrokerProperties") {
        None => BrokerProperties::default(),
        Some(v) => match v.to_str().ok().and_then(|t| serde_json::from_str(t).ok()) {
            Some(p) => p,
            None => return error(StatusCode::BAD_REQUEST, "BrokerProperties is not a JSON object of strings"),
        },
    };
    if props.message_id.as_ref().is_some_and(|m| m.is_empty() || m.len() > 128) {
        return error(StatusCode::BAD_REQUEST, "MessageId must be 1-128 characters");
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let msg = NewMessage {
        body: body.to_vec(),
        message_id: props.message_id,
        content_type,
        correlation_id: props.correlation_id,
        subject: props.label,
        application_properties: Map::new(),
    };
    match queue.enqueue(vec![msg]).await {
        Ok(stored) => {
            let m = &stored[0];
            (StatusCode::CREATED, axum::Json(json!({ "sequenceNumber": m.sequence_number, "messageId": m.message_id })))
                .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_messages(State(s): State<ControlState>, Path(name): Path<String>) -> Response {
    let Some(queue) = s.queues.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no queue named {name:?}"));
    };
    let v: Vec<Value> =
        queue.active().iter().map(|(m, locked)| message_view(m, if *locked { "locked" } else { "active" })).collect();
    axum::Json(v).into_response()
}

async fn list_dead(State(s): State<ControlState>, Path(name): Path<String>) -> Response {
    let Some(queue) = s.queues.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no queue named {name:?}"));
    };
    let v: Vec<Value> = queue.dead_letters().iter().map(|m| message_view(m, "deadlettered")).collect();
    axum::Json(v).into_response()
}

async fn resubmit(
    State(s): State<ControlState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = require_control(&headers) {
        return r;
    }
    let Some(queue) = s.queues.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no queue named {name:?}"));
    };
    match queue.resubmit(id.clone()).await {
        Ok(m) => axum::Json(json!({ "sequenceNumber": m.sequence_number, "messageId": m.message_id })).into_response(),
        Err(StoreError::NotFound) => error(StatusCode::NOT_FOUND, format!("no dead-lettered message {id:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
