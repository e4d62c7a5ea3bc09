//! The high-water mark of catalogue syncs: per marketplace and operation, the `until` of the
//! last successful sync, in the shared store (collection `catalog-mark`, id
//! `{marketplace}.{operation}`), so every instance starts from the same place.
//!
//! It only moves forward, with an etag precondition: two syncs finishing together both leave
//! the later `until`. That is sound because a sync that started from mark `m` pushed every
//! product stamped in `(m, until]`, and the mark it started from was already covered.

use meschain_store::{Precondition, Store, StoreError};
use serde::{Deserialize, Serialize};

pub const COLLECTION: &str = "catalog-mark";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    /// `YYYY-MM-DD HH:MM:SS` in OpenCart's time zone (compares as text in time order).
    pub until: String,
    /// The sync that set it.
    pub sync_id: String,
    /// RFC 3339, when it was set.
    pub updated_at: String,
}

fn id(marketplace: &str, operation: &str) -> String {
    format!("{marketplace}.{operation}")
}

/// The current mark, if any sync of this marketplace and operation has completed.
pub async fn read(store: &dyn Store, marketplace: &str, operation: &str) -> Result<Option<Mark>, StoreError> {
    let Some(doc) = store.get_doc(COLLECTION, &id(marketplace, operation)).await? else { return Ok(None) };
    // An unreadable mark is treated as none: the next sync pushes everything, never too little.
    Ok(serde_json::from_value(doc.value).ok())
}

/// Moves the mark to `until` unless it is already there or later.
pub async fn advance(
    store: &dyn Store,
    marketplace: &str,
    operation: &str,
    until: &str,
    sync_id: &str,
) -> Result<(), StoreError> {
    let id = id(marketplace, operation);
    loop {
        let current = store.get_doc(COLLECTION, &id).await?;
        let precondition = match &current {
            Some(doc) => {
                let mark: Option<Mark> = serde_json::from_value(doc.value.clone()).ok();
                if mark.is_some_and(|m| m.until.as_str() >= until) {
                    return Ok(());
                }
                Precondition::Etag(doc.etag.clone())
            }
            None => Precondition::Absent,
        };
        let mark = Mark {
            until: until.to_string(),
            sync_id: sync_id.to_string(),
            updated_at: meschain_model::clock::now_rfc3339(),
        };
        let value = serde_json::to_value(&mark).expect("mark serializes");
        match store.put_doc(COLLECTION, &id, &value, precondition).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}
