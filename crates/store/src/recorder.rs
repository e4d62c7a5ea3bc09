//! The non-blocking write path: analytics events, counters and presence changes.
//!
//! Request handlers call [`Recorder`] methods, which only touch memory (no I/O, no await):
//! counters and negotiate figures go to per-thread shards ([`crate::tally`]: relaxed atomic
//! adds, no lock shared between cores); other events and presence changes to a bounded buffer
//! behind a short lock. A background task drains the shards and writes everything in batches
//! about once a second. When the store is slow, throttles (429),
//! or is down, the buffer fills; what does not fit is dropped and *counted* (`dropped` in
//! [`RecorderStats`], and the `analyticsDropped` counter, which is never dropped itself, since
//! counters are sums of fixed size). Throttling is honoured: the task waits the service's
//! retry-after before trying again. [`Recorder::shutdown`] writes what is left (on SIGTERM).
//!
//! Counters land in the minute and day of [`RecorderConfig::clock`] (a wall clock; the system's
//! in production), so tests put increments in chosen minutes with a `ManualClock` instead of
//! waiting for one to pass. The flush interval and back-off are tokio timers: they only pace
//! writes, and tests that need a write call [`Recorder::flush`] (or pause tokio time).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use meschain_model::clock::{Clock, SharedClock};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::counters::{self, Counter, DayDoc, Deltas, RatesDoc};
use crate::doc::{self, Retention};
use crate::event::{Event, EventKind};
use crate::presence::{self, PresenceOp, PresenceTotals};
use crate::tally::Tally;
use crate::{Store, StoreError};

/// How the recorder buffers and writes.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Events and presence changes held at most while waiting to be written.
    pub capacity: usize,
    /// Events written per store call.
    pub batch_size: usize,
    /// How often buffered work is written.
    pub flush_interval: Duration,
    /// Longest wait between attempts while the store fails (a retry-after above it is capped).
    pub max_backoff: Duration,
    /// What counters and events are stamped with.
    pub clock: SharedClock,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            capacity: 100_000,
            batch_size: 1_000,
            flush_interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            clock: SharedClock::system(),
        }
    }
}

/// What the recorder has done, for the dashboard's `analytics` field and for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events and presence changes buffered, not yet written.
    pub pending: u64,
    /// Events and presence changes given up (buffer full), since this process started.
    pub dropped: u64,
    /// Events written.
    pub written: u64,
    /// Store calls that failed and were (or will be) retried, 429s included.
    pub retries: u64,
    /// Of those, throttled (429) calls.
    pub throttled: u64,
}

#[derive(Default)]
struct Buffers {
    events: VecDeque<Event>,
    presence: VecDeque<PresenceOp>,
    deltas: Deltas,
}

struct Inner {
    store: Arc<dyn Store>,
    config: RecorderConfig,
    /// False: every recording method returns at once and nothing is written (analytics off).
    enabled: bool,
    buffers: Mutex<Buffers>,
    /// Counters and negotiations on the request path, drained into `buffers` by the task.
    tally: Tally,
    /// Presence totals produced by applied changes, not yet merged into `presence/totals`.
    /// Only touched by a flush (under `flushing`).
    presence_delta: Mutex<PresenceTotals>,
    flushing: tokio::sync::Mutex<()>,
    wake: Notify,
    /// Set by `shutdown`: the background task stops after the flush it is in.
    closing: std::sync::atomic::AtomicBool,
    /// Wakes the task for shutdown, also from a retry wait (which `wake` must not cut short).
    closed: Notify,
    /// Event ids: this recorder's random prefix and a sequence.
    id_prefix: String,
    sequence: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
}

