//! Pushing items: the items source read window by window, each window claimed in the run
//! document before it is pushed and confirmed in the same write that records the answers.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::checkpoint::{Checkpoint, Stop};
use super::retry::{Attempted, retrying};
use super::{Delivery, Outcome, now_ms};
use crate::catalog;
use crate::connector::{ItemResult, PushOutcome};
use crate::items_source::{ItemsSource, SourceBatch, SourceError};
use crate::progress::BatchReport;
use crate::request::{ItemsSpec, SyncPlan};
use crate::run::PendingBatch;

/// A pushed window's per-batch result.
enum Pushed {
    Accepted(String),
    Completed(Vec<ItemResult>),
    AlreadyAccepted,
    Rejected(String),
    NothingToPush,
    GaveUp(String),
    Fatal(String),
}

impl Delivery<'_, '_> {
    pub(super) async fn push_items(&mut self, cp: &mut Checkpoint, plan: &SyncPlan) -> Result<Outcome, Stop> {
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
            let now = now_ms(&*e.clock);
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
                let wait_ms = next_poll.map_or(100, |t| (t - now_ms(&*e.clock)).clamp(1, 250)) as u64;
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
        let announce = self.throttled_announcer(&cp.run);
        let announce = &announce;
        let pushes = join_all(items.iter().map(|batch| async move {
            if batch.items.is_empty() {
                return (Pushed::NothingToPush, 0);
            }
            let (fate, retries) = retrying(until, || connector.push(&batch.items), announce).await;
            let pushed = match fate {
                Attempted::Done(PushOutcome::Accepted { receipt }) => Pushed::Accepted(receipt),
                Attempted::Done(PushOutcome::Completed(results)) => Pushed::Completed(results),
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
                        pushed_at: now_ms(&*e.clock),
                        polls: 0,
                    });
                    None
                }
                Pushed::Completed(results) => {
                    // Answered item by item with the push: confirmed by the save below, in the
                    // same write that releases the claim, so it is never pushed again.
                    self.progressed = true;
                    let ok = results.iter().filter(|r| r.ok).count() as u64;
                    let failed = results.len() as u64 - ok;
                    report.succeeded = ok;
                    report.failed += failed;
                    report.unconfirmed = pushable.saturating_sub(ok + failed);
                    let room = BatchReport::MAX_FAILURES.saturating_sub(report.failures.len());
                    report.failures.extend(results.into_iter().filter(|r| !r.ok).take(room));
                    Some(report)
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
                    cp.run.succeeded += report.succeeded;
                    cp.run.failed_items += report.failed;
                    cp.run.unconfirmed_items += report.unconfirmed;
                    cp.run.record_failures(&report.failures);
                    reports.push(report);
                }
                None if invalid > 0 => {
                    cp.run.processed += invalid;
                    cp.run.failed_items += invalid;
                    cp.run.record_failures(&batch.invalid);
                    // Watchers hear about the refused items now, with their reasons; the
                    // marketplace's results for the rest come in the batch's own report later.
                    reports.push(BatchReport {
                        sync_id: cp.run.sync_id.clone(),
                        marketplace: cp.run.marketplace.clone(),
                        operation: cp.run.operation.name().to_string(),
                        batch: *b,
                        items: invalid,
                        succeeded: 0,
                        failed: invalid,
                        unconfirmed: 0,
                        failures: batch.invalid.iter().take(BatchReport::MAX_FAILURES).cloned().collect(),
                    });
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
}
