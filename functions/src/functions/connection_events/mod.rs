//! `connection-events`: the SignalR service's upstream in serverless mode.
//!
//! The service POSTs here when a browser connects or disconnects (category `connections`)
//! and whenever a browser invokes a hub method (category `messages`). Nothing is trusted
//! before [`upstream::validate`] has checked the signature; the caller's identity is what the
//! service vouches for. Blocking invocations (with an `invocationId`) are answered with a
//! framed Completion in the caller's protocol, which the service writes to the browser as is.
//!
//! The function has a Service Bus output (`syncRequests`), so the Functions host always sends
//! it the JSON envelope. That envelope carries request and response bodies as text, which
//! MessagePack cannot survive; MessagePack clients are therefore served only where the
//! protocol layer says bodies travel as bytes (the forwarded path, the local stack), and
//! refused with a clear error elsewhere. Likewise `TriggerSync` queues only where the layer
//! offers output bindings.
//!
//! Every refusal of the request itself is an [`UpstreamError`], mapped to its status and body
//! in one place; a hub method's own failure is a Completion error, not an HTTP error.

pub mod hub_methods;
pub mod upstream;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use meschain_signalr::hub_protocol::{self, Protocol};
use serde_json::Value;

use std::sync::Arc;

use meschain_functions_protocol::{Context, HttpBinding, HttpRequest, HttpResponse};
use meschain_model::clock::Clock;

use crate::dashboard::Snapshots;
use crate::signalr_rest::SignalRRest;
use crate::sync_runtime::SyncRuntime;
use hub_methods::{Caller, Effects, HubMethod, MethodEnv, MethodError};
use meschain_store::{Counter, Event, EventKind, Recorder, Store};
use upstream::{Category, Rejection, UpstreamKeys, UpstreamRequest};

pub const BINDING: HttpBinding =
    HttpBinding { route: "signalr/upstream", request: "req", response: "res", methods: &[Method::POST] };
/// The Service Bus output binding sync requests are written to.
pub const SYNC_OUTPUT: &str = "syncRequests";

/// What `connection-events` needs: the keys upstream calls are signed with, what hub methods
/// call (SignalR's REST API, the store's presence, the dashboard snapshot for
/// `requestDashboardUpdate`), where analytics and presence changes go, and its clock.
pub struct Deps {
    keys: UpstreamKeys,
    rest: Arc<SignalRRest>,
    store: Arc<dyn Store>,
    snapshots: Arc<Snapshots>,
    sync: Arc<SyncRuntime>,
    recorder: Recorder,
    clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(
        keys: UpstreamKeys,
        rest: Arc<SignalRRest>,
        store: Arc<dyn Store>,
        snapshots: Arc<Snapshots>,
        sync: Arc<SyncRuntime>,
        recorder: Recorder,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Deps { keys, rest, store, snapshots, sync, recorder, clock }
    }

    /// The access keys accepted on upstream signatures now.
    pub fn upstream_keys(&self) -> Vec<meschain_signalr::AccessKey> {
        self.keys.accepted().iter().cloned().collect()
    }
}

/// Why the upstream request itself was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream calls are POSTed")]
    MethodNotAllowed,
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("MessagePack is not supported through the Functions host envelope; use the JSON hub protocol")]
    BinaryNotCarried,
    #[error("connections events are connected and disconnected")]
    UnknownEvent,
    #[error("the body is not a hub Invocation message")]
    InvalidInvocation,
    #[error("the invocation target differs from X-ASRS-Event")]
    TargetMismatch,
}

impl From<UpstreamError> for HttpResponse {
    fn from(e: UpstreamError) -> Self {
        let (status, code) = match &e {
            UpstreamError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            UpstreamError::Rejected(r) => (r.status(), "upstream_rejected"),
            UpstreamError::BinaryNotCarried => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            UpstreamError::UnknownEvent => (StatusCode::BAD_REQUEST, "unknown_event"),
            UpstreamError::InvalidInvocation => (StatusCode::BAD_REQUEST, "invalid_invocation"),
            UpstreamError::TargetMismatch => (StatusCode::BAD_REQUEST, "target_mismatch"),
        };
        HttpResponse::error(status, code, &e.to_string())
    }
}

pub async fn run(deps: &Deps, ctx: &mut Context, req: &HttpRequest) -> HttpResponse {
    handle(deps, ctx, req).await.unwrap_or_else(HttpResponse::from)
}

async fn handle(deps: &Deps, ctx: &mut Context, req: &HttpRequest) -> Result<HttpResponse, UpstreamError> {
    if req.method != Method::POST {
        return Err(UpstreamError::MethodNotAllowed);
    }
    let up = upstream::validate(req, &deps.keys.accepted()).inspect_err(|r| {
        ctx.log(format_args!("upstream request refused: {r}"));
        // Signed with a key newer than ours?
        if r.status() == StatusCode::UNAUTHORIZED && deps.keys.signature_failed() {
            ctx.log("reading Key Vault early after an upstream signature failure");
        }
    })?;
    if up.protocol == Protocol::MessagePack && !ctx.carries_binary_bodies() {
        ctx.log("MessagePack upstream call refused: the host's envelope cannot carry binary bodies");
        return Err(UpstreamError::BinaryNotCarried);
    }
    match up.category {
        Category::Connections => connection_event(deps, ctx, &up).await,
        Category::Messages => invocation(deps, ctx, &up).await,
    }
}

