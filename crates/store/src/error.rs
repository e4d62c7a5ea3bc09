//! The store's errors: small, and shaped by what a caller does next.

use std::time::Duration;

/// Why a store operation failed.
///
/// Callers branch on the variant: `Conflict` means "re-read and decide again" (optimistic
/// concurrency), `Unavailable` means "try later" (throttled, unreachable, timed out), `Invalid`
/// means the request itself is wrong and retrying cannot help. Messages never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A precondition failed: the document exists (`Absent`) or changed (`Etag`).
    #[error("precondition failed on {collection}/{id}")]
    Conflict { collection: String, id: String },
    /// The store cannot serve the request now; `retry_after` is the service's hint (429).
    #[error("store unavailable: {reason}")]
    Unavailable { reason: String, retry_after: Option<Duration> },
    /// The request cannot succeed as made: a bad name, a document too large, bad JSON.
    #[error("invalid store request: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        StoreError::Unavailable { reason: reason.into(), retry_after: None }
    }

    pub fn conflict(collection: &str, id: &str) -> Self {
        StoreError::Conflict { collection: collection.to_string(), id: id.to_string() }
    }

    /// True when the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
