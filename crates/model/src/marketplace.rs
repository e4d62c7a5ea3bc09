//! The marketplaces we sync with, what a sync can do, and the sync request that travels on
//! the queue from whoever asks (a hub method, `meschain enqueue`, an operator) to
//! `marketplace-sync`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Marketplace {
    Trendyol,
    Hepsiburada,
    N11,
    Amazon,
    Ebay,
    Ozon,
}

impl Marketplace {
    pub const ALL: [Marketplace; 6] = [
        Marketplace::Trendyol,
        Marketplace::Hepsiburada,
        Marketplace::N11,
        Marketplace::Amazon,
        Marketplace::Ebay,
        Marketplace::Ozon,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Marketplace::Trendyol => "trendyol",
            Marketplace::Hepsiburada => "hepsiburada",
            Marketplace::N11 => "n11",
            Marketplace::Amazon => "amazon",
            Marketplace::Ebay => "ebay",
            Marketplace::Ozon => "ozon",
        }
    }

    pub fn from_name(name: &str) -> Option<Marketplace> {
        Marketplace::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The SignalR group of the people following this marketplace: `marketplace:{name}`.
    pub fn group(self) -> String {
        format!("marketplace:{}", self.name())
    }
}

/// What a sync pushes to the marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOperation {
    Products,
    Inventory,
    Prices,
    Orders,
    Full,
}

impl SyncOperation {
    pub const ALL: [SyncOperation; 5] = [
        SyncOperation::Products,
        SyncOperation::Inventory,
        SyncOperation::Prices,
        SyncOperation::Orders,
        SyncOperation::Full,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncOperation::Products => "products",
            SyncOperation::Inventory => "inventory",
            SyncOperation::Prices => "prices",
            SyncOperation::Orders => "orders",
            SyncOperation::Full => "full",
        }
    }

    pub fn from_name(name: &str) -> Option<SyncOperation> {
        SyncOperation::ALL.into_iter().find(|o| o.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A request to sync one marketplace, as it travels on the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// Unique per request: the idempotency key of the whole sync.
    pub request_id: String,
    pub marketplace: Marketplace,
    pub operation: SyncOperation,
    /// The changes to push; empty means "everything the operation covers".
    #[serde(default)]
    pub items: Vec<Value>,
    /// The verified user who asked.
    pub requested_by: String,
    /// RFC 3339.
    pub requested_at: String,
}

impl SyncRequest {
    pub fn new(marketplace: Marketplace, operation: SyncOperation, requested_by: &str) -> Self {
        SyncRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            marketplace,
            operation,
            items: Vec::new(),
            requested_by: requested_by.to_string(),
            requested_at: crate::clock::now_rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_roundtrip() {
        for m in Marketplace::ALL {
            assert_eq!(Marketplace::from_name(&m.name().to_uppercase()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
        for o in SyncOperation::ALL {
            assert_eq!(SyncOperation::from_name(o.name()), Some(o));
        }
        assert_eq!(Marketplace::from_name("etsy"), None);
        assert_eq!(Marketplace::Trendyol.group(), "marketplace:trendyol");
    }

    #[test]
    fn test_sync_request_wire_shape() {
        let r = SyncRequest::new(Marketplace::N11, SyncOperation::Prices, "u1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["marketplace"], "n11");
        assert_eq!(v["operation"], "prices");
        assert_eq!(v["requestedBy"], "u1");
        assert_eq!(v["requestId"].as_str().unwrap().len(), 36);
        assert!(v["requestedAt"].as_str().unwrap().ends_with('Z'));
        let back: SyncRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
