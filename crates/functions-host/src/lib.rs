//! A local Azure Functions host for custom handlers.
//!
//! It reads an app root like Core Tools (`config`), runs the handler like the host (`worker`),
//! encodes invocations exactly as the host does (`envelope`, `invoke`), serves HTTP triggers
//! (`http_trigger`), fires timers (`timer`, `ncrontab`), and replaces Service Bus with a durable
//! on-disk queue (`queue`). `dev` wires it together for `meschain dev`; `servicebus` sends to a
//! real Service Bus namespace over REST for `meschain enqueue --namespace`.

pub mod config;
pub mod control;
pub mod dev;
pub mod dev_token;
pub mod envelope;
pub mod http_trigger;
pub mod invoke;
pub mod keys;
pub mod ncrontab;
pub mod outputs;
pub mod queue;
pub mod servicebus;
pub mod timer;
pub mod worker;
