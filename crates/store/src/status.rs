//! `marketplace-status/{marketplace}`: one document per marketplace, written by the sync engine
//! (through [`update`]), read by the dashboard snapshot. An absent document means the
//! marketplace is idle. Schema, reader and writer live here together, in the crate that owns
//! the document; the engine (`meschain-marketplace`) only says what changed.
//!
//! Writes are etag-guarded read-modify-writes, so concurrent syncs of one marketplace do not
//! lose each other's `itemsPushedToday`; that count starts again when the stored `updatedAt`
//! is from an earlier UTC day.

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

const ATTEMPTS: usize = 8;

/// A change to one marketplace's status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub state: SyncState,
    pub progress: Option<u8>,
    pub sync_id: String,
    /// Items confirmed pushed since the last change.
    pub items_pushed: u64,
    pub succeeded: bool,
    pub error: Option<String>,
}

/// Applies `change` to the status of `marketplace` at `now` (RFC 3339, UTC).
pub async fn update(store: &dyn Store, marketplace: &str, change: &StatusChange, now: &str) -> Result<(), StoreError> {
    let day = |t: &str| t.get(..10).unwrap_or("").to_string();
    for _ in 0..ATTEMPTS {
        let (mut s, pre) = match get(store, marketplace).await {
            Ok(Some(v)) => (v.value, Precondition::Etag(v.etag)),
            Ok(None) => (MarketplaceStatus::idle(marketplace), Precondition::Absent),
            // A document that no longer parses is replaced rather than blocking the dashboard.
            Err(StoreError::Invalid(_)) => (MarketplaceStatus::idle(marketplace), Precondition::Any),
            Err(e) => return Err(e),
        };
        if day(&s.updated_at) != day(now) {
            s.items_pushed_today = 0;
        }
        s.items_pushed_today += change.items_pushed;
        s.status = change.state;
        s.progress = change.progress;
        s.sync_id = Some(change.sync_id.clone());
        s.updated_at = now.to_string();
        if change.succeeded {
            s.last_success_at = Some(now.to_string());
            s.last_error = None;
        }
        if change.error.is_some() {
            s.last_error = change.error.clone();
        }
        match put(store, &s, pre).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::conflict(COLLECTION, marketplace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedStore;
    use std::sync::Arc;
    use std::time::Duration;

    fn change(items: u64) -> StatusChange {
        StatusChange {
            state: SyncState::Running,
            progress: Some(10),
            sync_id: "s".into(),
            items_pushed: items,
            succeeded: false,
            error: None,
        }
    }

    #[tokio::test]
    async fn test_counts_per_day_and_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), Duration::from_secs(3600)).await.unwrap());
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                update(&*store, "trendyol", &change(5), "2026-12-02T06:00:00Z").await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let doc = store.get_doc(COLLECTION, "trendyol").await.unwrap().unwrap().value;
        assert_eq!(doc["itemsPushedToday"], 20);
        assert_eq!(doc["status"], "running");
        assert_eq!(doc["marketplace"], "trendyol");
        update(&*store, "trendyol", &change(1), "2026-12-03T00:00:01Z").await.unwrap();
        let doc = store.get_doc(COLLECTION, "trendyol").await.unwrap().unwrap().value;
        assert_eq!(doc["itemsPushedToday"], 1, "a new day starts from zero");
    }
}
