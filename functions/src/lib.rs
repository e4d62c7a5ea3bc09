//! MesChain Realtime: the Azure Functions custom handler.
//!
//! One binary (`handler`) serves every function of the app. Layout:
//! - [`functions`]: one module per function (`negotiate`, ...), each a plain async function
//!   over the protocol's request types and a `Deps` struct of exactly what it needs, and the
//!   list that tells the protocol layer (`meschain-functions-protocol`, which knows no
//!   function) which functions exist.
//! - [`auth`]: who the caller is (login tokens, App Service Authentication).
//! - [`hubs`]: the hubs and which roles may use them.
//! - [`settings`]: every setting, read and checked once at start.
//! - [`cors`]: browser access to the HTTP functions.
//! - [`app`]: builds each function's `Deps` once from the settings, the table (the protocol's
//!   `Handler`) that calls each function with its own, and the router.
//! - [`client_tokens`]: the key negotiate signs client tokens with (access key or service-issued).
//! - [`dashboard`]: the admin snapshot and metric updates `admin-broadcast` sends, and where
//!   the snapshot is read from (shared with the `requestDashboardUpdate` hub command).
//!   Presence, counters and analytics live in the store (`meschain-store`), shared by every
//!   instance.
//! - [`log_output`]: the handler's log lines on stdout, batched per worker thread.
//! - [`sync_runtime`]: what `marketplace-sync` keeps between invocations (connectors, their
//!   rate limits, the sync settings), part of its `Deps`.

pub mod app;
pub mod auth;
pub mod client_tokens;
pub mod cors;
pub mod dashboard;
pub mod functions;
pub mod hubs;
pub mod log_output;
pub mod marketplace;
pub mod settings;
pub mod signalr_rest;
pub mod sync_runtime;
