//! The sync run document: collection `sync`, id = syncId. It is the only memory a sync has
//! between deliveries, instances and continuations, and every change to it is a `put_doc`
//! with the etag last read, so two deliveries can never both believe they own a batch.
//!
//! Batches are fixed ranges of the item list (`batch * batchSize ..`), so a batch number is
//! enough to know what to push again. A batch moves, in one guarded write each, from
//! unclaimed (`>= nextBatch`) to `inFlight` (claimed; pushed or not, unknown) to `pending`
//! (accepted, results outstanding) to done (counted). `retry` holds claimed batches known not to
//! have been pushed. A delivery that finds `inFlight` batches left by a dead owner pushes them
//! again and counts them in `repeatedBatches`: stock and price are absolute values, so the
//! repeat is harmless.

use meschain_model::money::Money;
use serde::{Deserialize, Serialize};

use crate::connector::ItemResult;
use crate::request::Operation;

pub const COLLECTION: &str = "sync";
/// Failed items kept in the document, for the operator.
pub const MAX_FAILURE_SAMPLES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub owner: String,
    /// Epoch milliseconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingBatch {
    pub batch: u64,
    pub receipt: String,
    /// Items pushed in it.
    pub items: u64,
    /// Epoch milliseconds.
    pub pushed_at: i64,
    pub polls: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRun {
    pub sync_id: String,
    pub marketplace: String,
    pub operation: Operation,
    /// Identifies the request's items; a syncId reused for different items is refused.
    pub fingerprint: String,
    pub requested_by: Option<String>,
    pub status: RunStatus,
    /// Items (or, for orders, orders) in the sync, once known.
    pub total: Option<u64>,
    pub batch_size: u64,
    /// Batches (or order pages), once known.
    pub batches: Option<u64>,
    pub next_batch: u64,
    pub in_flight: Vec<u64>,
    pub retry: Vec<u64>,
    pub pending: Vec<PendingBatch>,
    pub processed: u64,
    pub succeeded: u64,
    pub failed_items: u64,
    pub unconfirmed_items: u64,
    pub repeated_batches: u64,
    /// Transient errors retried (429s honoured included).
    pub retries: u64,
    pub orders_imported: u64,
    /// Exact: `Decimal`'s own serde writes a decimal string, so sums survive the document round
    /// trip unrounded, and reads strings and numbers alike (older documents hold a number).
    pub revenue: Money,
    /// For orders: the fixed end of the window, epoch ms, so pages do not shift.
    pub orders_until: Option<i64>,
    pub lease: Option<Lease>,
    pub deliveries: u32,
    /// Deliveries in a row that ended at the time budget without finishing a batch.
    pub stalled_deliveries: u32,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub last_error: Option<String>,
    pub failures: Vec<ItemResult>,
    /// For a sync read from the store's catalogue: what it reads, fixed at its start, and the
    /// mark it advances when it completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<crate::catalog::Snapshot>,
}

impl SyncRun {
    /// Whether another owner holds a live lease at `now_ms`.
    pub fn leased_to_other(&self, owner: &str, now_ms: i64) -> bool {
        self.lease.as_ref().is_some_and(|l| l.owner != owner && l.expires_at > now_ms)
    }

    /// Whether every batch is done.
    pub fn all_done(&self) -> bool {
        self.batches.is_some_and(|b| self.next_batch >= b)
            && self.in_flight.is_empty()
            && self.retry.is_empty()
            && self.pending.is_empty()
    }

    pub fn record_failures(&mut self, failures: &[ItemResult]) {
        let room = MAX_FAILURE_SAMPLES.saturating_sub(self.failures.len());
        self.failures.extend(failures.iter().filter(|f| !f.ok).take(room).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_lease_and_done() {
        let mut run: SyncRun = serde_json::from_value(serde_json::json!({
            "syncId": "s", "marketplace": "trendyol", "operation": "inventory", "fingerprint": "f",
            "requestedBy": null, "status": "running", "total": 10, "batchSize": 5, "batches": 2,
            "nextBatch": 2, "inFlight": [], "retry": [], "pending": [], "processed": 10, "succeeded": 10,
            "failedItems": 0, "unconfirmedItems": 0, "repeatedBatches": 0, "retries": 0,
            "ordersImported": 0, "revenue": 0.0, "ordersUntil": null,
            "lease": {"owner": "a", "expiresAt": 1000}, "deliveries": 1, "stalledDeliveries": 0,
            "startedAt": "t", "updatedAt": "t", "finishedAt": null, "lastError": null, "failures": []
        }))
        .unwrap();
        assert!(run.leased_to_other("b", 999));
        assert!(!run.leased_to_other("b", 1000), "expired");
        assert!(!run.leased_to_other("a", 999), "own lease");
        assert!(run.all_done());
        run.in_flight.push(1);
        assert!(!run.all_done());
        let many: Vec<ItemResult> =
            (0..50).map(|i| ItemResult { barcode: i.to_string(), ok: false, reasons: vec![] }).collect();
        run.record_failures(&many);
        run.record_failures(&many);
        assert_eq!(run.failures.len(), MAX_FAILURE_SAMPLES);
    }
}
