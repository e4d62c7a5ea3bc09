//! Runs one delivery of a sync: takes the run's lease, pushes the unfinished batches, reads
//! their results, reports progress, and either finishes the run or checkpoints it for a
//! continuation message.
//!
//! Why it is safe under Service Bus's at-least-once delivery (see [`crate::run`] for the
//! document): every step that changes which batches are done is one etag-guarded write of the
//! run document, and a batch is claimed (written as in flight) before it is pushed. A second
//! delivery of the same sync waits while the lease is alive; if the owner writes meanwhile, it is
//! alive and will finish, so the waiter ends successfully; if the lease expires (the owner died),
//! the waiter takes over and pushes the dead owner's in-flight window again, counting it. An
//! owner that stalls past its lease loses the next write and stops. So only a window in flight
//! when its owner died or stalled can be pushed twice.
//!
//! Transient errors (429, 5xx, timeouts) are retried with backoff or the marketplace's
//! `Retry-After`, within a budget per window; a batch that runs out of budget is put back for a
//! later window. At the delivery's deadline the engine stops claiming, checkpoints and answers
//! [`Outcome::Continue`]: the caller sends a continuation message and the next delivery resumes.
//!
//! The delivery is split by concern: [`report`] (what watchers and analytics are told),
//! [`checkpoint`] (the run document, its lease and etag-guarded saves), [`retry`] (transient
//! errors within a time budget), [`push`] (claiming, pushing and confirming windows of
//! batches), [`poll`] (reading results of asynchronously applied batches) and [`orders`]
//! (importing orders page by page).

mod checkpoint;
mod orders;
mod poll;
mod push;
mod report;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::catalog::Catalog;
use crate::connector::Connector;
use crate::net_guard::ItemsHttp;
use crate::progress::{Progress, SyncStatus, Throttle, Waiting};
use crate::request::{ItemsSpec, SyncPlan};
use crate::run::{RunStatus, SyncRun};
use checkpoint::{Acquired, Checkpoint, Stop};
use meschain_model::clock::Clock;
use meschain_model::money::Money;
use meschain_store::status::{self, StatusChange, SyncState as State};
use meschain_store::{Store, StoreError};
pub use report::{EventKind, Reporter, SyncEvent};
use report::{event, progress};

/// Deliveries in a row that may end at the deadline without finishing any batch before the run
/// is failed (a marketplace or source that stays down must not loop continuations forever).
const MAX_STALLED_DELIVERIES: u32 = 3;

/// Tuning of one delivery.
#[derive(Debug, Clone)]
pub struct Options {
    /// Unique per delivery: the lease owner.
    pub owner: String,
    /// Stop claiming batches at this instant and continue in a new message.
    pub deadline: Instant,
    pub lease_ttl: Duration,
    /// Retry time one window may spend before its unpushed batches are put back.
    pub window_budget: Duration,
    /// First batch-result poll after a push; doubles per poll up to `max_poll_interval`.
    pub first_poll: Duration,
    pub max_poll_interval: Duration,
    /// Polls before a batch's results are given up on (its items count as unconfirmed).
    pub max_polls: u32,
    /// How often a delivery waiting for another's lease rereads the run.
    pub wait_poll: Duration,
}

impl Options {
    pub fn new(owner: impl Into<String>, deadline: Instant) -> Self {
        Options {
            owner: owner.into(),
            deadline,
            lease_ttl: Duration::from_secs(120),
            window_budget: Duration::from_secs(45),
            first_poll: Duration::from_millis(500),
            max_poll_interval: Duration::from_secs(5),
            max_polls: 15,
            wait_poll: Duration::from_secs(1),
        }
    }

    /// When a batch pushed at `pushed_at` (ms) is due for poll number `polls + 1`.
    fn poll_due_ms(&self, pushed_at: i64, polls: u32) -> i64 {
        let mut delay = Duration::ZERO;
        for i in 0..=polls {
            delay += (self.first_poll * 2u32.saturating_pow(i.min(16))).min(self.max_poll_interval);
        }
        pushed_at + delay.as_millis() as i64
    }
}

/// The run's figures at the end of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub sync_id: String,
    pub status: RunStatus,
    pub processed: u64,
    pub total: Option<u64>,
    pub succeeded: u64,
    pub failed_items: u64,
    pub unconfirmed_items: u64,
    pub repeated_batches: u64,
    pub retries: u64,
    pub orders_imported: u64,
    pub revenue: Money,
    pub last_error: Option<String>,
}

impl From<&SyncRun> for Summary {
    fn from(r: &SyncRun) -> Self {
        Summary {
            sync_id: r.sync_id.clone(),
            status: r.status,
            processed: r.processed,
            total: r.total,
            succeeded: r.succeeded,
            failed_items: r.failed_items,
            unconfirmed_items: r.unconfirmed_items,
            repeated_batches: r.repeated_batches,
            retries: r.retries,
            orders_imported: r.orders_imported,
            revenue: r.revenue,
            last_error: r.last_error.clone(),
        }
    }
}

