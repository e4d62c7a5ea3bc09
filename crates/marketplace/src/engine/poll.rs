//! Reading the results of batches a marketplace applies asynchronously, on a doubling
//! schedule, and telling watchers about finished batches.

use std::time::Duration;

use futures_util::future::join_all;

use super::checkpoint::{Checkpoint, Stop};
use super::report::event;
use super::{Delivery, EventKind, Outcome, now_ms};
use crate::connector::{BatchStatus, ConnectorError};
use crate::progress::BatchReport;
use crate::run::PendingBatch;

impl Delivery<'_, '_> {
    /// Reads the results of the due batches.
    pub(super) async fn poll_round(
        &mut self,
        cp: &mut Checkpoint,
        due: &[PendingBatch],
    ) -> Result<Option<Outcome>, Stop> {
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
                    let waited =
                        Duration::from_millis(now_ms(&*e.clock).saturating_sub(pending.pushed_at).max(0) as u64);
                    let patient = e.connector.results_within().is_some_and(|limit| waited < limit);
                    if pending.polls < e.options.max_polls || patient {
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
    pub(super) async fn after_batches(&mut self, cp: &Checkpoint, reports: Vec<BatchReport>) {
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
}
