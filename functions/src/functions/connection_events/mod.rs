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
//! MessagePack cannot survive; MessagePack clients are therefore served only on the forwarded
//! path (the local stack), and refused with a clear error on the enveloped one.

pub mod hub_methods;
pub mod upstream;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use meschain_signalr::hub_protocol::{self, Protocol};
use serde_json::Value;

use super::{HttpBinding, HttpOutcome};
use crate::analytics::AnalyticsEvent;
use crate::app::AppState;
use crate::host::InvocationContext;
use crate::host::http::{HttpRequest, HttpResponse};
use hub_methods::{Caller, Effects, HubMethod, MethodEnv, MethodError};
use upstream::{Category, UpstreamRequest};

pub const BINDING: HttpBinding =
    HttpBinding { route: "signalr/upstream", request: "req", response: "res", methods: &[Method::POST] };
/// The Service Bus output binding sync requests are written to.
pub const SYNC_OUTPUT: &str = "syncRequests";

pub async fn run(state: &AppState, ctx: &mut InvocationContext, req: &HttpRequest) -> HttpOutcome {
    if req.method != Method::POST {
        return HttpResponse::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "upstream calls are POSTed")
            .into();
    }
    let up = match upstream::validate(req, &state.signalr.keys()) {
        Ok(up) => up,
        Err(r) => {
            ctx.log(format!("upstream request refused: {}", r.message()));
            return HttpResponse::error(r.status(), "upstream_rejected", &r.message()).into();
        }
    };
    if ctx.enveloped && up.protocol == Protocol::MessagePack {
        ctx.log("MessagePack upstream call refused: the host's envelope cannot carry binary bodies");
        return HttpResponse::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "MessagePack is not supported through the Functions host envelope; use the JSON hub protocol",
        )
        .into();
    }
    match up.category {
        Category::Connections => connection_event(state, ctx, &up).await.into(),
        Category::Messages => invocation(state, ctx, &up).await,
    }
}

async fn connection_event(state: &AppState, ctx: &mut InvocationContext, up: &UpstreamRequest) -> HttpResponse {
    let now = crate::app::now_ms();
    let kind = if up.event.eq_ignore_ascii_case("connected") {
        state.presence.connected(up.hub, &up.connection_id, up.user_id.as_deref(), now);
        "connection.connected"
    } else if up.event.eq_ignore_ascii_case("disconnected") {
        let error = disconnect_error(&up.body);
        state.presence.disconnected(up.hub, &up.connection_id, error.as_deref(), now);
        "connection.disconnected"
    } else {
        return HttpResponse::error(
            StatusCode::BAD_REQUEST,
            "unknown_event",
            "connections events are connected and disconnected",
        );
    };
    ctx.log(format!("{kind} {} on {}", up.connection_id, up.hub));
    state
        .analytics
        .record(AnalyticsEvent {
            kind,
            hub: up.hub.name().to_string(),
            connection_id: Some(up.connection_id.clone()),
            user_id: up.user_id.clone(),
            at_ms: now,
            detail: None,
        })
        .await;
    HttpResponse::new(StatusCode::OK)
}

/// `{"Type":11,"Error":"…"}`, keys in any case (§E.4); absent or unreadable → no error.
fn disconnect_error(body: &[u8]) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else { return None };
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case("error")).and_then(|(_, v)| v.as_str()).map(str::to_string)
}

async fn invocation(state: &AppState, ctx: &mut InvocationContext, up: &UpstreamRequest) -> HttpOutcome {
    let invocation = match hub_protocol::parse_invocation_body(up.protocol == Protocol::MessagePack, &up.body) {
        Ok(inv) => inv,
        Err(e) => {
            ctx.log(format!("invalid invocation body: {e}"));
            return HttpResponse::error(
                StatusCode::BAD_REQUEST,
                "invalid_invocation",
                "the body is not a hub Invocation message",
            )
            .into();
        }
    };
    if !invocation.target.eq_ignore_ascii_case(&up.event) {
        return HttpResponse::error(
            StatusCode::BAD_REQUEST,
            "target_mismatch",
            "the invocation target differs from X-ASRS-Event",
        )
        .into();
    }
    let caller = Caller {
        hub: up.hub,
        connection_id: up.connection_id.clone(),
        user_id: up.user_id.clone(),
        roles: up.roles.clone(),
    };
    let env = MethodEnv {
        rest: &state.rest,
        presence: &state.presence,
        analytics: state.analytics.as_ref(),
        can_queue: ctx.enveloped,
        now_ms: crate::app::now_ms(),
    };
    let mut effects = Effects::default();
    let result = match HubMethod::resolve(up.hub, &invocation.target) {
        None => Err(MethodError::Unknown(invocation.target.clone())),
        Some(method) => hub_methods::call(&env, &caller, method, &invocation.arguments, &mut effects).await,
    };
    let who = caller.user_id.as_deref().unwrap_or("anonymous");
    match &result {
        Ok(_) => ctx.log(format!("{} by {who} on {}: ok", invocation.target, up.hub)),
        Err(e) => ctx.log(format!("{} by {who} on {}: refused ({e:?})", invocation.target, up.hub)),
    }

    let mut outcome = HttpOutcome::from(match &invocation.invocation_id {
        Some(id) => {
            let frame = hub_protocol::completion_frame(up.protocol, id, result.map_err(|e| e.client_message()));
            let mut resp = HttpResponse::new(StatusCode::OK);
            resp.headers.insert(CONTENT_TYPE, HeaderValue::from_static(up.protocol.upstream_content_type()));
            resp.body = frame.into();
            resp
        }
        None => HttpResponse::new(StatusCode::NO_CONTENT),
    });
    if !effects.sync_requests.is_empty() {
        let items: Vec<Value> = effects.sync_requests.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
        outcome.outputs.insert(SYNC_OUTPUT.to_string(), Value::Array(items));
    }
    outcome
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
