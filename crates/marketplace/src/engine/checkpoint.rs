//! The run document as one delivery owns it: taking the lease (or waiting out a live owner's),
//! etag-guarded saves that renew the lease, and the first document of a new run.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Engine, EngineError, now_ms, now_rfc3339};
use crate::request::SyncPlan;
use crate::run::{COLLECTION, Lease, RunStatus, SyncRun};
use meschain_model::clock::Clock;
use meschain_model::money::Money;
use meschain_store::{Precondition, Store, StoreError};

/// Attempts at a run-document write while the store is unavailable.
const STORE_ATTEMPTS: u32 = 4;

/// Why a delivery stops early.
pub(super) enum Stop {
    /// Another delivery took the run over.
    Lost,
    Store(StoreError),
}

/// The run document as this delivery owns it.
pub(super) struct Checkpoint {
    pub(super) store: Arc<dyn Store>,
    pub(super) etag: String,
    pub(super) run: SyncRun,
    pub(super) owner: String,
    pub(super) ttl: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

impl Checkpoint {
    pub(super) async fn save(&mut self) -> Result<(), Stop> {
        if self.run.status == RunStatus::Running && self.run.lease.is_some() {
            self.run.lease = Some(Lease {
                owner: self.owner.clone(),
                expires_at: now_ms(&*self.clock) + self.ttl.as_millis() as i64,
            });
        }
        self.run.updated_at = now_rfc3339(&*self.clock);
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
    pub(super) async fn keep_alive(&mut self) -> Result<(), Stop> {
        let half = self.ttl.as_millis() as i64 / 2;
        match &self.run.lease {
            Some(l) if l.expires_at - now_ms(&*self.clock) < half => self.save().await,
            _ => Ok(()),
        }
    }
}

pub(super) enum Acquired {
    Owned(Checkpoint, bool),
    Finished(SyncRun),
    Elsewhere,
    Deadline,
}

impl Engine<'_> {
    pub(super) async fn acquire(&self, plan: &SyncPlan, fingerprint: &str) -> Result<Acquired, EngineError> {
        let o = &self.options;
        let mut seen_etag: Option<String> = None;
        loop {
            let current = self.store.get_doc(COLLECTION, &plan.sync_id).await.map_err(EngineError::Store)?;
            let Some(current) = current else {
                let run =
                    new_run(plan, fingerprint, self.connector.max_batch() as u64, &o.owner, o.lease_ttl, &*self.clock);
                let value = serde_json::to_value(&run).expect("run serializes");
                match self.store.put_doc(COLLECTION, &plan.sync_id, &value, Precondition::Absent).await {
                    Ok(etag) => {
                        let cp = Checkpoint {
                            store: self.store.clone(),
                            etag,
                            run,
                            owner: o.owner.clone(),
                            ttl: o.lease_ttl,
                            clock: self.clock.clone(),
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
            if run.leased_to_other(&o.owner, now_ms(&*self.clock)) {
                // The owner wrote since we first looked: it is alive and its own delivery finishes
                // the run. A dead owner never writes, so its lease runs out and we take over.
                if seen_etag.as_ref().is_some_and(|e| *e != current.etag) {
                    return Ok(Acquired::Elsewhere);
                }
                seen_etag = Some(current.etag);
                if Instant::now() >= o.deadline {
                    return Ok(Acquired::Deadline);
                }
                let expires_in = run.lease.as_ref().map_or(0, |l| l.expires_at - now_ms(&*self.clock)).max(1) as u64;
                tokio::time::sleep(o.wait_poll.min(Duration::from_millis(expires_in + 10))).await;
                continue;
            }
            run.lease = Some(Lease {
                owner: o.owner.clone(),
                expires_at: now_ms(&*self.clock) + o.lease_ttl.as_millis() as i64,
            });
            run.deliveries += 1;
            run.updated_at = now_rfc3339(&*self.clock);
            let value = serde_json::to_value(&run).expect("run serializes");
            match self.store.put_doc(COLLECTION, &plan.sync_id, &value, Precondition::Etag(current.etag)).await {
                Ok(etag) => {
                    let cp = Checkpoint {
                        store: self.store.clone(),
                        etag,
                        run,
                        owner: o.owner.clone(),
                        ttl: o.lease_ttl,
                        clock: self.clock.clone(),
                    };
                    return Ok(Acquired::Owned(cp, true));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(EngineError::Store(e)),
            }
        }
    }
}

fn new_run(
    plan: &SyncPlan,
    fingerprint: &str,
    batch_size: u64,
    owner: &str,
    ttl: Duration,
    clock: &dyn Clock,
) -> SyncRun {
    let now = now_rfc3339(clock);
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
        revenue: Money::ZERO,
        orders_until: None,
        lease: Some(Lease { owner: owner.to_string(), expires_at: now_ms(clock) + ttl.as_millis() as i64 }),
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
