//! The HTTP server the Functions host talks to.
//!
//! Routes: `GET /` (readiness and the host's periodic pings: answered without touching the
//! app), `POST /{FunctionName}` (enveloped invocations) and `/api/{route}` (forwarded HTTP
//! requests). Every failure is a JSON error with a 4xx/5xx status; for enveloped invocations a
//! non-2xx answer is what tells the host the invocation failed (its `Logs` are then dropped by
//! the host, so the reason is also logged to stdout).
//!
//! Everything a client controls is bounded ([`Limits`]): body size and arrival time, the memory
//! all bodies in flight hold together, how long request headers may take, and how long
//! shutdown waits for connections, so SIGTERM completes whatever clients do.
//!
//! A handler that panics fails its own invocation only: 500 for HTTP, a failed
//! invocation for other triggers, one log line with the invocation id; the other invocations
//! in flight and the server go on ([`crate::isolation`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::context::{Context, Escaped};
use crate::envelope::{EnvelopeError, InvocationRequest, InvocationResponse};
use crate::function::{FunctionSet, Handler};
use crate::isolation::{isolated, panicked};
use crate::request::HttpRequest;
use crate::response::HttpResponse;

/// Largest request body accepted. Service Bus Standard messages are at most 256 KB and the
/// envelope at most doubles them by escaping; 4 MiB leaves room without inviting abuse.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// What the server allows its clients. The defaults suit the Functions host on loopback.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// How much of an oversized body is read and discarded before answering 413, because a
    /// client that is still sending when the server closes sees a reset instead of the error.
    pub drain_limit_bytes: usize,
    /// How long a request body may take to arrive (408 after); the host sends it at once, so
    /// this only bounds slow or stalled clients.
    pub body_timeout: Duration,
    /// Memory all request bodies being read or handled may hold together; a request that
    /// would go past it gets 503 with `Retry-After`, so stalled uploads cannot exhaust memory.
    pub bodies_in_flight_bytes: usize,
    /// How long a client may take to send its request headers. hyper applies it to idle
    /// keep-alive connections too, which then close after this long.
    pub header_read_timeout: Duration,
    /// After the shutdown signal, how long in-flight requests may take before the remaining
    /// connections are dropped. Below the host's own grace period, so we exit on our terms.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: MAX_BODY_BYTES,
            drain_limit_bytes: 4 * MAX_BODY_BYTES,
            body_timeout: Duration::from_secs(30),
            bodies_in_flight_bytes: 16 * MAX_BODY_BYTES,
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

struct Shared<H> {
    handler: Arc<H>,
    limits: Limits,
    /// One permit per byte of request body held in memory.
    body_budget: Arc<Semaphore>,
}

/// The routes for `handler`, with the default [`Limits`]. Drivable with
/// `tower::ServiceExt::oneshot` in tests, served by [`serve`] in the binary.
pub fn router<H: Handler>(handler: Arc<H>) -> Router {
    router_with_limits(handler, Limits::default())
}

pub fn router_with_limits<H: Handler>(handler: Arc<H>, limits: Limits) -> Router {
    // Semaphore permits are counted in u32 per acquisition and usize overall; clamp.
    let budget = limits.bodies_in_flight_bytes.min(Semaphore::MAX_PERMITS);
    let shared = Arc::new(Shared { handler, limits, body_budget: Arc::new(Semaphore::new(budget)) });
    Router::new()
        .route("/", get(ready).head(ready))
        .route("/api/{*route}", any(forwarded::<H>))
        .route("/{function}", any(invoke::<H>))
        .fallback(not_found)
        .with_state(shared)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most [`Limits::shutdown_grace`]. axum's own `serve` sets no header-read timeout and
/// waits for every connection without limit, so one silent client could hold SIGTERM forever.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.oneshot(req.map(Body::new)).await.into_response()) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(connections = connections.len(), "shutdown grace period over: dropping open connections");
        connections.abort_all();
    }
    Ok(())
}

async fn ready() -> StatusCode {
    StatusCode::OK
}

async fn not_found() -> Response {
    HttpResponse::error(StatusCode::NOT_FOUND, "not_found", "no such route").into_axum()
}

fn invocation_id(headers: &HeaderMap) -> String {
    headers.get(INVOCATION_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-").chars().take(64).collect()
}

/// Why a request body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("the request body arrived too slowly")]
    TooSlow,
    #[error("could not read the request body")]
    Unreadable,
    #[error("too many request bodies are in flight; try again shortly")]
    Busy,
}

impl From<BodyError> for HttpResponse {
    fn from(e: BodyError) -> Self {
        let (status, code) = match e {
            BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            BodyError::TooSlow => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            BodyError::Unreadable => (StatusCode::BAD_REQUEST, "bad_request"),
            BodyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
        };
        let mut resp = HttpResponse::error(status, code, &e.to_string());
        if e == BodyError::Busy {
            resp.headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A body read into memory, and its share of the in-flight budget: hold it until the
/// request is answered.
struct ReadBody {
    bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Reads the body within the limits. Past [`Limits::max_body_bytes`] the rest is read and
/// discarded (up to [`Limits::drain_limit_bytes`] or [`Limits::body_timeout`]) before
/// answering 413.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limits: &Limits,
    budget: &Arc<Semaphore>,
) -> Result<ReadBody, BodyError> {
    // Nothing to read (negotiate's POST, GETs): no timer armed, no buffer made.
    if body.is_end_stream() {
        return Ok(ReadBody { bytes: Bytes::new(), _permit: None });
    }
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limits.max_body_bytes));
    let mut permit: Option<OwnedSemaphorePermit> = None;
    let mut seen = 0usize;
    let mut over = false;
    let mut body = body;
    let drain = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return Err(BodyError::Unreadable) };
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen > limits.max_body_bytes {
                over = true;
                buf = BytesMut::new();
                permit = None;
                if seen > limits.drain_limit_bytes {
                    break;
                }
                continue;
            }
            // `data.len()` is at most max_body_bytes here, which fits a u32 permit count.
            let more = u32::try_from(data.len()).map_err(|_| BodyError::TooLarge(limits.max_body_bytes))?;
            let granted = Arc::clone(budget).try_acquire_many_owned(more).map_err(|_| BodyError::Busy)?;
            match &mut permit {
                Some(held) => held.merge(granted),
                None => permit = Some(granted),
            }
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(limits.body_timeout, drain).await {
        Err(_elapsed) => Err(BodyError::TooSlow),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) if over => Err(BodyError::TooLarge(limits.max_body_bytes)),
        Ok(Ok(())) => Ok(ReadBody { bytes: buf.freeze(), _permit: permit }),
    }
}

