//! Importing orders: the marketplace's pages of orders changed in a fixed window, each page
//! checkpointed before the next is read.

use tokio::time::Instant;

use super::checkpoint::{Checkpoint, Stop};
use super::report::event;
use super::retry::{Attempted, retrying};
use super::{Delivery, EventKind, Outcome, now_ms};
use crate::request::SyncPlan;
use meschain_model::money::Money;

impl Delivery<'_, '_> {
    pub(super) async fn import_orders(&mut self, cp: &mut Checkpoint, plan: &SyncPlan) -> Result<Outcome, Stop> {
        let e = self.engine;
        let Some(since) = plan.since else {
            return self.finish(cp, Some("an orders sync needs since".into())).await;
        };
        let from = (since.unix_timestamp_nanos() / 1_000_000) as i64;
        let until = *cp.run.orders_until.get_or_insert_with(|| now_ms(&*e.clock));
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
            let announce = self.throttled_announcer(&cp.run);
            let (fate, retries) =
                retrying(self.window_end(), || e.connector.orders(from, until, page as u32), &announce).await;
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
            cp.run.revenue += page_data.orders.iter().map(|o| o.total).sum::<Money>();
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
