//! The embedded Service Bus stand-in: durable queues on disk ([`store`]), the trigger's metadata
//! encoding ([`metadata`]), and the dispatcher that feeds `serviceBusTrigger` functions with at
//! most `maxConcurrentCalls` invocations in flight per function.

pub mod metadata;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, watch};

pub use store::{MAX_DELIVERY_COUNT, NewMessage, StoreError, StoredMessage};

use crate::config::Function;
use crate::invoke::Invoker;

/// Service Bus entity names: letters, digits, `.`, `-`, `_` (no `/`: names become folder names).
pub fn validate_queue_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 260
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid queue name {name:?} (letters, digits, '.', '-', '_'; must start and end with a letter or digit)"
        ))
    }
}

/// One queue: its store and a wake-up for dispatchers.
pub struct Queue {
    pub name: String,
    store: store::QueueStore,
    notify: Notify,
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

    async fn blocking<T: Send + 'static>(
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

/// One `serviceBusTrigger` function's consumer.
pub struct Dispatcher {
    pub queue: Arc<Queue>,
    pub function: Arc<Function>,
    pub binding: String,
    pub binary: bool,
    pub invoker: Invoker,
    pub queues: Arc<Queues>,
    pub max_concurrent: usize,
}

impl Dispatcher {
    /// Runs until `shutdown` flips.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let Dispatcher { queue, function, binding, binary, invoker, queues, max_concurrent } = self;
        dispatch(queue, function, binding, binary, invoker, queues, max_concurrent, shutdown).await
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    queue: Arc<Queue>,
    function: Arc<Function>,
    binding: String,
    binary: bool,
    invoker: Invoker,
    queues: Arc<Queues>,
    max_concurrent: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(max_concurrent));
    let client_id = format!("{}-{}", metadata::LOCAL_NAMESPACE, crate::envelope::guid());
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = shutdown.changed() => break,
        };
        let notified = queue.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Only the in-memory reservation happens here; its fsync runs in the invocation task so
        // that up to `max_concurrent` deliveries are persisted in parallel.
        let received = queue.blocking(|s| s.reserve(Instant::now())).await;
        let locked = match received {
            Ok(Some(l)) => l,
            Ok(None) => {
                drop(permit);
                // The periodic tick also returns expired locks to the queue.
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            Err(e) => {
                tracing::error!(queue = %queue.name, "receive failed: {e}");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let (queue, function, binding, invoker, queues, client_id) =
            (queue.clone(), function.clone(), binding.clone(), invoker.clone(), queues.clone(), client_id.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let seq = locked.message.sequence_number;
            let persisted = {
                let l = locked.clone();
                queue.blocking(move |s| s.persist_delivery(&l)).await
            };
            if let Err(e) = persisted {
                tracing::error!(queue = %queue.name, "cannot record the delivery of message {seq}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                queue.notify.notify_one();
                return;
            }
            let body = metadata::invocation_body(
                &metadata::Delivery {
                    message: &locked.message,
                    lock_token: &locked.lock_token,
                    function: &function.name,
                    binding: &binding,
                    binary,
                    client_id: &client_id,
                },
                OffsetDateTime::now_utc(),
            );
            let outcome = match invoker.invoke(&function.name, &body).await {
                Ok(result) => crate::outputs::apply(&function, &result, &queues).await,
                Err(e) => Err(e.to_string()),
            };
            let token = locked.lock_token.clone();
            let settle = match &outcome {
                Ok(()) => queue.blocking(move |s| s.complete(seq, &token)).await,
                Err(err) => {
                    tracing::warn!(
                        function = %function.name,
                        message_id = %locked.message.message_id,
                        delivery_count = locked.message.delivery_count,
                        "invocation failed, abandoning the message: {err}"
                    );
                    let err = err.clone();
                    queue.blocking(move |s| s.abandon(seq, &token, &err)).await
                }
            };
            if let Err(e) = settle {
                tracing::error!(function = %function.name, "settling message {seq} failed: {e}");
            }
            queue.notify.notify_one();
        });
    }
    // Let in-flight invocations finish (and settle their messages) before the handler is
    // stopped, as the host drains on shutdown; bounded so a stuck handler cannot block exit.
    let all = u32::try_from(max_concurrent).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(30), permits.acquire_many(all)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_queue_names() {
        assert!(validate_queue_name("marketplace-sync").is_ok());
        assert!(validate_queue_name("a.b_c").is_ok());
        for bad in ["", "../x", "a/b", "-a", "a-", "with space"] {
            assert!(validate_queue_name(bad).is_err(), "{bad}");
        }
    }
}
