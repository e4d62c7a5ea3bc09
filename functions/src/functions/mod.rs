//! The functions this app serves, one module each. Folder names under the app root match
//! [`Function::name`]; a unit test keeps the two in step with each `function.json`.

use http::Method;

use crate::app::AppState;
use crate::host::InvocationContext;
use crate::host::http::{HttpRequest, HttpResponse};

pub mod admin_broadcast;
pub mod connection_events;
pub mod negotiate;

/// Why a non-HTTP invocation failed: answered with a non-2xx status, which tells the host the
/// invocation failed (a timer run is recorded as failed; a queue message is redelivered).
#[derive(Debug)]
pub struct TriggerFailure {
    pub status: http::StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl TriggerFailure {
    pub fn bad_input(message: String) -> Self {
        TriggerFailure { status: http::StatusCode::BAD_REQUEST, code: "bad_envelope", message }
    }

    pub fn unavailable(message: String) -> Self {
        TriggerFailure { status: http::StatusCode::SERVICE_UNAVAILABLE, code: "dependency_unavailable", message }
    }
}

/// What an HTTP-triggered function produced: the response, and values for its other output
/// bindings (written by the host only for enveloped invocations).
#[derive(Debug)]
pub struct HttpOutcome {
    pub response: HttpResponse,
    pub outputs: serde_json::Map<String, serde_json::Value>,
}

impl From<HttpResponse> for HttpOutcome {
    fn from(response: HttpResponse) -> Self {
        HttpOutcome { response, outputs: serde_json::Map::new() }
    }
}

/// A function the handler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Negotiate,
    ConnectionEvents,
    AdminBroadcast,
}

/// How an HTTP-triggered function is bound: its route and the names of its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpBinding {
    pub route: &'static str,
    pub request: &'static str,
    pub response: &'static str,
    pub methods: &'static [Method],
}

impl Function {
    pub const ALL: [Function; 3] = [Function::Negotiate, Function::ConnectionEvents, Function::AdminBroadcast];

    /// The function's name: its folder and its invocation path `/{name}`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Negotiate => "negotiate",
            Function::ConnectionEvents => "connection-events",
            Function::AdminBroadcast => "admin-broadcast",
        }
    }

    pub fn http_binding(self) -> Option<HttpBinding> {
        match self {
            Function::Negotiate => Some(negotiate::BINDING),
            Function::ConnectionEvents => Some(connection_events::BINDING),
            Function::AdminBroadcast => None,
        }
    }

    /// Function names are case-insensitive to the host.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The HTTP function served at `/api/{route}`.
    pub fn from_route(route: &str) -> Option<Function> {
        let route = route.trim_matches('/');
        Function::ALL.into_iter().find(|f| f.http_binding().is_some_and(|b| b.route.eq_ignore_ascii_case(route)))
    }

    /// Runs an HTTP-triggered function.
    pub async fn call_http(self, state: &AppState, ctx: &mut InvocationContext, req: HttpRequest) -> HttpOutcome {
        match self {
            Function::Negotiate => negotiate::run(state, ctx, &req).await.into(),
            Function::ConnectionEvents => connection_events::run(state, ctx, &req).await,
            Function::AdminBroadcast => {
                HttpResponse::error(http::StatusCode::NOT_FOUND, "not_found", "not an HTTP function").into()
            }
        }
    }

    /// Runs a function that is not HTTP-triggered; on success, its output bindings.
    pub async fn call_trigger(
        self,
        state: &AppState,
        ctx: &mut InvocationContext,
        envelope: &crate::host::envelope::InvocationRequest,
    ) -> Result<serde_json::Map<String, serde_json::Value>, TriggerFailure> {
        match self {
            Function::AdminBroadcast => {
                admin_broadcast::run(state, ctx, envelope).await.map(|()| serde_json::Map::new())
            }
            Function::Negotiate | Function::ConnectionEvents => {
                Err(TriggerFailure::bad_input("this function is HTTP-triggered".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn function_json(name: &str) -> Value {
        let path = format!("{}/../{name}/function.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    /// The bindings the code relies on are the ones the host will be told about.
    #[test]
    fn test_function_json_matches_code() {
        for f in Function::ALL {
            let json = function_json(f.name());
            let bindings = json["bindings"].as_array().unwrap();
            if let Some(b) = f.http_binding() {
                let trigger = bindings.iter().find(|x| x["type"] == "httpTrigger").unwrap();
                assert_eq!(trigger["name"], b.request);
                assert_eq!(trigger["route"], b.route);
                let methods: Vec<String> = trigger["methods"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_ascii_uppercase())
                    .collect();
                let expected: Vec<String> = b.methods.iter().map(|m| m.to_string()).collect();
                assert_eq!(methods, expected);
                let out = bindings.iter().find(|x| x["type"] == "http").unwrap();
                assert_eq!(out["name"], b.response);
            }
            if f == Function::AdminBroadcast {
                let timer = bindings.iter().find(|x| x["type"] == "timerTrigger").unwrap();
                assert_eq!(timer["name"], admin_broadcast::TIMER_BINDING);
            }
            if f == Function::ConnectionEvents {
                let sb = bindings.iter().find(|x| x["type"] == "serviceBus").unwrap();
                assert_eq!(sb["name"], connection_events::SYNC_OUTPUT);
                assert_eq!(sb["direction"], "out");
            }
        }
    }

    #[test]
    fn test_lookup() {
        assert_eq!(Function::from_name("NEGOTIATE"), Some(Function::Negotiate));
        assert_eq!(Function::from_route("/negotiate/"), Some(Function::Negotiate));
        assert_eq!(Function::from_name("nope"), None);
        assert_eq!(Function::from_route("signalr/nope"), None);
        assert_eq!(Function::from_route("signalr/upstream"), Some(Function::ConnectionEvents));
    }
}