/// How a delivery ended. Every variant but an error means "complete the message".
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(Summary),
    /// The run failed for good (bad credentials, a broken source, ...); recorded and reported.
    Failed(Summary),
    /// The run had already finished: nothing was done.
    AlreadyFinished(Summary),
    /// A live delivery owns the run and will finish it.
    RunningElsewhere,
    /// Checkpointed at the deadline: send a continuation message.
    Continue,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store could not be used: fail the invocation so the message is delivered again.
    #[error("sync store: {0}")]
    Store(StoreError),
    /// The request conflicts with the run stored under its syncId: as invalid as a bad field.
    #[error("{0}")]
    Conflicting(String),
}

pub struct Engine<'r> {
    pub store: Arc<dyn Store>,
    pub connector: Arc<dyn Connector>,
    pub reporter: Arc<dyn Reporter + 'r>,
    /// Fetches `itemsUrl` sources, only where its policy allows.
    pub http: ItemsHttp,
    /// The store's catalogue, for requests without items; `None` when not configured.
    pub catalog: Option<Arc<Catalog>>,
    pub options: Options,
    /// Wall time for leases and timestamps; waits and deadlines use tokio's time, so tests
    /// can move both (a `ManualClock` and paused tokio time) instead of sleeping.
    pub clock: Arc<dyn Clock>,
}

/// Wall time from the engine's clock, as the run document stores it (epoch ms): leases are
/// compared across processes, so they need wall time, not a process's monotonic clock.
fn now_ms(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.now_ms()).unwrap_or(i64::MAX)
}

fn now_rfc3339(clock: &dyn Clock) -> String {
    meschain_model::clock::rfc3339_millis(clock.now_ms())
}

