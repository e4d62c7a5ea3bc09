//! What watchers and analytics are told: the [`Reporter`] the caller implements, the analytics
//! [`SyncEvent`], and the progress message built from the run document.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::connector::Order;
use crate::progress::{BatchReport, Progress, SyncStatus, percent};
use crate::run::SyncRun;
use meschain_model::money::Money;

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
    #[serde(with = "rust_decimal::serde::float")]
    pub revenue: Money,
    pub error: Option<String>,
}

pub(super) fn progress(run: &SyncRun, status: SyncStatus) -> Progress {
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
        waiting: None,
    }
}

pub(super) fn event(
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
