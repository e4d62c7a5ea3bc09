//! The embedded Service Bus stand-in: durable queues on disk ([`store`]) and the trigger's
//! metadata encoding ([`metadata`]). The consumer that feeds `serviceBusTrigger` functions is
//! [`crate::queue_trigger`]; this module knows nothing of functions or invocations.

pub mod metadata;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

pub use store::{MAX_DELIVERY_COUNT, NewMessage, StoreError, StoredMessage};

/// One queue: its store and a wake-up for dispatchers.
pub struct Queue {
    pub name: String,
    store: store::QueueStore,
    /// Wakes dispatchers when a message becomes available.
    pub(crate) notify: Notify,
}

impl Queue {
    fn with_store<T>(&self, f: impl FnOnce(&store::QueueStore) -> T) -> T {
        f(&self.store)
    }

    /// Durable enqueue (runs the fsyncs off the async threads).
    pub async fn enqueue(self: &Arc<Self>, msgs: Vec<NewMessage>) -> Result<Vec<StoredMessage>, StoreError> {
        let q = self.clone();
        let stored = tokio::task::spawn_blocking(move || q.with_store(|s| s.enqueue(msgs, OffsetDateTime::now_utc())))
            .await
            .expect("enqueue task")?;
        self.notify.notify_waiters();
        self.notify.notify_one();
        Ok(stored)
    }

    /// Runs `f` on the store off the async threads (the store fsyncs).
    pub(crate) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&store::QueueStore) -> T + Send + 'static,
    ) -> T {
        let q = self.clone();
        tokio::task::spawn_blocking(move || q.with_store(f)).await.expect("queue task")
    }

    pub fn active(&self) -> Vec<(StoredMessage, bool)> {
        self.with_store(|s| s.active())
    }

    pub fn dead_letters(&self) -> Vec<StoredMessage> {
        self.with_store(|s| s.dead_letters())
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        self.with_store(|s| s.counts())
    }

    /// Resubmits a dead-lettered message by sequence number or message id.
    pub async fn resubmit(self: &Arc<Self>, id: String) -> Result<StoredMessage, StoreError> {
        let m = self
            .blocking(move |s| {
                let seq = s.find_dead(&id).ok_or(StoreError::NotFound)?;
                s.resubmit(seq)
            })
            .await?;
        self.notify.notify_waiters();
        self.notify.notify_one();
        Ok(m)
    }
}

/// All queues of the app, by lower-cased name (Service Bus names are case-insensitive).
pub struct Queues {
    root: PathBuf,
    queues: BTreeMap<String, Arc<Queue>>,
}

impl Queues {
    /// Opens (and recovers) every named queue under `<data_dir>/queues/`.
    pub fn open(data_dir: &Path, names: &[String], lock_duration: Duration) -> Result<Queues, StoreError> {
        let root = data_dir.join("queues");
        let mut queues = BTreeMap::new();
        for name in names {
            let key = name.to_ascii_lowercase();
            if queues.contains_key(&key) {
                continue;
            }
            let store = store::QueueStore::open(&root.join(&key), lock_duration)?;
            queues.insert(key, Arc::new(Queue { name: name.clone(), store, notify: Notify::new() }));
        }
        Ok(Queues { root, queues })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Queue>> {
        self.queues.get(&name.to_ascii_lowercase())
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Queue>> {
        self.queues.values()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
