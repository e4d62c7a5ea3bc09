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

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::catalog::{self, Catalog};
use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, PushOutcome};
use crate::items_source::{ItemsSource, SourceBatch, SourceError};
use crate::net_guard::ItemsHttp;
use crate::progress::{BatchReport, Progress, SyncStatus, Throttle, percent};
use crate::request::{ItemsSpec, SyncPlan};
use crate::run::{COLLECTION, Lease, PendingBatch, RunStatus, SyncRun};
use crate::status::{self, StatusChange};
use meschain_store::status::SyncState as State;
use meschain_store::{Precondition, Store, StoreError};

/// Deliveries in a row that may end at the deadline without finishing any batch before the run
/// is failed (a marketplace or source that stays down must not loop continuations forever).
const MAX_STALLED_DELIVERIES: u32 = 3;
/// Attempts at a run-document write while the store is unavailable.
const STORE_ATTEMPTS: u32 = 4;
/// Longest single backoff, whatever the attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured before giving the window back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Where the engine sends what watchers and analytics need.
#[async_trait]
pub trait Reporter: Send + Sync {
    /// `marketplaceSyncUpdate` (already throttled, in order).
    async fn progress(&self, update: &Progress);
    /// `inventoryUpdate`: one batch's results.
    async fn batch(&self, report: &BatchReport);
    /// `orderNotification`: one imported order.
    async fn order(&self, marketplace: &str, order: &Order);
    /// An analytics event (start, each batch, end).
    async fn event(&self, event: &SyncEvent);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Started,
    Resumed,
    Batch,
    Continued,
    Completed,
    Failed,
}

/// An analytics event; no item data beyond counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncEvent {
    pub kind: EventKind,
    pub sync_id: String,
    pub marketplace: String,
    pub operation: String,
    pub batch: Option<u64>,
    /// Items in the batch, or processed so far for start/end events.
    pub items: u64,
    pub failed: u64,
    pub total: Option<u64>,
    pub orders: u64,
    pub revenue: f64,
    pub error: Option<String>,
}

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
    pub revenue: f64,
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
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
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

/// Why a delivery stops early.
enum Stop {
    /// Another delivery took the run over.
    Lost,
    Store(StoreError),
}

/// The run document as this delivery owns it.
struct Checkpoint {
    store: Arc<dyn Store>,
    etag: String,
    run: SyncRun,
    owner: String,
    ttl: Duration,
}

