//! The part of the app's store the sync needs: JSON documents with optimistic concurrency.
//!
//! This mirrors, name for name, the document API agreed in TEAM.md for `meschain-store`
//! (`get_doc`, `put_doc` with `Any` | `Absent` | `Etag` preconditions, `Conflict` and
//! `Unavailable` errors) so the engine is written against the contract while that crate is
//! being built; it is replaced by the store crate's own trait when that lands.
//! [`MemoryDocs`] is the in-process implementation the tests use.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    Any,
    /// Create only.
    Absent,
    /// Replace only if unchanged since this etag.
    Etag(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("precondition failed")]
    Conflict,
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait DocStore: Send + Sync {
    async fn get_doc(&self, collection: &str, id: &str) -> Result<Option<Versioned<Value>>, StoreError>;
    async fn put_doc(&self, collection: &str, id: &str, value: &Value, pre: Precondition)
    -> Result<String, StoreError>;
}

/// Documents in memory (tests).
#[derive(Default)]
pub struct MemoryDocs {
    docs: Mutex<HashMap<(String, String), (Value, u64)>>,
    version: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl DocStore for MemoryDocs {
    async fn get_doc(&self, collection: &str, id: &str) -> Result<Option<Versioned<Value>>, StoreError> {
        let docs = self.docs.lock().unwrap();
        Ok(docs
            .get(&(collection.to_string(), id.to_string()))
            .map(|(v, e)| Versioned { value: v.clone(), etag: e.to_string() }))
    }

    async fn put_doc(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        pre: Precondition,
    ) -> Result<String, StoreError> {
        let mut docs = self.docs.lock().unwrap();
        let key = (collection.to_string(), id.to_string());
        let current = docs.get(&key).map(|(_, e)| e.to_string());
        let ok = match (&pre, &current) {
            (Precondition::Any, _) => true,
            (Precondition::Absent, None) => true,
            (Precondition::Etag(want), Some(have)) => want == have,
            _ => false,
        };
        if !ok {
            return Err(StoreError::Conflict);
        }
        let etag = self.version.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        docs.insert(key, (value.clone(), etag));
        Ok(etag.to_string())
    }
}
