//! The `serviceBusTrigger` consumer: one [`Dispatcher`] per function takes messages from its
//! local queue with at most `maxConcurrentCalls` invocations in flight, invokes the handler,
//! applies the function's output bindings, and completes or abandons the message (abandoned
//! past `MAX_DELIVERY_COUNT` deliveries means dead-lettered, as in Service Bus).

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

use crate::config::Function;
use crate::invoke::Invoker;
use crate::queue::{Queue, Queues, metadata};

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
