//! The HTTP server the Functions host talks to.
//!
//! Routes: `GET /` (readiness and the host's periodic pings: answered without touching any
//! state), `POST /{FunctionName}` (enveloped invocations) and `/api/{route}` (forwarded HTTP
//! requests). Every failure is a JSON error with a 4xx/5xx status; for enveloped invocations a
//! non-2xx answer is what tells the host the invocation failed (its `Logs` are then dropped by
//! the host, so the reason is also logged to stdout).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use super::InvocationContext;
use super::envelope::{InvocationRequest, InvocationResponse};
use super::http::{HttpRequest, HttpResponse};
use crate::app::AppState;
use crate::functions::Function;

/// Largest request body accepted. Service Bus Standard messages are at most 256 KB and the
/// envelope at most doubles them by escaping; 4 MiB leaves room without inviting abuse.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT_BYTES: usize = 4 * MAX_BODY_BYTES;
/// How long a request body may take to arrive; the host sends it at once, so this only
/// bounds slow or stalled clients.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(ready).head(ready))
        .route("/api/{*route}", any(forwarded))
        .route("/{function}", any(invoke))
        .fallback(not_found)
        .with_state(state)
}

async fn ready() -> StatusCode {
    StatusCode::OK
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    HttpResponse::error(status, code, message).into_axum()
}

fn invocation_id(headers: &HeaderMap) -> String {
    headers.get(INVOCATION_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-").chars().take(64).collect()
}

/// Reads the body up to [`MAX_BODY_BYTES`]. Past the limit the rest is read and discarded
/// (up to [`DRAIN_LIMIT_BYTES`] or [`DRAIN_TIMEOUT`]) before answering 413, because a client
/// that is still sending when the server closes sees a reset instead of the error.
async fn read_body(mut body: Body) -> Result<Bytes, Response> {
    let mut buf = bytes::BytesMut::new();
    let mut over = false;
    let mut seen = 0usize;
    let drain = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return Err(()) };
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen > MAX_BODY_BYTES {
                over = true;
                buf.clear();
                if seen > DRAIN_LIMIT_BYTES {
                    break;
                }
            } else {
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
        Err(_elapsed) => {
            Err(error(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body arrived too slowly"))
        }
        Ok(Err(())) => Err(error(StatusCode::BAD_REQUEST, "bad_request", "could not read the request body")),
        Ok(Ok(())) if over => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )),
        Ok(Ok(())) => Ok(buf.freeze()),
    }
}

/// The one log line per invocation, whatever happened.
fn log_outcome(function: &str, id: &str, started: Instant, status: StatusCode) {
    let micros = started.elapsed().as_micros() as u64;
    if status.is_server_error() {
        tracing::error!(
            function,
            invocation_id = id,
            duration_us = micros,
            status = status.as_u16(),
            "invocation failed"
        );
    } else {
        tracing::info!(function, invocation_id = id, duration_us = micros, status = status.as_u16(), "invocation done");
    }
}

async fn invoke(State(state): State<Arc<AppState>>, Path(name): Path<String>, req: Request) -> Response {
    let started = Instant::now();
    let id = invocation_id(req.headers());
    let Some(function) = Function::from_name(&name) else {
        log_outcome("-", &id, started, StatusCode::NOT_FOUND);
        return error(StatusCode::NOT_FOUND, "unknown_function", "no function with that name");
    };
    let resp = invoke_enveloped(&state, function, id.clone(), req).await;
    log_outcome(function.name(), &id, started, resp.status());
    resp
}

async fn invoke_enveloped(state: &AppState, function: Function, id: String, req: Request) -> Response {
    if req.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "invocations are POSTed");
    }
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let envelope = match InvocationRequest::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(function = function.name(), invocation_id = %id, "bad envelope: {e}");
            return error(StatusCode::BAD_REQUEST, "bad_envelope", &e.to_string());
        }
    };
    let mut ctx = InvocationContext::new(id, function.name(), true);
    let Some(binding) = function.http_binding() else {
        return match function.call_trigger(state, &mut ctx, &envelope).await {
            Ok(outputs) => {
                let out = InvocationResponse { outputs, logs: ctx.into_logs(), ..InvocationResponse::default() };
                json_response(StatusCode::OK, &serde_json::to_value(&out).unwrap_or(Value::Null))
            }
            Err(failure) => {
                // The host drops Logs of failed invocations, so the reason goes to stdout.
                tracing::warn!(function = function.name(), invocation_id = %ctx.invocation_id, "invocation failed: {}", failure.message);
                error(failure.status, failure.code, &failure.message)
            }
        };
    };
    let http_req = match envelope.binding(binding.request).and_then(|v| HttpRequest::from_envelope(binding.request, v))
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(function = function.name(), invocation_id = %ctx.invocation_id, "bad envelope: {e}");
            return error(StatusCode::BAD_REQUEST, "bad_envelope", &e.to_string());
        }
    };
    let outcome = function.call_http(state, &mut ctx, http_req).await;
    let mut out = InvocationResponse { outputs: outcome.outputs, ..InvocationResponse::default() };
    out.outputs.insert(binding.response.to_string(), outcome.response.to_envelope_output());
    out.logs = ctx.into_logs();
    json_response(StatusCode::OK, &serde_json::to_value(&out).unwrap_or(Value::Null))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

async fn forwarded(State(state): State<Arc<AppState>>, Path(route): Path<String>, req: Request) -> Response {
    let started = Instant::now();
    let id = invocation_id(req.headers());
    let Some(function) = Function::from_route(&route) else {
        log_outcome("-", &id, started, StatusCode::NOT_FOUND);
        return error(StatusCode::NOT_FOUND, "not_found", "no function at that route");
    };
    let (parts, body) = req.into_parts();
    let resp = match read_body(body).await {
        Ok(body) => {
            let mut ctx = InvocationContext::new(id.clone(), function.name(), false);
            function.call_http(&state, &mut ctx, HttpRequest::from_forwarded(&parts, body)).await.response.into_axum()
        }
        Err(resp) => resp,
    };
    log_outcome(function.name(), &id, started, resp.status());
    resp
}