/// A cheap, cloneable handle; every method but `flush`/`shutdown` returns at once.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder writing to `store`, with its background task on the current Tokio runtime.
    pub fn start(store: Arc<dyn Store>, config: RecorderConfig) -> Recorder {
        let recorder = Recorder::unstarted(store, config);
        let inner = recorder.inner.clone();
        let handle = tokio::spawn(async move { inner.run().await });
        *lock(&recorder.task) = Some(handle);
        recorder
    }

    /// A recorder without a background task: work is written only by [`Recorder::flush`].
    /// For tests and benchmarks that control when writes happen.
    pub fn unstarted(store: Arc<dyn Store>, config: RecorderConfig) -> Recorder {
        let inner = Arc::new(Inner {
            store,
            config,
            enabled: true,
            buffers: Mutex::new(Buffers::default()),
            tally: Tally::default(),
            presence_delta: Mutex::new(PresenceTotals::default()),
            flushing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            closing: std::sync::atomic::AtomicBool::new(false),
            closed: Notify::new(),
            id_prefix: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            sequence: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        });
        Recorder { inner, task: Arc::new(Mutex::new(None)) }
    }

    /// A recorder that records nothing (`ANALYTICS_ENABLED=false`): presence and counters
    /// then stay empty. For measuring what analytics cost, not for production.
    pub fn disabled(store: Arc<dyn Store>) -> Recorder {
        let recorder = Recorder::unstarted(store, RecorderConfig::default());
        let inner = Arc::into_inner(recorder.inner).expect("just built");
        Recorder { inner: Arc::new(Inner { enabled: false, ..inner }), task: recorder.task }
    }

    /// Now on the recorder's clock, for stamping events given to [`Recorder::record`].
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Buffers an event; counts it as dropped if the buffer is full.
    pub fn record(&self, event: Event) {
        if !self.inner.enabled {
            return;
        }
        let mut b = lock(&self.inner.buffers);
        let full_batch = self.inner.push_event(&mut b, event);
        drop(b);
        if full_batch {
            self.inner.wake.notify_one();
        }
    }

    /// Adds `n` to a counter. Fixed counters cost one atomic add; they are credited to the
    /// minute in which the background task collects them (within a second).
    pub fn add(&self, counter: Counter, n: u64) {
        if !self.inner.enabled || n == 0 || self.inner.tally.add(&counter, n) {
            return;
        }
        lock(&self.inner.buffers).deltas.add(&counter, n, self.inner.now_ms());
    }

    /// Records one negotiate latency sample.
    pub fn observe_negotiate_latency(&self, latency: Duration) {
        if !self.inner.enabled {
            return;
        }
        self.inner.tally.observe_latency(latency);
    }

    /// A negotiate answered at `at_ms` (the caller's clock) for `user_id` on `hub` in `took`: counts it (`negotiate`, latency)
    /// and notes it for the `negotiate.ok` event, which is written once per hub and user per
    /// interval with `count` (how many) and `durationMs` (the slowest).
    pub fn negotiated(&self, hub: &'static str, user_id: &str, took: Duration, at_ms: u64) {
        if !self.inner.enabled {
            return;
        }
        let tally = &self.inner.tally;
        tally.add(&Counter::Negotiate, 1);
        tally.observe_latency(took);
        tally.negotiated(hub, user_id, took, || at_ms);
    }

    /// A negotiate refused at `at_ms` for `reason` (the error's own words, never a token) in `took`:
    /// counts it (`negotiate`, `negotiateErrors`, latency) and notes it for the
    /// `negotiate.failed` event, written once per reason per interval with `count`.
    pub fn negotiate_failed(&self, reason: &str, took: Duration, at_ms: u64) {
        if !self.inner.enabled {
            return;
        }
        let tally = &self.inner.tally;
        tally.add(&Counter::Negotiate, 1);
        tally.add(&Counter::NegotiateErrors, 1);
        tally.observe_latency(took);
        tally.negotiate_failed(reason, || at_ms);
    }

    /// A connection opened.
    pub fn connected(&self, hub: &str, connection_id: &str, user_id: Option<&str>) {
        self.presence(PresenceOp::Connected {
            hub: hub.to_string(),
            connection_id: connection_id.to_string(),
            user_id: user_id.map(str::to_string),
        })
    }

    /// A connection closed.
    pub fn disconnected(&self, hub: &str, connection_id: &str, user_id: Option<&str>) {
        self.presence(PresenceOp::Disconnected {
            hub: hub.to_string(),
            connection_id: connection_id.to_string(),
            user_id: user_id.map(str::to_string),
        })
    }

    fn presence(&self, op: PresenceOp) {
        if !self.inner.enabled {
            return;
        }
        let mut b = lock(&self.inner.buffers);
        if b.events.len() + b.presence.len() >= self.inner.config.capacity {
            self.inner.drop_one(&mut b, self.inner.now_ms());
            return;
        }
        b.presence.push_back(op);
    }

    pub fn stats(&self) -> RecorderStats {
        let pending = {
            let b = lock(&self.inner.buffers);
            (b.events.len() + b.presence.len()) as u64
        };
        RecorderStats {
            pending,
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            written: self.inner.written.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
            throttled: self.inner.throttled.load(Ordering::Relaxed),
        }
    }

    /// Writes everything buffered now. On failure the work stays buffered for the next attempt.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    /// Stops the background task and writes what is left, trying until `deadline` passes
    /// (honouring retry-after). Returns the final stats: `pending` is what could not be written.
    pub async fn shutdown(&self, deadline: Duration) -> RecorderStats {
        let give_up = tokio::time::Instant::now() + deadline;
        // Never abort a flush midway: the batch it holds would be lost. Ask the task to stop
        // after the flush it is in, and wait for it (within the deadline).
        self.inner.closing.store(true, Ordering::Relaxed);
        self.inner.closed.notify_one();
        let task = lock(&self.task).take();
        if let Some(mut task) = task
            && tokio::time::timeout_at(give_up, &mut task).await.is_err()
        {
            task.abort();
            tracing::warn!("store: a write was still in progress at the shutdown deadline");
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.inner.flush().await {
                Ok(()) => break,
                Err(e) => {
                    let wait = self.inner.backoff_for(&e, &mut backoff);
                    if tokio::time::Instant::now() + wait >= give_up {
                        tracing::warn!(error = %e, "store: shutting down with analytics unwritten");
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.stats()
    }
}

impl Inner {
    /// Buffers `event` (assigning its id), or counts it dropped when the buffer is full.
    /// True when a full batch is waiting.
    fn push_event(&self, b: &mut Buffers, mut event: Event) -> bool {
        if event.id.is_none() {
            let n = self.sequence.fetch_add(1, Ordering::Relaxed);
            event.id = Some(format!("{}-{n}", self.id_prefix));
        }
        if b.events.len() + b.presence.len() >= self.config.capacity {
            let at = event.at_ms;
            self.drop_one(b, at);
            return false;
        }
        b.events.push_back(event);
        b.events.len() >= self.config.batch_size
    }

    /// Moves what the request path counted into the buffers, as counter deltas (credited to
    /// now) and events.
    fn collect_tally(&self) {
        let drained = self.tally.drain();
        if drained.is_empty() {
            return;
        }
        let now = self.now_ms();
        let mut b = lock(&self.buffers);
        for (counter, n) in &drained.counts {
            b.deltas.add(counter, *n, now);
        }
        b.deltas.add_latency_histogram(&drained.latency, now);
        for (hub, user, n) in drained.negotiated {
            let event = Event::new(EventKind::Negotiated, n.first_at_ms)
                .with_hub(hub)
                .with_user(Some(&user))
                .with_count(n.count)
                .with_duration_ms(n.max_duration_ms);
            self.push_event(&mut b, event);
        }
        for (reason, f) in drained.failed {
            let event = Event::new(EventKind::NegotiateFailed, f.first_at_ms).with_detail(&reason).with_count(f.count);
            self.push_event(&mut b, event);
        }
    }

    fn drop_one(&self, b: &mut Buffers, at_ms: u64) {
        let before = self.dropped.fetch_add(1, Ordering::Relaxed);
        b.deltas.add(&Counter::AnalyticsDropped, 1, at_ms);
        if before.is_power_of_two() || before == 0 {
            tracing::warn!(dropped = before + 1, "store: analytics buffer full, dropping events");
        }
    }

    async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        let mut retry_in = None;
        loop {
            match retry_in.take() {
                // After a failure, wait it out (the service's retry-after): a full buffer must
                // not bring the next attempt forward.
                // Counts are still collected every interval meanwhile, so they are credited
                // to the minute they happened in.
                Some(wait) => {
                    let until = tokio::time::Instant::now() + wait;
                    loop {
                        let step = until.saturating_duration_since(tokio::time::Instant::now());
                        if step.is_zero() {
                            break;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(step.min(self.config.flush_interval)) => self.collect_tally(),
                            _ = self.closed.notified() => break,
                        }
                    }
                }
                None => tokio::select! {
                    _ = tokio::time::sleep(self.config.flush_interval) => {}
                    _ = self.wake.notified() => {}
                    _ = self.closed.notified() => {}
                },
            }
            if self.closing.load(Ordering::Relaxed) {
                return;
            }
            match self.flush().await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    let wait = self.backoff_for(&e, &mut backoff);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "store: write failed, will retry");
                    retry_in = Some(wait);
                }
            }
        }
    }

    /// How long to wait after `e`: the service's retry-after when it gave one, else exponential.
    fn backoff_for(&self, e: &StoreError, backoff: &mut Duration) -> Duration {
        let wait = match e {
            StoreError::Unavailable { retry_after: Some(after), .. } => *after,
            _ => {
                let w = *backoff;
                *backoff = (*backoff * 2).min(self.config.max_backoff);
                w
            }
        };
        wait.min(self.config.max_backoff)
    }

    fn note_failure(&self, e: &StoreError) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if let StoreError::Unavailable { retry_after: Some(_), .. } = e {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        self.collect_tally();
        let counters = self.flush_counters().await;
        let presence = self.flush_presence().await;
        let events = self.flush_events().await;
        counters.and(presence).and(events).inspect_err(|e| self.note_failure(e))
    }

    async fn flush_counters(&self) -> Result<(), StoreError> {
        let deltas = std::mem::take(&mut lock(&self.buffers).deltas);
        if deltas.is_empty() {
            return Ok(());
        }
        let now_minute = self.now_ms() / 60_000;
        let mut failed = Deltas::default();
        let mut result = Ok(());
        if !deltas.rates.minutes.is_empty() {
            let r = doc::update_doc::<RatesDoc, _>(
                &*self.store,
                counters::COLLECTION,
                counters::RATES_ID,
                Retention::Keep,
                |c| {
                    let mut doc = c.unwrap_or_default();
                    doc.merge(&deltas.rates, now_minute);
                    Some(doc)
                },
            )
            .await;
            if let Err(e) = r {
                failed.rates = deltas.rates.clone();
                result = Err(e);
            }
        }
        for (day, delta) in &deltas.days {
            let r = doc::update_doc::<DayDoc, _>(&*self.store, counters::COLLECTION, day, Retention::Analytics, |c| {
                let mut doc = c.unwrap_or_default();
                doc.merge(delta);
                Some(doc)
            })
            .await;
            if let Err(e) = r {
                failed.days.insert(day.clone(), delta.clone());
                result = Err(e);
            }
        }
        if result.is_err() {
            lock(&self.buffers).deltas.restore(failed, now_minute);
        }
        result
    }

    async fn flush_presence(&self) -> Result<(), StoreError> {
        let ops: Vec<PresenceOp> = lock(&self.buffers).presence.drain(..).collect();
        let mut delta = std::mem::take(&mut *lock(&self.presence_delta));
        let mut result = Ok(());
        let mut applied = 0;
        for op in &ops {
            if let Err(e) = presence::apply(&*self.store, op, &mut delta).await {
                result = Err(e);
                break;
            }
            applied += 1;
        }
        if applied < ops.len() {
            let mut b = lock(&self.buffers);
            for op in ops.into_iter().skip(applied).rev() {
                b.presence.push_front(op);
            }
            self.trim(&mut b);
        }
        if let Err(e) = presence::merge_totals(&*self.store, &delta).await {
            lock(&self.presence_delta).merge(&delta);
            result = result.and(Err(e));
        }
        result
    }

    async fn flush_events(&self) -> Result<(), StoreError> {
        // Only what is buffered now: under a steady stream a flush must still end.
        let mut left = lock(&self.buffers).events.len();
        while left > 0 {
            let batch: Vec<Event> = {
                let mut b = lock(&self.buffers);
                let n = b.events.len().min(self.config.batch_size).min(left);
                left -= n;
                b.events.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            match self.store.append_events(&batch).await {
                Ok(()) => {
                    self.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    let mut b = lock(&self.buffers);
                    for event in batch.into_iter().rev() {
                        b.events.push_front(event);
                    }
                    self.trim(&mut b);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// After putting failed work back, drops the newest over capacity (counted).
    fn trim(&self, b: &mut Buffers) {
        while b.events.len() + b.presence.len() > self.config.capacity {
            let at = match b.events.pop_back() {
                Some(e) => e.at_ms,
                None => {
                    b.presence.pop_back();
                    self.now_ms()
                }
            };
            self.drop_one(b, at);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere mid-update; the buffers are still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
