//! The marketplaces we sync with, what a sync can do, and the sync request that travels on
//! the queue from whoever asks (a hub method, `meschain enqueue`, an operator) to
//! `marketplace-sync`.

use serde::{Deserialize, Serialize};

use crate::money::Money;

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

/// What a sync does: the one list of sync operations, used by the queue message, the sync engine
/// (`meschain_marketplace::request::Operation` is this type) and the hub methods that start syncs.
/// A full catalogue sync is a mode of a request, not an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOperation {
    /// Stock (and optionally prices) of the given items.
    Inventory,
    /// Prices of the given items.
    Prices,
    /// Orders changed since a point in time, imported from the marketplace.
    Orders,
}

impl SyncOperation {
    pub const ALL: [SyncOperation; 3] = [SyncOperation::Inventory, SyncOperation::Prices, SyncOperation::Orders];

    pub fn name(self) -> &'static str {
        match self {
            SyncOperation::Inventory => "inventory",
            SyncOperation::Prices => "prices",
            SyncOperation::Orders => "orders",
        }
    }

    pub fn from_name(name: &str) -> Option<SyncOperation> {
        SyncOperation::ALL.into_iter().find(|o| o.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the operation pushes items (as opposed to reading orders).
    pub fn pushes_items(self) -> bool {
        !matches!(self, SyncOperation::Orders)
    }

    /// Whether a hub method (the dashboard's "Start sync") can start it: such a request carries
    /// no items, so an operation that pushes some needs the store's catalogue to read them from.
    /// The page offers exactly these (negotiate tells it, see
    /// `functions/src/functions/negotiate.rs`).
    pub fn startable_from_hub(self, catalogue_configured: bool) -> bool {
        !self.pushes_items() || catalogue_configured
    }
}

/// Which products a stock or price sync read from the store's catalogue pushes: those changed
/// since the last successful sync of that marketplace and operation, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    #[default]
    Changed,
    Full,
}

impl SyncMode {
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Changed => "changed",
            SyncMode::Full => "full",
        }
    }

    pub fn from_name(name: &str) -> Option<SyncMode> {
        [SyncMode::Changed, SyncMode::Full].into_iter().find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// One stock/price change, in the marketplaces' vocabulary (Trendyol's field names): the
/// absolute stock and prices of one barcode. Fields left out are not changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncItem {
    pub barcode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rust_decimal::serde::float_option")]
    pub sale_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rust_decimal::serde::float_option")]
    pub list_price: Option<Money>,
}

/// A request to sync one marketplace, as it travels on the queue. This is what producers
/// build; `marketplace-sync` checks every field of what actually arrives (the queue is not
/// trusted), see `meschain_marketplace::request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// Unique per request.
    pub request_id: String,
    pub marketplace: Marketplace,
    pub operation: SyncOperation,
    /// The changes to push (inventory, prices), inline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<SyncItem>,
    /// Or a paged JSON source of them, for catalogues too large for one message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_url: Option<String>,
    /// For orders: import orders changed since then (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Without items: read the store's catalogue, changed products (default) or all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SyncMode>,
    /// The idempotency key of the whole sync; absent: the queue message's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<String>,
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
            items_url: None,
            since: None,
            mode: None,
            sync_id: None,
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
        assert!(v.get("items").is_none() && v.get("itemsUrl").is_none() && v.get("syncId").is_none());
        let back: SyncRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let mut r = r;
        r.items.push(SyncItem {
            barcode: "B1".into(),
            quantity: Some(3),
            sale_price: Some(Money::new(95, 1)),
            list_price: None,
        });
        r.sync_id = Some("s-1".into());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["items"], serde_json::json!([{"barcode": "B1", "quantity": 3, "salePrice": 9.5}]));
        assert_eq!(v["syncId"], "s-1");
    }
}
