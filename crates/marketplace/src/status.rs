//! The dashboard's view of each marketplace: collection `marketplace-status`, id = marketplace
//! name, in the schema agreed in TEAM.md. The sync writes it; the admin snapshot reads it.
//! `itemsPushedToday` counts per UTC day (`day` says which), added to with etag-guarded
//! read-modify-writes so concurrent syncs of one marketplace do not lose each other's counts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{DocStore, Precondition, StoreError};

pub const COLLECTION: &str = "marketplace-status";
const ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Idle,
    Running,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketplaceStatus {
    pub marketplace: String,
    pub status: State,
    pub progress: Option<u8>,
    pub last_success_at: Option<String>,
    pub items_pushed_today: u64,
    pub last_error: Option<String>,
    pub sync_id: Option<String>,
    pub updated_at: String,
    /// The UTC day `itemsPushedToday` counts (YYYY-MM-DD).
    #[serde(default)]
    pub day: String,
}

/// A change to one marketplace's status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub state: State,
    pub progress: Option<u8>,
    pub sync_id: String,
    /// Items confirmed pushed since the last change.
    pub items_pushed: u64,
    pub succeeded: bool,
    pub error: Option<String>,
}

/// Applies `change` to the status of `marketplace` at `now` (RFC 3339).
pub async fn update(
    store: &dyn DocStore,
    marketplace: &str,
    change: &StatusChange,
    now: &str,
) -> Result<(), StoreError> {
    let today = &now[..now.len().min(10)];
    for _ in 0..ATTEMPTS {
        let current = store.get_doc(COLLECTION, marketplace).await?;
        let (mut status, pre) = match current {
            Some(v) => {
                let parsed = serde_json::from_value::<MarketplaceStatus>(v.value).ok();
                (parsed, Precondition::Etag(v.etag))
            }
            None => (None, Precondition::Absent),
        };
        let s = status.get_or_insert_with(|| MarketplaceStatus {
            marketplace: marketplace.to_string(),
            status: State::Idle,
            progress: None,
            last_success_at: None,
            items_pushed_today: 0,
            last_error: None,
            sync_id: None,
            updated_at: now.to_string(),
            day: today.to_string(),
        });
        if s.day != today {
            s.day = today.to_string();
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
        let value: Value = serde_json::to_value(&*s).expect("status serializes");
        match store.put_doc(COLLECTION, marketplace, &value, pre).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryDocs;

    fn change(items: u64) -> StatusChange {
        StatusChange {
            state: State::Running,
            progress: Some(10),
            sync_id: "s".into(),
            items_pushed: items,
            succeeded: false,
            error: None,
        }
    }

    #[tokio::test]
    async fn test_counts_per_day_and_concurrent_writers() {
        let store = std::sync::Arc::new(MemoryDocs::default());
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
