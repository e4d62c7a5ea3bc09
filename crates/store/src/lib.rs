//! The MesChain store: analytics events, presence, rolling counters and small shared documents,
//! kept where every instance of the app sees them.
//!
//! Functions scale out and restart at will, so nothing the dashboard or a sync needs may live
//! only in one process. One trait, [`Store`], has two real implementations:
//!
//! - [`embedded::EmbeddedStore`]: SQLite (bundled) in a data folder (`MESCHAIN_DATA_DIR`): the
//!   default, and what `meschain dev` uses. Several processes may share one folder.
//! - [`cosmos::CosmosStore`]: Azure Cosmos DB (NoSQL API) through the official
//!   `azure_data_cosmos` crate, with an account key or Microsoft Entra ID.
//!
//! The trait is deliberately small (documents with preconditions, a batched event append, a
//! ping); presence, counters and the dashboard reads are written once on top of it
//! ([`presence`], [`counters`], [`dashboard`]), so both stores behave the same by construction
//! and one test suite checks both. Request handlers never await the store: they use the
//! [`recorder::Recorder`] handle, which buffers and writes in the background.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub mod cosmos;
pub mod counters;
pub mod dashboard;
pub mod doc;
pub mod embedded;
pub mod error;
pub mod event;
pub mod presence;
pub mod recorder;
pub mod settings;
pub mod status;
pub mod tally;

pub use counters::Counter;
pub use doc::{Precondition, Retention, Versioned};
pub use error::StoreError;
pub use event::{Event, EventKind};
pub use recorder::{Recorder, RecorderConfig, RecorderStats};
pub use settings::{Backend, StoreSettings};
pub use status::{MarketplaceStatus, SyncState};

/// Which implementation a store is, for logs and health details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    Cosmos,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Embedded => "embedded",
            StoreKind::Cosmos => "cosmos",
        }
    }
}

/// The store. Collections and ids must pass [`doc::check_name`].
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    fn kind(&self) -> StoreKind;

    /// A document and its etag; `None` if absent.
    async fn get_doc(&self, collection: &str, id: &str) -> Result<Option<Versioned<Value>>, StoreError>;

    /// Writes a document under `precondition` (kept until deleted); returns the new etag.
    /// A failed precondition is [`StoreError::Conflict`].
    async fn put_doc(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        precondition: Precondition,
    ) -> Result<String, StoreError> {
        self.put_doc_with(collection, id, value, precondition, Retention::Keep).await
    }

    /// [`Store::put_doc`] with a retention.
    async fn put_doc_with(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        precondition: Precondition,
        retention: Retention,
    ) -> Result<String, StoreError>;

    /// Deletes a document under `precondition` (`Absent` is refused as meaningless); false if
    /// it was not there.
    async fn delete_doc(&self, collection: &str, id: &str, precondition: Precondition) -> Result<bool, StoreError>;

    /// Appends analytics events (kept for the analytics TTL). All or a clear error; a retried
    /// batch may be stored twice on Cosmos DB only if the first attempt's outcome was unknown.
    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError>;

    /// Events stored since `since_ms`, optionally of one kind. A scan, for tests and tools,
    /// never on the dashboard path.
    async fn count_events(&self, kind: Option<EventKind>, since_ms: u64) -> Result<u64, StoreError>;

    /// A cheap read proving the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// How long events and per-day counters are kept.
    fn analytics_ttl(&self) -> Duration;
}

/// Opens the store the settings describe (creating the data folder, or on Cosmos DB the
/// database and container when allowed).
pub async fn open(settings: &StoreSettings) -> Result<Arc<dyn Store>, StoreError> {
    match &settings.backend {
        Backend::Embedded { data_dir } => {
            Ok(Arc::new(embedded::EmbeddedStore::open(data_dir, settings.analytics_ttl).await?))
        }
        Backend::Cosmos(cosmos) => Ok(Arc::new(cosmos::CosmosStore::open(cosmos, settings.analytics_ttl).await?)),
    }
}

/// How long a rotated Cosmos DB key that could not be used waits before the next attempt.
const KEY_RETRY: Duration = Duration::from_secs(5);

/// Like [`open`], for a Cosmos DB account key that rotates: every value `key_updates` yields
/// from then on (a new Key Vault version) becomes the key the store signs with, without a
/// restart. A key that cannot be used yet is tried again every few seconds until it works or
/// a newer one arrives; meanwhile the previous key stays in use. Other stores ignore updates.
pub async fn open_with_key_updates(
    settings: &StoreSettings,
    mut key_updates: tokio::sync::watch::Receiver<String>,
) -> Result<Arc<dyn Store>, StoreError> {
    let Backend::Cosmos(cosmos) = &settings.backend else { return open(settings).await };
    if cosmos.key.is_none() {
        return open(settings).await;
    }
    let store = Arc::new(cosmos::CosmosStore::open(cosmos, settings.analytics_ttl).await?);
    let weak = Arc::downgrade(&store);
    tokio::spawn(async move {
        while key_updates.changed().await.is_ok() {
            loop {
                let Some(store) = weak.upgrade() else { return };
                let key = key_updates.borrow_and_update().clone();
                match store.use_key(&key).await {
                    Ok(()) => {
                        tracing::info!("store: rotated Cosmos DB key in use");
                        break;
                    }
                    Err(e) => tracing::warn!(
                        "store: the rotated Cosmos DB key cannot be used yet, keeping the previous one: {e}"
                    ),
                }
                drop(store);
                // A newer key ends the wait early.
                if tokio::time::timeout(KEY_RETRY, key_updates.changed()).await.is_ok_and(|r| r.is_err()) {
                    return;
                }
            }
        }
    });
    Ok(store)
}