impl Checkpoint {
    async fn save(&mut self) -> Result<(), Stop> {
        if self.run.status == RunStatus::Running && self.run.lease.is_some() {
            self.run.lease =
                Some(Lease { owner: self.owner.clone(), expires_at: now_ms() + self.ttl.as_millis() as i64 });
        }
        self.run.updated_at = now_rfc3339();
        let value = serde_json::to_value(&self.run).expect("run serializes");
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=STORE_ATTEMPTS {
            match self.store.put_doc(COLLECTION, &self.run.sync_id, &value, Precondition::Etag(self.etag.clone())).await
            {
                Ok(etag) => {
                    self.etag = etag;
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => return Err(Stop::Lost),
                Err(e) if attempt == STORE_ATTEMPTS || !e.is_retryable() => return Err(Stop::Store(e)),
                Err(e) => {
                    tracing::warn!(sync_id = %self.run.sync_id, error = %e, "saving the sync run failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Saves when the lease is half gone.
    async fn keep_alive(&mut self) -> Result<(), Stop> {
        let half = self.ttl.as_millis() as i64 / 2;
        match &self.run.lease {
            Some(l) if l.expires_at - now_ms() < half => self.save().await,
            _ => Ok(()),
        }
    }
}

enum Acquired {
    Owned(Checkpoint, bool),
    Finished(SyncRun),
    Elsewhere,
    Deadline,
}

/// A call's fate after retries.
enum Attempted<T> {
    Done(T),
    GaveUp(String),
    Fatal(String),
}

/// Retries transient failures of `call` until `until`; returns the fate and the retries made.
async fn retrying<T, F, Fut>(until: Instant, mut call: F) -> (Attempted<T>, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectorError>>,
{
    let mut attempt: u32 = 0;
    loop {
        match call().await {
            Ok(v) => return (Attempted::Done(v), u64::from(attempt)),
            Err(ConnectorError::Fatal(reason)) => return (Attempted::Fatal(reason), u64::from(attempt)),
            Err(ConnectorError::Transient { reason, retry_after }) => {
                let wait = match retry_after {
                    Some(d) => d,
                    None => {
                        let base = Duration::from_millis(250).saturating_mul(2u32.saturating_pow(attempt.min(10)));
                        base.min(MAX_BACKOFF).mul_f64(0.5 + rand::random::<f64>() / 2.0)
                    }
                };
                if wait > MAX_RETRY_AFTER || Instant::now() + wait > until {
                    return (Attempted::GaveUp(reason), u64::from(attempt));
                }
                tracing::debug!(%reason, wait_ms = wait.as_millis() as u64, "transient marketplace error; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

/// A pushed window's per-batch result.
enum Pushed {
    Accepted(String),
    AlreadyAccepted,
    Rejected(String),
    NothingToPush,
    GaveUp(String),
    Fatal(String),
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

    async fn acquire(&self, plan: &SyncPlan, fingerprint: &str) -> Result<Acquired, EngineError> {
        let o = &self.options;
        let mut seen_etag: Option<String> = None;
        loop {
            let current = self.store.get_doc(COLLECTION, &plan.sync_id).await.map_err(EngineError::Store)?;
            let Some(current) = current else {
                let run = new_run(plan, fingerprint, self.connector.max_batch() as u64, &o.owner, o.lease_ttl);
                let value = serde_json::to_value(&run).expect("run serializes");
                match self.store.put_doc(COLLECTION, &plan.sync_id, &value, Precondition::Absent).await {
                    Ok(etag) => {
                        let cp = Checkpoint {
                            store: self.store.clone(),
                            etag,
                            run,
                            owner: o.owner.clone(),
                            ttl: o.lease_ttl,
                        };
                        return Ok(Acquired::Owned(cp, false));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(EngineError::Store(e)),
                }
            };
            let mut run: SyncRun = serde_json::from_value(current.value).map_err(|e| {
                EngineError::Conflicting(format!(
                    "syncId {:?} holds an unreadable run ({e}); use another syncId",
                    plan.sync_id
                ))
            })?;
            if run.marketplace != plan.marketplace.name()
                || run.operation != plan.operation
                || run.fingerprint != fingerprint
            {
                return Err(EngineError::Conflicting(format!(
                    "syncId {:?} was already used for a different request ({} {}); use another syncId",
                    plan.sync_id,
                    run.marketplace,
                    run.operation.name()
                )));
            }
            if run.status != RunStatus::Running {
                return Ok(Acquired::Finished(run));
            }
            if run.leased_to_other(&o.owner, now_ms()) {
                // The owner wrote since we first looked: it is alive and its own delivery finishes
                // the run. A dead owner never writes, so its lease runs out and we take over.
                if seen_etag.as_ref().is_some_and(|e| *e != current.etag) {
                    return Ok(Acquired::Elsewhere);
                }
                seen_etag = Some(current.etag);
                if Instant::now() >= o.deadline {
                    return Ok(Acquired::Deadline);
                }
                let expires_in = run.lease.as_ref().map_or(0, |l| l.expires_at - now_ms()).max(1) as u64;
                tokio::time::sleep(o.wait_poll.min(Duration::from_millis(expires_in + 10))).await;
                continue;
            }
            run.lease = Some(Lease { owner: o.owner.clone(), expires_at: now_ms() + o.lease_ttl.as_millis() as i64 });
            run.deliveries += 1;
            run.updated_at = now_rfc3339();
            let value = serde_json::to_value(&run).expect("run serializes");
            match self.store.put_doc(COLLECTION, &plan.sync_id, &value, Precondition::Etag(current.etag)).await {
                Ok(etag) => {
                    let cp =
                        Checkpoint { store: self.store.clone(), etag, run, owner: o.owner.clone(), ttl: o.lease_ttl };
                    return Ok(Acquired::Owned(cp, true));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(EngineError::Store(e)),
            }
        }
    }
}

fn new_run(plan: &SyncPlan, fingerprint: &str, batch_size: u64, owner: &str, ttl: Duration) -> SyncRun {
    let now = now_rfc3339();
    SyncRun {
        sync_id: plan.sync_id.clone(),
        marketplace: plan.marketplace.name().to_string(),
        operation: plan.operation,
        fingerprint: fingerprint.to_string(),
        requested_by: plan.requested_by.clone(),
        status: RunStatus::Running,
        total: None,
        batch_size,
        batches: None,
        next_batch: 0,
        in_flight: Vec::new(),
        retry: Vec::new(),
        pending: Vec::new(),
        processed: 0,
        succeeded: 0,
        failed_items: 0,
        unconfirmed_items: 0,
        repeated_batches: 0,
        retries: 0,
        orders_imported: 0,
        revenue: 0.0,
        orders_until: None,
        lease: Some(Lease { owner: owner.to_string(), expires_at: now_ms() + ttl.as_millis() as i64 }),
        deliveries: 1,
        stalled_deliveries: 0,
        started_at: now.clone(),
        updated_at: now,
        finished_at: None,
        last_error: None,
        failures: Vec::new(),
        catalog: None,
    }
}

fn progress(run: &SyncRun, status: SyncStatus) -> Progress {
    Progress {
        sync_id: run.sync_id.clone(),
        marketplace: run.marketplace.clone(),
        operation: run.operation.name().to_string(),
        status,
        processed: run.processed,
        total: run.total,
        progress: if status == SyncStatus::Completed { 100 } else { percent(run.processed, run.total) },
        failed_items: run.failed_items,
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        requested_by: run.requested_by.clone(),
    }
}

fn event(
    run: &SyncRun,
    kind: EventKind,
    batch: Option<u64>,
    items: u64,
    failed: u64,
    error: Option<String>,
) -> SyncEvent {
    let batch_event = kind == EventKind::Batch;
    SyncEvent {
        kind,
        sync_id: run.sync_id.clone(),
        marketplace: run.marketplace.clone(),
        operation: run.operation.name().to_string(),
        batch,
        items: if batch_event { items } else { run.processed },
        failed: if batch_event { failed } else { run.failed_items },
        total: run.total,
        orders: run.orders_imported,
        revenue: run.revenue,
        error,
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
        if let Err(e) = status::update(&*self.engine.store, &run.marketplace, &change, &now_rfc3339()).await {
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
        cp.run.finished_at = Some(now_rfc3339());
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

    async fn push_items(&mut self, cp: &mut Checkpoint, plan: &SyncPlan) -> Result<Outcome, Stop> {
        let e = self.engine;
        let mut source = match &plan.items {
            ItemsSpec::Inline(items) => ItemsSource::Inline(items.clone().into()),
            ItemsSpec::Url(url) => ItemsSource::url(e.http.clone(), url.clone(), plan.operation),
            ItemsSpec::Catalog(mode) => {
                let Some(catalog) = e.catalog.clone() else {
                    return self.finish(cp, Some(catalog::settings::NOT_CONFIGURED.into())).await;
                };
                // A new run starts from the last successful sync's mark; a resumed one keeps its snapshot.
                let since = match &cp.run.catalog {
                    Some(_) => None,
                    None => catalog::mark::read(&*e.store, &cp.run.marketplace, plan.operation.name())
                        .await
                        .map_err(Stop::Store)?
                        .map(|m| m.until),
                };
                let snapshot = cp.run.catalog.clone();
                ItemsSource::catalog(catalog, plan.operation, *mode, since, cp.run.batch_size, snapshot)
            }
            ItemsSpec::None => return self.finish(cp, Some("no items to push".into())).await,
        };
        // The source's size, once; a resumed run checks it did not change.
        loop {
            match source.total().await {
                Ok(total) => {
                    match cp.run.total {
                        Some(known) if known != total => {
                            let reason = format!("items source changed size ({known} then {total})");
                            return self.finish(cp, Some(reason)).await;
                        }
                        Some(_) => {}
                        None => {
                            cp.run.total = Some(total);
                            cp.run.batches = Some(total.div_ceil(cp.run.batch_size.max(1)));
                            cp.run.catalog = source.snapshot().cloned();
                            cp.save().await?;
                        }
                    }
                    break;
                }
                Err(SourceError::Broken(reason)) => {
                    return self.finish(cp, Some(format!("items source: {reason}"))).await;
                }
                Err(SourceError::Transient(reason)) => {
                    cp.run.last_error = Some(format!("items source: {reason}"));
                    if Instant::now() + Duration::from_secs(1) >= e.options.deadline {
                        return self.pause(cp).await;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    cp.keep_alive().await?;
                }
            }
        }
        let concurrency = e.connector.concurrency().max(1);
        let max_pending = concurrency * 4;
        // Batches a dead owner left in flight: pushed again in the first window, and counted. They
        // stay in the document's `inFlight` until that window claims them.
        self.repeats = cp.run.in_flight.clone();
        loop {
            cp.keep_alive().await?;
            self.flush_due_progress(&cp.run).await;
            if cp.run.all_done() {
                // Before the run is marked done: a crash in between completes it again.
                if let Some(snapshot) = &cp.run.catalog {
                    let (m, op) = (&cp.run.marketplace, cp.run.operation.name());
                    catalog::mark::advance(&*e.store, m, op, &snapshot.until, &cp.run.sync_id)
                        .await
                        .map_err(Stop::Store)?;
                }
                return self.finish(cp, None).await;
            }
            if Instant::now() >= e.options.deadline {
                return self.pause(cp).await;
            }
            let mut worked = false;
            let batches = cp.run.batches.unwrap_or(0);
            if cp.run.pending.len() < max_pending {
                let mut window: Vec<(u64, bool)> =
                    std::mem::take(&mut self.repeats).into_iter().map(|b| (b, true)).collect();
                let room = concurrency.saturating_sub(window.len());
                window.extend(cp.run.retry.iter().take(room).map(|b| (*b, false)));
                let mut next = cp.run.next_batch;
                while window.len() < concurrency && next < batches {
                    window.push((next, false));
                    next += 1;
                }
                if !window.is_empty() {
                    if let Some(outcome) = self.push_window(cp, &source, &window, next).await? {
                        return Ok(outcome);
                    }
                    worked = true;
                }
            }
            let now = now_ms();
            let o = &e.options;
            let due: Vec<PendingBatch> = cp
                .run
                .pending
                .iter()
                .filter(|p| o.poll_due_ms(p.pushed_at, p.polls) <= now)
                .take(concurrency)
                .cloned()
                .collect();
            if !due.is_empty() {
                if let Some(outcome) = self.poll_round(cp, &due).await? {
                    return Ok(outcome);
                }
                worked = true;
            }
            if !worked {
                let next_poll = cp.run.pending.iter().map(|p| o.poll_due_ms(p.pushed_at, p.polls)).min();
                let wait_ms = next_poll.map_or(100, |t| (t - now_ms()).clamp(1, 250)) as u64;
                let mut wait = Duration::from_millis(wait_ms);
                if let Some(at) = self.throttle.next_due() {
                    wait = wait.min(at.saturating_duration_since(Instant::now()));
                }
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
        }
    }

    /// Claims, pushes and confirms one window. `next` is the first batch after the window.
    async fn push_window(
        &mut self,
        cp: &mut Checkpoint,
        source: &ItemsSource,
        window: &[(u64, bool)],
        next: u64,
    ) -> Result<Option<Outcome>, Stop> {
        let e = self.engine;
        let size = cp.run.batch_size as usize;
        let until = self.window_end();
        // Read the window's items before claiming it: an unreadable source claims nothing.
        let reads = join_all(window.iter().map(|(b, _)| async move {
            loop {
                match source.batch(b * size as u64, size).await {
                    Ok(batch) => return Ok(batch),
                    Err(SourceError::Transient(reason)) if Instant::now() + Duration::from_secs(1) < until => {
                        tracing::debug!(%reason, "items source transient error; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }))
        .await;
        let mut items: Vec<SourceBatch> = Vec::with_capacity(window.len());
        for read in reads {
            match read {
                Ok(batch) => items.push(batch),
                Err(SourceError::Broken(reason)) => {
                    return self.finish(cp, Some(format!("items source: {reason}"))).await.map(Some);
                }
                Err(SourceError::Transient(reason)) => {
                    // Nothing claimed, nothing changed: the same window is tried again later.
                    cp.run.last_error = Some(format!("items source: {reason}"));
                    self.repeats = window.iter().filter(|(_, repeat)| *repeat).map(|(b, _)| *b).collect();
                    return Ok(None);
                }
            }
        }

        // Claim.
        cp.run.in_flight = window.iter().map(|(b, _)| *b).collect();
        cp.run.retry.retain(|b| !cp.run.in_flight.contains(b));
        cp.run.next_batch = cp.run.next_batch.max(next);
        cp.run.repeated_batches += window.iter().filter(|(_, repeat)| *repeat).count() as u64;
        cp.save().await?;

        // Push.
        let connector = &e.connector;
        let pushes = join_all(items.iter().map(|batch| async move {
            if batch.items.is_empty() {
                return (Pushed::NothingToPush, 0);
            }
            let (fate, retries) = retrying(until, || connector.push(&batch.items)).await;
            let pushed = match fate {
                Attempted::Done(PushOutcome::Accepted { receipt }) => Pushed::Accepted(receipt),
                Attempted::Done(PushOutcome::AlreadyAccepted) => Pushed::AlreadyAccepted,
                Attempted::Done(PushOutcome::Rejected { reason }) => Pushed::Rejected(reason),
                Attempted::GaveUp(reason) => Pushed::GaveUp(reason),
                Attempted::Fatal(reason) => Pushed::Fatal(reason),
            };
            (pushed, retries)
        }))
        .await;

        // Confirm.
        cp.run.in_flight.clear();
        let mut reports = Vec::new();
        let mut fatal = None;
        for (((b, _), batch), (pushed, retries)) in window.iter().zip(&items).zip(pushes) {
            cp.run.retries += retries;
            let pushable = batch.items.len() as u64;
            let mut report = BatchReport {
                sync_id: cp.run.sync_id.clone(),
                marketplace: cp.run.marketplace.clone(),
                operation: cp.run.operation.name().to_string(),
                batch: *b,
                items: batch.len() as u64,
                succeeded: 0,
                failed: batch.invalid.len() as u64,
                unconfirmed: 0,
                failures: batch.invalid.iter().take(BatchReport::MAX_FAILURES).cloned().collect(),
            };
            let done = match pushed {
                Pushed::Accepted(receipt) => {
                    self.progressed = true;
                    cp.run.pending.push(PendingBatch {
                        batch: *b,
                        receipt,
                        items: pushable,
                        pushed_at: now_ms(),
                        polls: 0,
                    });
                    None
                }
                Pushed::NothingToPush => Some(report),
                Pushed::AlreadyAccepted => {
                    report.unconfirmed = pushable;
                    Some(report)
                }
                Pushed::Rejected(reason) => {
                    report.failed += pushable;
                    let room = BatchReport::MAX_FAILURES.saturating_sub(report.failures.len());
                    report.failures.extend(batch.items.iter().take(room).map(|i| ItemResult {
                        barcode: i.barcode.clone(),
                        ok: false,
                        reasons: vec![reason.clone()],
                    }));
                    Some(report)
                }
                Pushed::GaveUp(reason) => {
                    cp.run.last_error = Some(reason);
                    cp.run.retry.push(*b);
                    continue;
                }
                Pushed::Fatal(reason) => {
                    fatal.get_or_insert(reason);
                    cp.run.retry.push(*b);
                    continue;
                }
            };
            // Invalid items of a batch still waiting for results are counted now, once.
            let invalid = batch.invalid.len() as u64;
            match done {
                Some(report) => {
                    cp.run.processed += report.items;
                    cp.run.failed_items += report.failed;
                    cp.run.unconfirmed_items += report.unconfirmed;
                    cp.run.record_failures(&report.failures);
                    reports.push(report);
                }
                None if invalid > 0 => {
                    cp.run.processed += invalid;
                    cp.run.failed_items += invalid;
                    cp.run.record_failures(&batch.invalid);
                }
                None => {}
            }
        }
        cp.save().await?;
        self.after_batches(cp, reports).await;
        if let Some(reason) = fatal {
            return self.finish(cp, Some(reason)).await.map(Some);
        }
        Ok(None)
    }

    /// Reads the results of the due batches.
    async fn poll_round(&mut self, cp: &mut Checkpoint, due: &[PendingBatch]) -> Result<Option<Outcome>, Stop> {
        let e = self.engine;
        let polls = join_all(due.iter().map(|p| e.connector.batch_result(&p.receipt))).await;
        let mut reports = Vec::new();
        let mut fatal = None;
        for (p, result) in due.iter().zip(polls) {
            let Some(idx) = cp.run.pending.iter().position(|x| x.batch == p.batch) else { continue };
            let mut report = BatchReport {
                sync_id: cp.run.sync_id.clone(),
                marketplace: cp.run.marketplace.clone(),
                operation: cp.run.operation.name().to_string(),
                batch: p.batch,
                items: p.items,
                succeeded: 0,
                failed: 0,
                unconfirmed: 0,
                failures: Vec::new(),
            };
            match result {
                Ok(BatchStatus::Done(results)) => {
                    report.succeeded = results.iter().filter(|r| r.ok).count() as u64;
                    report.failed = results.iter().filter(|r| !r.ok).count() as u64;
                    report.unconfirmed = p.items.saturating_sub(report.succeeded + report.failed);
                    report.failures =
                        results.into_iter().filter(|r| !r.ok).take(BatchReport::MAX_FAILURES).collect::<Vec<_>>();
                }
                Err(ConnectorError::Fatal(reason)) => {
                    fatal.get_or_insert(reason);
                    continue;
                }
                Ok(BatchStatus::InProgress) | Err(ConnectorError::Transient { .. }) => {
                    let pending = &mut cp.run.pending[idx];
                    pending.polls += 1;
                    if pending.polls < e.options.max_polls {
                        continue;
                    }
                    report.unconfirmed = p.items;
                }
            }
            cp.run.pending.remove(idx);
            cp.run.processed += report.items;
            cp.run.succeeded += report.succeeded;
            cp.run.failed_items += report.failed;
            cp.run.unconfirmed_items += report.unconfirmed;
            cp.run.record_failures(&report.failures);
            reports.push(report);
        }
        cp.save().await?;
        self.after_batches(cp, reports).await;
        if let Some(reason) = fatal {
            return self.finish(cp, Some(reason)).await.map(Some);
        }
        Ok(None)
    }

    /// Tells watchers and analytics about finished batches (after they were saved).
    async fn after_batches(&mut self, cp: &Checkpoint, reports: Vec<BatchReport>) {
        if reports.is_empty() {
            return;
        }
        self.progressed = true;
        for report in &reports {
            self.status_items += report.succeeded;
            self.engine.reporter.batch(report).await;
            let ev = event(&cp.run, EventKind::Batch, Some(report.batch), report.items, report.failed, None);
            self.engine.reporter.event(&ev).await;
        }
        self.offer_progress(&cp.run).await;
    }

    async fn import_orders(&mut self, cp: &mut Checkpoint, plan: &SyncPlan) -> Result<Outcome, Stop> {
        let e = self.engine;
        let Some(since) = plan.since else {
            return self.finish(cp, Some("an orders sync needs since".into())).await;
        };
        let from = (since.unix_timestamp_nanos() / 1_000_000) as i64;
        let until = *cp.run.orders_until.get_or_insert_with(now_ms);
        if !cp.run.in_flight.is_empty() {
            // The page a dead owner was importing: imported again, counted.
            cp.run.repeated_batches += 1;
            cp.run.next_batch = cp.run.in_flight[0];
        }
        loop {
            if cp.run.batches.is_some_and(|b| cp.run.next_batch >= b) {
                cp.run.in_flight.clear();
                return self.finish(cp, None).await;
            }
            if Instant::now() >= e.options.deadline {
                return self.pause(cp).await;
            }
            let page = cp.run.next_batch;
            cp.run.in_flight = vec![page];
            cp.save().await?;
            let (fate, retries) = retrying(self.window_end(), || e.connector.orders(from, until, page as u32)).await;
            cp.run.retries += retries;
            let page_data = match fate {
                Attempted::Done(p) => p,
                Attempted::GaveUp(reason) => {
                    cp.run.last_error = Some(reason);
                    cp.run.in_flight.clear();
                    cp.save().await?;
                    continue;
                }
                Attempted::Fatal(reason) => {
                    cp.run.in_flight.clear();
                    return self.finish(cp, Some(reason)).await;
                }
            };
            for order in &page_data.orders {
                e.reporter.order(&cp.run.marketplace, order).await;
            }
            let count = page_data.orders.len() as u64;
            cp.run.orders_imported += count;
            cp.run.processed += count;
            cp.run.succeeded += count;
            cp.run.revenue += page_data.orders.iter().map(|o| o.total).sum::<f64>();
            cp.run.total = Some(page_data.total_orders.max(cp.run.processed));
            cp.run.batches = Some(u64::from(page_data.total_pages));
            cp.run.next_batch = page + 1;
            cp.run.in_flight.clear();
            cp.save().await?;
            self.progressed = true;
            let ev = event(&cp.run, EventKind::Batch, Some(page), count, 0, None);
            e.reporter.event(&ev).await;
            self.offer_progress(&cp.run).await;
        }
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
