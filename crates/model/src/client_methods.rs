//! The targets the browsers register handlers for (`connection.on(target, ...)`), from the
//! original design. A message sent to any other target reaches no handler, silently.

/// The dashboard snapshot, to admins (`admin-broadcast`, `HandleAdminCommand`).
pub const UPDATE_ADMIN_DASHBOARD: &str = "updateAdminDashboard";
/// An alert raised by an admin (`BroadcastSystemAlert`), to every hub.
pub const SYSTEM_ALERT: &str = "systemAlert";
/// Progress of a marketplace sync, to the marketplace's group.
pub const MARKETPLACE_SYNC_UPDATE: &str = "marketplaceSyncUpdate";
/// A stock change, to the marketplace's group.
pub const INVENTORY_UPDATE: &str = "inventoryUpdate";
/// A new or changed order, to the marketplace's group.
pub const ORDER_NOTIFICATION: &str = "orderNotification";
/// Dashboard metrics, to the `metrics:{name}` groups.
pub const METRICS_UPDATE: &str = "metricsUpdate";

/// Every client method, for documentation and tests.
pub const ALL: [&str; 6] = [
    UPDATE_ADMIN_DASHBOARD,
    SYSTEM_ALERT,
    MARKETPLACE_SYNC_UPDATE,
    INVENTORY_UPDATE,
    ORDER_NOTIFICATION,
    METRICS_UPDATE,
];
