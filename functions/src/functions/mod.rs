//! The functions this app serves, one module each, and the table that connects them to the
//! protocol layer ([`meschain_functions_protocol`]): [`Function`] is the app's
//! [`FunctionSet`], and [`AppState`] its [`Handler`]. Folder names under the app root match
//! [`Function::name`]; a unit test keeps the two in step with each `function.json`.
//!
//! Adding a function: its folder and `function.json`, a module here with a plain
//! `pub async fn run(state, ctx, input)`, a variant in [`Function`] and one arm in each match
//! below. Output bindings go through `ctx.outputs()` (see `connection_events`, which writes
//! sync requests to a Service Bus output); the protocol crate's docs list the steps in full.

use http::StatusCode;
use meschain_functions_protocol::{
    Context, FunctionSet, Handler, HttpBinding, HttpRequest, HttpResponse, InvocationRequest, TriggerFailure,
};

use crate::app::AppState;

pub mod admin_broadcast;
pub mod catalog_sync;
pub mod connection_events;
pub mod marketplace_sync;
pub mod negotiate;

/// A function the handler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Negotiate,
    ConnectionEvents,
    AdminBroadcast,
    MarketplaceSync,
    CatalogSync,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Negotiate,
        Function::ConnectionEvents,
        Function::AdminBroadcast,
        Function::MarketplaceSync,
        Function::CatalogSync,
    ];
}

impl FunctionSet for Function {
    const FUNCTIONS: &'static [Function] = &Function::ALL;

    fn name(self) -> &'static str {
        match self {
            Function::Negotiate => "negotiate",
            Function::ConnectionEvents => "connection-events",
            Function::AdminBroadcast => "admin-broadcast",
            Function::MarketplaceSync => "marketplace-sync",
            Function::CatalogSync => "catalog-sync",
        }
    }

    fn http_binding(self) -> Option<HttpBinding> {
        match self {
            Function::Negotiate => Some(negotiate::BINDING),
            Function::ConnectionEvents => Some(connection_events::BINDING),
            Function::AdminBroadcast | Function::MarketplaceSync | Function::CatalogSync => None,
        }
    }
}

impl Handler for AppState {
    type Function = Function;

    async fn call_http(&self, function: Function, ctx: &mut Context, req: HttpRequest) -> HttpResponse {
        match function {
            Function::Negotiate => negotiate::run(self, ctx, &req).await,
            Function::ConnectionEvents => connection_events::run(self, ctx, &req).await,
            // The server routes only functions with an HTTP binding here.
            Function::AdminBroadcast | Function::MarketplaceSync | Function::CatalogSync => {
                HttpResponse::error(StatusCode::NOT_FOUND, "not_found", "not an HTTP function")
            }
        }
    }

    async fn call_trigger(
        &self,
        function: Function,
        ctx: &mut Context,
        payload: &InvocationRequest,
    ) -> Result<(), TriggerFailure> {
        match function {
            Function::AdminBroadcast => admin_broadcast::run(self, ctx, payload).await,
            Function::MarketplaceSync => marketplace_sync::run(self, ctx, payload).await,
            Function::CatalogSync => {
                let deps = catalog_sync::Deps {
                    sync: &self.sync,
                    marketplaces: self.sync.catalog_sync_marketplaces.as_deref(),
                };
                catalog_sync::run(&deps, ctx, payload).await
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
            if f == Function::MarketplaceSync {
                let trigger = bindings.iter().find(|x| x["type"] == "serviceBusTrigger").unwrap();
                assert_eq!(trigger["name"], marketplace_sync::TRIGGER_BINDING);
                let out = bindings.iter().find(|x| x["type"] == "serviceBus").unwrap();
                assert_eq!(out["name"], marketplace_sync::CONTINUATION_OUTPUT);
                assert_eq!(out["direction"], "out");
                assert_eq!(out["queueName"], trigger["queueName"], "continuations go back to the same queue");
            }
            if f == Function::CatalogSync {
                let timer = bindings.iter().find(|x| x["type"] == "timerTrigger").unwrap();
                assert_eq!(timer["name"], catalog_sync::TIMER_BINDING);
                assert_eq!(timer["schedule"], "%CATALOG_SYNC_SCHEDULE%");
                let out = bindings.iter().find(|x| x["type"] == "serviceBus").unwrap();
                assert_eq!(out["name"], catalog_sync::SYNC_OUTPUT);
                assert_eq!(out["queueName"], "%SYNC_QUEUE_NAME%");
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