async fn connection_event(deps: &Deps, ctx: &mut Context, up: &UpstreamRequest) -> Result<HttpResponse, UpstreamError> {
    let now = deps.clock.now_ms();
    let (hub, user) = (up.hub.name(), up.user_id.as_deref());
    // Presence goes to the store in the background: another instance may see the disconnect.
    let mut event = if up.event.eq_ignore_ascii_case("connected") {
        deps.recorder.connected(hub, &up.connection_id, user);
        Event::new(EventKind::Connected, now)
    } else if up.event.eq_ignore_ascii_case("disconnected") {
        deps.recorder.disconnected(hub, &up.connection_id, user);
        let event = Event::new(EventKind::Disconnected, now);
        match disconnect_error(&up.body) {
            Some(error) if !error.is_empty() => event.with_detail(&error),
            _ => event,
        }
    } else {
        return Err(UpstreamError::UnknownEvent);
    };
    ctx.log(format_args!("{} {} on {}", event.kind.as_str(), up.connection_id, up.hub));
    event = event.with_hub(hub).with_connection(&up.connection_id).with_user(user);
    deps.recorder.record(event);
    Ok(HttpResponse::new(StatusCode::OK))
}

/// `{"Type":11,"Error":"…"}`, keys in any case (§E.4); absent or unreadable → no error.
fn disconnect_error(body: &[u8]) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else { return None };
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case("error")).and_then(|(_, v)| v.as_str()).map(str::to_string)
}

async fn invocation(deps: &Deps, ctx: &mut Context, up: &UpstreamRequest) -> Result<HttpResponse, UpstreamError> {
    let invocation =
        hub_protocol::parse_invocation_body(up.protocol == Protocol::MessagePack, &up.body).map_err(|e| {
            ctx.log(format_args!("invalid invocation body: {e}"));
            UpstreamError::InvalidInvocation
        })?;
    if !invocation.target.eq_ignore_ascii_case(&up.event) {
        return Err(UpstreamError::TargetMismatch);
    }
    let caller = Caller {
        hub: up.hub,
        connection_id: up.connection_id.clone(),
        user_id: up.user_id.clone(),
        roles: up.roles.clone(),
    };
    let env = MethodEnv {
        rest: &deps.rest,
        store: &*deps.store,
        recorder: &deps.recorder,
        snapshots: &deps.snapshots,
        sync: &deps.sync,
        can_queue: ctx.can_write_outputs(),
        now_ms: deps.clock.now_ms(),
    };
    let mut effects = Effects::default();
    let result = match HubMethod::resolve(up.hub, &invocation.target) {
        None => Err(MethodError::Unknown(invocation.target.clone())),
        Some(method) => hub_methods::call(&env, &caller, method, &invocation.arguments, &mut effects).await,
    };
    let who = caller.user_id.as_deref().unwrap_or("anonymous");
    let mut event = Event::new(EventKind::HubMethodCalled, deps.clock.now_ms())
        .with_hub(up.hub.name())
        .with_connection(&up.connection_id)
        .with_user(caller.user_id.as_deref())
        .with_name(&invocation.target);
    deps.recorder.add(Counter::HubMethods, 1);
    if let Err(e) = &result {
        deps.recorder.add(Counter::HubMethodErrors, 1);
        event = Event { kind: EventKind::HubMethodFailed, ..event }.with_detail(&e.client_message());
    }
    deps.recorder.record(event);
    match &result {
        Ok(_) => ctx.log(format_args!("{} by {who} on {}: ok", invocation.target, up.hub)),
        Err(e) => ctx.log(format_args!("{} by {who} on {}: refused ({e:?})", invocation.target, up.hub)),
    }

    let response = match &invocation.invocation_id {
        Some(id) => {
            let frame = hub_protocol::completion_frame(up.protocol, id, result.map_err(|e| e.client_message()));
            let mut resp = HttpResponse::new(StatusCode::OK);
            resp.headers.insert(CONTENT_TYPE, HeaderValue::from_static(up.protocol.upstream_content_type()));
            resp.body = frame.into();
            resp
        }
        None => HttpResponse::new(StatusCode::NO_CONTENT),
    };
    if !effects.sync_requests.is_empty() {
        // Methods queue only when `can_queue`, that is when the sink exists.
        match ctx.outputs() {
            Ok(outputs) => {
                for request in &effects.sync_requests {
                    if let Ok(item) = serde_json::to_value(request) {
                        outputs.push(SYNC_OUTPUT, item);
                    }
                }
            }
            Err(e) => tracing::error!("{} sync requests lost: {e}", effects.sync_requests.len()),
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_disconnect_error_parsing() {
        assert_eq!(disconnect_error(br#"{"Type":11,"Error":"boom"}"#).as_deref(), Some("boom"));
        assert_eq!(disconnect_error(br#"{"type":11,"error":"boom"}"#).as_deref(), Some("boom"));
        assert_eq!(disconnect_error(br#"{"Type":11}"#), None);
        assert_eq!(disconnect_error(b"garbage"), None);
        assert_eq!(disconnect_error(b""), None);
    }
}
