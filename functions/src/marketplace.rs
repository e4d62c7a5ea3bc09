//! The marketplaces, sync operations and the sync request live in the shared model crate, so
//! the CLI and the local tools agree with the handler without depending on it.

pub use meschain_model::marketplace::*;
