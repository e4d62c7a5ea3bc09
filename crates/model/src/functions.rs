//! The app's function names: the folders holding `function.json`, and the names the Functions
//! host routes invocations by. The local tools use them to find, e.g., the upstream endpoint
//! the local SignalR service calls and the negotiate URL they print.

pub const NEGOTIATE: &str = "negotiate";
pub const CONNECTION_EVENTS: &str = "connection-events";
pub const ADMIN_BROADCAST: &str = "admin-broadcast";
pub const MARKETPLACE_SYNC: &str = "marketplace-sync";
/// The timer that enqueues changed-items syncs from the store's catalogue (off by default).
pub const CATALOG_SYNC: &str = "catalog-sync";

pub const ALL: [&str; 5] = [NEGOTIATE, CONNECTION_EVENTS, ADMIN_BROADCAST, MARKETPLACE_SYNC, CATALOG_SYNC];
