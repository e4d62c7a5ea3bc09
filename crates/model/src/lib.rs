//! The vocabulary MesChain Realtime's parts share: the handler (`meschain-functions`), the
//! `meschain` CLI and the local tools all speak it, so none of them needs another's code to
//! agree on a name.
//!
//! - [`marketplace`]: the marketplaces, what a sync does, and the sync request on the queue.
//! - [`hubs`]: the three SignalR hubs (who may use which is the handler's policy, not here).
//! - [`groups`]: the SignalR groups the hub methods put connections in.
//! - [`client_methods`]: the targets the browsers' handlers listen on.
//! - [`settings`]: the names of the app settings (`local.settings.json` `Values`, App Settings).
//! - [`functions`]: the function names (the folders holding `function.json`).
//! - [`clock`]: the one wall clock, and a manual one for tests.
//! - [`health`]: how healthy a dependency is.
//! - [`money`]: prices and totals as exact decimals.
//! - `shutdown` (feature `shutdown`): the one "stop requested" signal of every binary.
//!
//! Kept small on purpose: plain data and names, serde, no I/O. Anything with behaviour beyond
//! parsing a name belongs to the crate that owns the behaviour.

pub mod client_methods;
pub mod clock;
pub mod functions;
pub mod groups;
pub mod health;
pub mod hubs;
pub mod marketplace;
pub mod money;
pub mod settings;
#[cfg(feature = "shutdown")]
pub mod shutdown;

pub use hubs::Hub;
pub use marketplace::{Marketplace, SyncOperation, SyncRequest};
