//! Small shared documents with optimistic concurrency (sync runs, marketplace status, leases,
//! the store's own counters and presence).
//!
//! A document lives in a collection under an id and carries an etag that changes on every
//! write. Writers that must not lose each other's updates read, change, and write back with
//! [`Precondition::Etag`]; a [`StoreError::Conflict`] means someone else won, so they re-read.
//! [`update_doc`] packages that loop.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Store, StoreError};

/// Largest document the store accepts, in bytes of JSON. Cosmos DB's limit is 2 MB; small shared
/// state should be far below, and a cap catches a runaway writer before the service does.
pub const MAX_DOC_BYTES: usize = 256 * 1024;

/// A value with the etag it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: String,
}

/// The condition under which a write (or delete) may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Always: create or replace.
    Any,
    /// Create only: fails with `Conflict` if the document exists.
    Absent,
    /// Replace only if unchanged since read at this etag: fails with `Conflict` otherwise
    /// (also when the document was deleted meanwhile).
    Etag(String),
}

/// How long a document is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Until deleted (state: status, leases, presence).
    Keep,
    /// As long as analytics events (`ANALYTICS_TTL_SECONDS`): per-day counters, finished runs.
    Analytics,
}

/// Checks a collection name or id: what both back ends accept, so code that works locally works
/// on Cosmos DB (whose ids may not hold `/ \ ? #`).
pub fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.chars().any(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("{what} must be 1-200 characters without / \\ ? # or control characters")))
    }
}

/// Typed reads and writes over the JSON document API.
pub async fn get_typed<T: DeserializeOwned>(
    store: &dyn Store,
    collection: &str,
    id: &str,
) -> Result<Option<Versioned<T>>, StoreError> {
    match store.get_doc(collection, id).await? {
        None => Ok(None),
        Some(Versioned { value, etag }) => {
            let value = serde_json::from_value(value)
                .map_err(|e| StoreError::Invalid(format!("{collection}/{id} does not match its type: {e}")))?;
            Ok(Some(Versioned { value, etag }))
        }
    }
}

/// Writes a typed value; returns the new etag.
pub async fn put_typed<T: Serialize>(
    store: &dyn Store,
    collection: &str,
    id: &str,
    value: &T,
    precondition: Precondition,
) -> Result<String, StoreError> {
    let value =
        serde_json::to_value(value).map_err(|e| StoreError::Invalid(format!("unserializable document: {e}")))?;
    store.put_doc(collection, id, &value, precondition).await
}

/// Read-modify-write with retries on conflict: `change` gets the current value (or `None`) and
/// returns the new one, or `None` to leave the document as it is. Returns what was written.
pub async fn update_doc<T, F>(
    store: &dyn Store,
    collection: &str,
    id: &str,
    retention: Retention,
    mut change: F,
) -> Result<Option<T>, StoreError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Option<T>,
{
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        let current = get_typed::<T>(store, collection, id).await?;
        let (old, precondition) = match current {
            Some(Versioned { value, etag }) => (Some(value), Precondition::Etag(etag)),
            None => (None, Precondition::Absent),
        };
        let Some(new) = change(old) else { return Ok(None) };
        let value =
            serde_json::to_value(&new).map_err(|e| StoreError::Invalid(format!("unserializable document: {e}")))?;
        match store.put_doc_with(collection, id, &value, precondition, retention).await {
            Ok(_) => return Ok(Some(new)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::unavailable(format!("{collection}/{id} kept changing under {ATTEMPTS} attempts")))
}

pub(crate) fn doc_size_ok(value: &Value) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Invalid(format!("unserializable document: {e}")))?;
    if bytes.len() > MAX_DOC_BYTES {
        return Err(StoreError::Invalid(format!("document of {} bytes exceeds {MAX_DOC_BYTES}", bytes.len())));
    }
    Ok(bytes)
}
