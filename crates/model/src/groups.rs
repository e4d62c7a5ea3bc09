//! The SignalR groups hub methods add connections to, and the broadcasts target.
//!
//! Group names are the service's only addressing for "everyone following X", so the handler
//! that joins a connection and whoever sends to the group must spell them the same way.

use crate::marketplace::Marketplace;

/// Admins join it (`JoinAdminGroup`) to receive the dashboard broadcast and system alerts.
pub const ADMINS: &str = "admins";

/// The metrics a dashboard may subscribe to (`SubscribeToDashboard`); each is a group
/// [`metric`]`(name)`.
pub const METRICS: [&str; 6] = ["performance", "business", "sync", "orders", "inventory", "errors"];

/// The group of the people following `marketplace`: `marketplace:{name}`.
pub fn marketplace(marketplace: Marketplace) -> String {
    marketplace.group()
}

/// The group of the dashboards subscribed to one of [`METRICS`]: `metrics:{name}`.
/// `None` for a name that is not one of them (compared case-insensitively).
pub fn metric(name: &str) -> Option<String> {
    known_metric(name).map(|m| format!("metrics:{m}"))
}

/// The canonical spelling of a metric name, if it is one of [`METRICS`].
pub fn known_metric(name: &str) -> Option<&'static str> {
    METRICS.iter().copied().find(|m| m.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_group_names() {
        assert_eq!(marketplace(Marketplace::Trendyol), "marketplace:trendyol");
        assert_eq!(metric("Orders").as_deref(), Some("metrics:orders"));
        assert_eq!(known_metric("SYNC"), Some("sync"));
        assert_eq!(metric("cpu"), None);
    }
}