/// What identifies a request's content, so a syncId reused for another request is refused.
pub fn fingerprint(plan: &SyncPlan) -> String {
    let mut h = Sha256::new();
    h.update(plan.marketplace.name().as_bytes());
    h.update([0]);
    h.update(plan.operation.name().as_bytes());
    h.update([0]);
    match &plan.items {
        ItemsSpec::Inline(items) => h.update(serde_json::to_vec(items).unwrap_or_default()),
        ItemsSpec::Url(url) => h.update(url.as_str().as_bytes()),
        ItemsSpec::Catalog(mode) => h.update(mode.name().as_bytes()),
        ItemsSpec::None => {}
    }
    if let Some(since) = plan.since {
        h.update(since.unix_timestamp().to_be_bytes());
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Engine<'_> {
    /// Runs this delivery of `plan`.
    pub async fn run(&self, plan: &SyncPlan) -> Result<Outcome, EngineError> {
        let fingerprint = fingerprint(plan);
        let (mut cp, resumed) = match self.acquire(plan, &fingerprint).await? {
            Acquired::Owned(cp, resumed) => (cp, resumed),
            Acquired::Finished(run) => return Ok(Outcome::AlreadyFinished(Summary::from(&run))),
            Acquired::Elsewhere => return Ok(Outcome::RunningElsewhere),
            Acquired::Deadline => return Ok(Outcome::Continue),
        };
        tracing::info!(
            sync_id = %plan.sync_id, marketplace = plan.marketplace.name(), operation = plan.operation.name(),
            resumed, sandbox = self.connector.is_sandbox(), "sync delivery owns the run"
        );
        let mut d = Delivery {
            engine: self,
            throttle: Throttle::default(),
            status_items: 0,
            progressed: false,
            repeats: Vec::new(),
            progress_sent: 0,
        };
        let kind = if resumed { EventKind::Resumed } else { EventKind::Started };
        self.reporter.event(&event(&cp.run, kind, None, 0, 0, None)).await;
        let first = d.throttle.always(Instant::now(), progress(&cp.run, SyncStatus::Running));
        d.send(&cp.run, first).await;

        let result = if plan.operation.pushes_items() {
            d.push_items(&mut cp, plan).await
        } else {
            d.import_orders(&mut cp, plan).await
        };
        match result {
            Ok(outcome) => Ok(outcome),
            Err(Stop::Lost) => {
                tracing::warn!(sync_id = %plan.sync_id, "another delivery took the sync over; stopping");
                Ok(Outcome::RunningElsewhere)
            }
            Err(Stop::Store(e)) => Err(EngineError::Store(e)),
        }
    }
}

/// One delivery's working state.
struct Delivery<'a, 'r> {
    engine: &'a Engine<'r>,
    throttle: Throttle,
    /// Items confirmed since the marketplace status was last written.
    status_items: u64,
    /// Whether this delivery finished any batch.
    progressed: bool,
    /// Batches a dead owner left in flight, not yet claimed again.
    repeats: Vec<u64>,
    /// Progress messages sent by this delivery.
    progress_sent: u64,
}

/// The future of one throttling announcement.
type Announced<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

impl<'a, 'r> Delivery<'a, 'r> {
    /// What tells the watchers that the marketplace throttled a call of `run` and the sync waits:
    /// a progress update carrying the wait, sent at once (not throttled: it is rare and says why
    /// nothing moves).
    fn throttled_announcer(&self, run: &SyncRun) -> impl Fn(Duration, String) -> Announced<'a> + 'a {
        let engine = self.engine;
        let base = progress(run, SyncStatus::Running);
        move |wait: Duration, reason: String| {
            let mut update = base.clone();
            let until_ms = engine.clock.now_ms().saturating_add(wait.as_millis() as u64);
            update.waiting = Some(Waiting {
                seconds: wait.as_millis().div_ceil(1000) as u64,
                until: meschain_model::clock::rfc3339_millis(until_ms),
                reason,
            });
            Box::pin(async move { engine.reporter.progress(&update).await })
        }
    }
}

impl Delivery<'_, '_> {
    /// Sends a progress update and mirrors it in the marketplace status.
    async fn send(&mut self, run: &SyncRun, update: Progress) {
        self.engine.reporter.progress(&update).await;
        self.progress_sent += 1;
        let (state, succeeded, error) = match update.status {
            SyncStatus::Completed => (State::Idle, true, None),
            SyncStatus::Failed => (State::Failed, false, run.last_error.clone()),
            _ => (State::Running, false, None),
        };
        let change = StatusChange {
            state,
            progress: (state == State::Running).then_some(update.progress),
            sync_id: run.sync_id.clone(),
            items_pushed: std::mem::take(&mut self.status_items),
            succeeded,
            error,
        };
        if let Err(e) =
            status::update(&*self.engine.store, &run.marketplace, &change, &now_rfc3339(&*self.engine.clock)).await
        {
            // The dashboard's view only: the sync goes on.
            tracing::warn!(marketplace = %run.marketplace, error = %e, "marketplace status not written");
        }
    }

    async fn offer_progress(&mut self, run: &SyncRun) {
        if let Some(update) = self.throttle.offer(Instant::now(), progress(run, SyncStatus::Running)) {
            self.send(run, update).await;
        }
    }

    async fn flush_due_progress(&mut self, run: &SyncRun) {
        if let Some(update) = self.throttle.due(Instant::now()) {
            self.send(run, update).await;
        }
    }

    async fn finish(&mut self, cp: &mut Checkpoint, error: Option<String>) -> Result<Outcome, Stop> {
        let failed = error.is_some();
        cp.run.status = if failed { RunStatus::Failed } else { RunStatus::Completed };
        cp.run.finished_at = Some(now_rfc3339(&*self.engine.clock));
        cp.run.lease = None;
        if error.is_some() {
            cp.run.last_error = error.clone();
        }
        cp.save().await?;
        let status = if failed { SyncStatus::Failed } else { SyncStatus::Completed };
        let last = self.throttle.always(Instant::now(), progress(&cp.run, status));
        self.send(&cp.run, last).await;
        let kind = if failed { EventKind::Failed } else { EventKind::Completed };
        self.engine.reporter.event(&event(&cp.run, kind, None, 0, 0, error)).await;
        let summary = Summary::from(&cp.run);
        tracing::info!(sync_id = %cp.run.sync_id, status = ?summary.status, processed = summary.processed,
            failed_items = summary.failed_items, repeated_batches = summary.repeated_batches,
            progress_messages = self.progress_sent, "sync finished");
        Ok(if failed { Outcome::Failed(summary) } else { Outcome::Completed(summary) })
    }

    /// Checkpoints at the deadline for a continuation message.
    async fn pause(&mut self, cp: &mut Checkpoint) -> Result<Outcome, Stop> {
        cp.run.stalled_deliveries = if self.progressed { 0 } else { cp.run.stalled_deliveries + 1 };
        if cp.run.stalled_deliveries >= MAX_STALLED_DELIVERIES {
            let reason = cp.run.last_error.clone().unwrap_or_else(|| "no progress".into());
            return self
                .finish(cp, Some(format!("no batch finished in {MAX_STALLED_DELIVERIES} deliveries: {reason}")))
                .await;
        }
        cp.run.lease = None;
        cp.save().await?;
        self.flush_due_progress(&cp.run).await;
        self.engine.reporter.event(&event(&cp.run, EventKind::Continued, None, 0, 0, None)).await;
        tracing::info!(sync_id = %cp.run.sync_id, processed = cp.run.processed, "sync checkpointed for a continuation");
        Ok(Outcome::Continue)
    }

    fn window_end(&self) -> Instant {
        let o = &self.engine.options;
        (Instant::now() + o.window_budget).min(o.deadline.max(Instant::now() + Duration::from_secs(5)))
    }
}

/// What a continuation message carries: the request as received, with its syncId made explicit
/// and the continuation counted.
pub fn continuation_body(original: &Value, plan: &SyncPlan) -> Value {
    let mut body = original.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("syncId".into(), Value::String(plan.sync_id.clone()));
        obj.insert("continuation".into(), Value::from(plan.continuation + 1));
    }
    body
}
