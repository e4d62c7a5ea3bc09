//! What the engine needs from a marketplace, and how a marketplace is chosen from settings.
//!
//! The trait is small on purpose: push a batch (answered with a receipt where the marketplace
//! applies stock and price changes asynchronously, or with every item's result where it answers
//! at once), read a batch's per-item results, read a page of orders. Two real implementations: [`crate::trendyol`] (the documented seller API) and
//! [`crate::sandbox`] (a simulated marketplace for local runs, selected only explicitly).

use std::time::Duration;

use async_trait::async_trait;
use meschain_model::money::Money;
use serde::{Deserialize, Serialize};

use crate::request::Item;

/// Setting listing the marketplaces that use the sandbox connector (comma-separated, or `*`).
/// Absent or empty (as in Azure): no marketplace does, and one without credentials fails.
pub const SANDBOX_SETTING: &str = meschain_model::settings::MARKETPLACE_SANDBOX;

/// The marketplace's answer to a push.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// Accepted for processing; results are read later with the receipt (Trendyol,
    /// Hepsiburada, N11, Amazon's feeds: the marketplace applies the batch asynchronously).
    Accepted { receipt: String },
    /// Applied, with every item's result in the answer itself (Ozon, eBay): nothing to poll.
    /// The engine records these results in the same checkpoint that confirms the batch, so a
    /// batch the marketplace answered is never pushed again.
    Completed(Vec<ItemResult>),
    /// Refused as a repeat of an identical earlier request (Trendyol's 15-minute rule): the
    /// earlier one was accepted, but its receipt is unknown, so its results cannot be read.
    AlreadyAccepted,
    /// The whole request was refused for a reason that will not change on retry.
    Rejected { reason: String },
}

/// A batch's processing state.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchStatus {
    InProgress,
    Done(Vec<ItemResult>),
}

/// One item's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    pub barcode: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// An order read from the marketplace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub package_id: String,
    pub order_number: String,
    pub status: String,
    /// Exact; a decimal string on the wire (the browser formats it without a float).
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Money,
    pub currency: String,
    /// Epoch milliseconds.
    pub last_modified: i64,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub barcode: String,
    pub quantity: u32,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Money,
}

/// One page of orders.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersPage {
    pub orders: Vec<Order>,
    pub total_pages: u32,
    pub total_orders: u64,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying: 429, 5xx, timeouts, connection errors.
    #[error("{reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// Not worth retrying for this sync: bad credentials, a wrong seller id, a wrong URL.
    #[error("{0}")]
    Fatal(String),
}

impl ConnectorError {
    pub fn transient(reason: impl Into<String>) -> Self {
        ConnectorError::Transient { reason: reason.into(), retry_after: None }
    }
}

/// A marketplace the engine can push to and read from.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Most items one push may carry.
    fn max_batch(&self) -> usize;
    /// Most requests in flight at once (the engine's window).
    fn concurrency(&self) -> usize;
    /// Whether this is the simulated marketplace (shown in logs and status).
    fn is_sandbox(&self) -> bool {
        false
    }
    /// How long after a push its results may still come: the engine keeps polling (at its
    /// longest interval) until then before counting the items unconfirmed. `None`: the engine's
    /// own poll budget, for marketplaces that answer within seconds. Amazon feeds wait behind
    /// the seller's other feeds and take minutes.
    fn results_within(&self) -> Option<Duration> {
        None
    }
    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError>;
    async fn batch_result(&self, receipt: &str) -> Result<BatchStatus, ConnectorError>;
    /// Orders last modified in `[from_ms, to_ms]`, page `page` (zero-based), oldest first.
    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError>;
}
