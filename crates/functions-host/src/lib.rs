//! A local Azure Functions host for custom handlers.
//!
//! It reads an app root like Core Tools (`config`, `route`, `ncrontab`), runs the handler like the
//! host (`worker`), encodes invocations exactly as the host does (`envelope`, `invoke`), serves
//! HTTP triggers (`http_trigger`), fires timers (`timer`), replaces Service Bus with a durable
//! on-disk queue (`queue`, consumed by `queue_trigger`), and applies output bindings (`outputs`).
//! `dev` wires it together on one listener, with the embedding tool's own routes; `servicebus`
//! sends to a real Service Bus namespace over REST for `meschain enqueue --namespace`.
//!
//! It knows no app: the app-specific parts of running MesChain locally (development tokens,
//! which function is the negotiate URL) are the `meschain` crate's.

pub mod config;
pub mod control;
pub mod dev;
pub mod envelope;
pub mod http_trigger;
pub mod invoke;
pub mod keys;
pub mod ncrontab;
pub mod outputs;
pub mod queue;
pub mod queue_trigger;
pub mod route;
pub mod servicebus;
pub mod timer;
pub mod worker;
