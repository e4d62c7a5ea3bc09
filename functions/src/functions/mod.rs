//! The functions this app serves, one module each, and the list the protocol layer
//! ([`meschain_functions_protocol`]) is told about: [`Function`] is the app's [`FunctionSet`].
//! Folder names under the app root match [`Function::name`]; a unit test keeps the two in step
//! with each `function.json`. No function module imports another: what two share lives
//! outside this module (e.g. [`crate::dashboard`]).
//!
//! Adding a function: its folder and `function.json`, a module here with a `Deps` struct (only
//! what the function reads and writes, and its clock) and a plain `pub async fn run(deps, ctx,
//! input)`, a variant in [`Function`] with one arm in each match below, and in
//! [`crate::app`] its `Deps` built once and one arm in the `Handler` impl. Output bindings go
//! through `ctx.outputs()` (see `connection_events`, which writes sync requests to a Service
//! Bus output); the protocol crate's docs list the steps in full.

use meschain_functions_protocol::{FunctionSet, HttpBinding};
use meschain_model::functions as names;

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

    /// The names are the model's (`meschain_model::functions`), the one list the local tools use too.
    fn name(self) -> &'static str {
        match self {
            Function::Negotiate => names::NEGOTIATE,
            Function::ConnectionEvents => names::CONNECTION_EVENTS,
            Function::AdminBroadcast => names::ADMIN_BROADCAST,
            Function::MarketplaceSync => names::MARKETPLACE_SYNC,
            Function::CatalogSync => names::CATALOG_SYNC,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn function_json(name: &str) -> Value {
        let path = format!("{}/../{name}/function.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    /// The handler serves exactly the model's functions, no more, no fewer.
    #[test]
    fn test_functions_are_the_models() {
        assert_eq!(Function::ALL.map(Function::name), names::ALL);
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