/// The one log line per invocation, whatever happened.
fn log_outcome(function: &str, id: &str, started: Instant, status: StatusCode) {
    let micros = started.elapsed().as_micros() as u64;
    let id = Escaped(id);
    if status.is_server_error() {
        tracing::error!(
            function,
            invocation_id = %id,
            duration_us = micros,
            status = status.as_u16(),
            "invocation failed"
        );
    } else {
        tracing::info!(function, invocation_id = %id, duration_us = micros, status = status.as_u16(), "invocation done");
    }
}

async fn invoke<H: Handler>(State(shared): State<Arc<Shared<H>>>, Path(name): Path<String>, req: Request) -> Response {
    let started = Instant::now();
    let id = invocation_id(req.headers());
    let Some(function) = H::Function::from_name(&name) else {
        log_outcome("-", &id, started, StatusCode::NOT_FOUND);
        return HttpResponse::error(StatusCode::NOT_FOUND, "unknown_function", "no function with that name")
            .into_axum();
    };
    let resp = invoke_enveloped(&shared, function, id.clone(), req).await;
    log_outcome(function.name(), &id, started, resp.status);
    resp.into_axum()
}

async fn invoke_enveloped<H: Handler>(
    shared: &Shared<H>,
    function: H::Function,
    id: String,
    req: Request,
) -> HttpResponse {
    if req.method() != Method::POST {
        return HttpResponse::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "invocations are POSTed");
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, &parts.headers, &shared.limits, &shared.body_budget).await {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let mut ctx = Context::enveloped(id.clone(), function.name());
    let Some(binding) = function.http_binding() else {
        let envelope = match InvocationRequest::parse(&body.bytes) {
            Ok(e) => e,
            Err(e) => return bad_envelope(function.name(), &id, e),
        };
        let outcome = isolated(function.name(), &id, shared.handler.call_trigger(function, &mut ctx, &envelope)).await;
        return match outcome {
            Some(Ok(())) => {
                let (outputs, logs) = ctx.finish();
                envelope_response(InvocationResponse { outputs, logs, ..InvocationResponse::default() })
            }
            Some(Err(failure)) => {
                // The host drops Logs of failed invocations, so the reason goes to stdout.
                tracing::warn!(function = function.name(), invocation_id = %Escaped(ctx.invocation_id()), "invocation failed: {}", Escaped(&failure.message));
                failure.into()
            }
            // A non-2xx answer: the host records the run as failed (a queue message is redelivered).
            None => panicked(),
        };
    };
    let http_req = match HttpRequest::from_invocation(&body.bytes, binding.request) {
        Ok(r) => r,
        Err(e) => return bad_envelope(function.name(), &id, e),
    };
    let response = isolated(function.name(), &id, shared.handler.call_http(function, &mut ctx, http_req)).await;
    let (mut outputs, logs) = ctx.finish();
    let response = response.unwrap_or_else(|| {
        // Output bindings written before the panic belong to work that did not finish.
        outputs.clear();
        panicked()
    });
    outputs.insert(binding.response.to_string(), response.to_envelope_output());
    envelope_response(InvocationResponse { outputs, logs, ..InvocationResponse::default() })
}

/// A refused envelope: logged, since the host keeps no `Logs` of a failed invocation.
fn bad_envelope(function: &str, id: &str, e: EnvelopeError) -> HttpResponse {
    tracing::warn!(function, invocation_id = %Escaped(id), "bad envelope: {e}");
    e.into()
}

fn envelope_response(out: InvocationResponse) -> HttpResponse {
    let mut resp = HttpResponse::new(StatusCode::OK);
    resp.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp.body = Bytes::from(serde_json::to_vec(&out).unwrap_or_else(|_| Value::Null.to_string().into_bytes()));
    resp
}

async fn forwarded<H: Handler>(
    State(shared): State<Arc<Shared<H>>>,
    Path(route): Path<String>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let id = invocation_id(req.headers());
    let Some(function) = H::Function::from_route(&route) else {
        log_outcome("-", &id, started, StatusCode::NOT_FOUND);
        return HttpResponse::error(StatusCode::NOT_FOUND, "not_found", "no function at that route").into_axum();
    };
    let (parts, body) = req.into_parts();
    let resp = match read_body(body, &parts.headers, &shared.limits, &shared.body_budget).await {
        Ok(body) => {
            let mut ctx = Context::forwarded(id.clone(), function.name());
            let req = HttpRequest::from_forwarded(&parts, body.bytes.clone());
            isolated(function.name(), &id, shared.handler.call_http(function, &mut ctx, req))
                .await
                .unwrap_or_else(panicked)
        }
        Err(e) => e.into(),
    };
    log_outcome(function.name(), &id, started, resp.status);
    resp.into_axum()
}
