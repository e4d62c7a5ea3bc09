//! `marketplace-status/{marketplace}`: one document per marketplace, written by the sync engine,
//! read by the dashboard snapshot. An absent document means the marketplace is idle.

use serde::{Deserialize, Serialize};

use crate::doc::{self, Precondition, Versioned};
use crate::{Store, StoreError};

/// The collection holding the six status documents.
pub const COLLECTION: &str = "marketplace-status";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    Idle,
    Running,
    Failed,
}

/// The status document (the agreed JSON: camelCase fields, RFC 3339 times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketplaceStatus {
    pub marketplace: String,
    pub status: SyncState,
    /// 0-100 while running; null otherwise.
    pub progress: Option<u8>,
    pub last_success_at: Option<String>,
    #[serde(default)]
    pub items_pushed_today: u64,
    pub last_error: Option<String>,
    pub sync_id: Option<String>,
    pub updated_at: String,
}

impl MarketplaceStatus {
    /// What an absent document means.
    pub fn idle(marketplace: &str) -> Self {
        MarketplaceStatus {
            marketplace: marketplace.to_string(),
            status: SyncState::Idle,
            progress: None,
            last_success_at: None,
            items_pushed_today: 0,
            last_error: None,
            sync_id: None,
            updated_at: String::new(),
        }
    }
}

/// Reads one marketplace's status; absent = `None`.
pub async fn get(store: &dyn Store, marketplace: &str) -> Result<Option<Versioned<MarketplaceStatus>>, StoreError> {
    doc::get_typed(store, COLLECTION, marketplace).await
}

/// Writes one marketplace's status under `precondition`; returns the new etag.
pub async fn put(
    store: &dyn Store,
    status: &MarketplaceStatus,
    precondition: Precondition,
) -> Result<String, StoreError> {
    doc::put_typed(store, COLLECTION, &status.marketplace, status, precondition).await
}
