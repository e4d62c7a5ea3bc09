//! A simulated marketplace, for local runs of marketplaces we have no credentials for.
//!
//! It behaves like a real one so the local dashboard shows what production will: each call
//! takes some latency, about one push in 25 is answered with 429 and a `Retry-After`, results
//! are ready one poll later, and about one item in 200 is rejected with a reason. Which item
//! fails is a hash of its barcode, so runs are repeatable. It is only ever used when listed in
//! `MARKETPLACE_SANDBOX` (see [`crate::selection::from_settings`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use meschain_model::money::Money;

use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, OrderLine, OrdersPage, PushOutcome};
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::request::Item;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub latency: Duration,
    /// Every n-th push is throttled (0: never).
    pub throttle_every: u64,
    pub retry_after: Duration,
    /// About one item in n is rejected (0: none).
    pub reject_one_in: u64,
    pub rate_limit: RateLimit,
    /// Orders per hour of the requested window, capped at 500.
    pub orders_per_hour: u32,
    /// A scripted world instead of the simulation's dice (see [`Script`]); `None` in local runs.
    pub script: Option<Arc<Script>>,
}

/// A scripted sandbox: faults on demand, refused items, explicit orders, and a record of what
/// was applied. It makes the sandbox a marketplace the connector contract suite can drive like
/// any fake, so "the sandbox behaves like a marketplace" is checked by the same cases.
#[derive(Debug, Default)]
pub struct Script {
    state: Mutex<ScriptState>,
}

#[derive(Debug, Default)]
struct ScriptState {
    throttle_next: u32,
    throttle_secs: u32,
    fail_next: u32,
    refused: std::collections::HashSet<String>,
    applied: HashMap<String, (u32, Option<u32>)>,
    orders: Vec<i64>,
}

impl Script {
    pub fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        let mut s = self.state.lock().unwrap();
        (s.throttle_next, s.throttle_secs) = (n, retry_after_secs);
    }
    pub fn fail_pushes(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }
    pub fn refuse_item(&self, barcode: &str) {
        self.state.lock().unwrap().refused.insert(barcode.to_string());
    }
    pub fn times_applied(&self, barcode: &str) -> u32 {
        self.state.lock().unwrap().applied.get(barcode).map_or(0, |a| a.0)
    }
    pub fn stock(&self, barcode: &str) -> Option<u64> {
        self.state.lock().unwrap().applied.get(barcode).and_then(|a| a.1).map(u64::from)
    }
    /// Orders last modified evenly across `[from_ms, to_ms]`.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        let step = if n > 1 { (to_ms - from_ms) / i64::from(n - 1) } else { 0 };
        let mut s = self.state.lock().unwrap();
        s.orders.extend((0..n).map(|i| from_ms + step * i64::from(i)));
        s.orders.sort_unstable();
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            latency: Duration::from_millis(40),
            throttle_every: 25,
            retry_after: Duration::from_secs(1),
            reject_one_in: 200,
            rate_limit: RateLimit::TRENDYOL,
            orders_per_hour: 2,
            script: None,
        }
    }
}

pub struct Sandbox {
    marketplace: String,
    config: SandboxConfig,
    pushes: AtomicU64,
    limiter: RateLimiter,
    batches: Mutex<HashMap<String, (u32, Vec<ItemResult>)>>,
}

/// FNV-1a: a stable, dependency-free hash so the same barcode always gets the same fate.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl Sandbox {
    pub fn new(marketplace: &str, config: SandboxConfig) -> Self {
        Sandbox {
            marketplace: marketplace.to_string(),
            limiter: RateLimiter::new(config.rate_limit),
            config,
            pushes: AtomicU64::new(0),
            batches: Mutex::new(HashMap::new()),
        }
    }

    fn result(&self, item: &Item) -> ItemResult {
        let scripted =
            self.config.script.as_ref().is_some_and(|s| s.state.lock().unwrap().refused.contains(&item.barcode));
        let rejected =
            scripted || (self.config.reject_one_in > 0 && fnv(&item.barcode).is_multiple_of(self.config.reject_one_in));
        ItemResult {
            barcode: item.barcode.clone(),
            ok: !rejected,
            reasons: if rejected {
                vec![format!("{}: product not approved (sandbox)", self.marketplace)]
            } else {
                vec![]
            },
        }
    }
}

#[async_trait]
impl Connector for Sandbox {
    fn max_batch(&self) -> usize {
        1000
    }

    fn concurrency(&self) -> usize {
        4
    }

    fn is_sandbox(&self) -> bool {
        true
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        self.limiter.acquire().await;
        tokio::time::sleep(self.config.latency).await;
        let n = self.pushes.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(script) = &self.config.script {
            let mut s = script.state.lock().unwrap();
            if s.throttle_next > 0 {
                s.throttle_next -= 1;
                let wait = Duration::from_secs(u64::from(s.throttle_secs));
                return Err(ConnectorError::Transient {
                    reason: format!("{} sandbox: 429 too many requests", self.marketplace),
                    retry_after: Some(wait),
                });
            }
            if s.fail_next > 0 {
                s.fail_next -= 1;
                return Err(ConnectorError::transient(format!(
                    "{} sandbox: 503 service unavailable",
                    self.marketplace
                )));
            }
        }
        if self.config.throttle_every > 0 && n.is_multiple_of(self.config.throttle_every) {
            self.limiter.pause_for(self.config.retry_after).await;
            return Err(ConnectorError::Transient {
                reason: format!("{} sandbox: 429 too many requests", self.marketplace),
                retry_after: Some(self.config.retry_after),
            });
        }
        let receipt = uuid::Uuid::new_v4().to_string();
        let results: Vec<ItemResult> = items.iter().map(|i| self.result(i)).collect();
        if let Some(script) = &self.config.script {
            let mut s = script.state.lock().unwrap();
            for (item, result) in items.iter().zip(&results) {
                if result.ok {
                    let applied = s.applied.entry(item.barcode.clone()).or_default();
                    applied.0 += 1;
                    applied.1 = item.quantity.or(applied.1);
                }
            }
        }
        self.batches.lock().unwrap().insert(receipt.clone(), (0, results));
        Ok(PushOutcome::Accepted { receipt })
    }

    async fn batch_result(&self, receipt: &str) -> Result<BatchStatus, ConnectorError> {
        tokio::time::sleep(self.config.latency / 2).await;
        let mut batches = self.batches.lock().unwrap();
        let Some((polls, _)) = batches.get_mut(receipt) else {
            return Ok(BatchStatus::InProgress);
        };
        *polls += 1;
        if *polls == 1 {
            return Ok(BatchStatus::InProgress);
        }
        let (_, results) = batches.remove(receipt).expect("present");
        Ok(BatchStatus::Done(results))
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        self.limiter.acquire().await;
        tokio::time::sleep(self.config.latency).await;
        const PAGE: u64 = 200;
        // Order `i` of the window and when it was last modified: the script's orders, or a
        // steady stream of `orders_per_hour`.
        let times: Vec<(u64, i64)> = match &self.config.script {
            Some(script) => (0u64..)
                .zip(script.state.lock().unwrap().orders.iter().copied())
                .filter(|(_, at)| (from_ms..=to_ms).contains(at))
                .collect(),
            None => {
                let hours = ((to_ms - from_ms).max(0) / 3_600_000) as u64;
                let total = (hours * u64::from(self.config.orders_per_hour)).min(500);
                let step = if total == 0 { 0 } else { (to_ms - from_ms) / total as i64 };
                (0..total).map(|i| (i, from_ms + step * i as i64)).collect()
            }
        };
        let total = times.len() as u64;
        let orders = times
            .iter()
            .skip((u64::from(page) * PAGE) as usize)
            .take(PAGE as usize)
            .map(|&(i, last_modified)| {
                let quantity = 1 + (i % 3) as u32;
                // Whole liras plus 99 kuruş, as shops price.
                let unit_price = Money::new(5_099 + 100 * (fnv(&i.to_string()) % 200) as i64, 2);
                Order {
                    package_id: format!("SB-{}-{i}", self.marketplace),
                    order_number: format!("SB{}", 1_000_000 + i),
                    status: "Created".into(),
                    total: unit_price * Money::from(quantity),
                    currency: "TRY".into(),
                    last_modified,
                    lines: vec![OrderLine { barcode: format!("SB-SKU-{}", i % 50), quantity, unit_price }],
                }
            })
            .collect();
        Ok(OrdersPage { orders, total_pages: total.div_ceil(PAGE) as u32, total_orders: total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> SandboxConfig {
        SandboxConfig { latency: Duration::ZERO, throttle_every: 3, reject_one_in: 10, ..SandboxConfig::default() }
    }

    #[tokio::test]
    async fn test_behaves_like_a_marketplace() {
        let s = Sandbox::new("n11", fast());
        let items: Vec<Item> = (0..100)
            .map(|i| Item { barcode: format!("B{i}"), quantity: Some(1), sale_price: None, list_price: None })
            .collect();
        let PushOutcome::Accepted { receipt } = s.push(&items).await.unwrap() else { panic!() };
        assert_eq!(s.batch_result(&receipt).await.unwrap(), BatchStatus::InProgress);
        let BatchStatus::Done(results) = s.batch_result(&receipt).await.unwrap() else { panic!() };
        let rejected = results.iter().filter(|r| !r.ok).count();
        assert!((1..40).contains(&rejected), "{rejected}");
        s.push(&items).await.unwrap();
        let throttled = s.push(&items).await.unwrap_err();
        assert!(matches!(throttled, ConnectorError::Transient { retry_after: Some(_), .. }));
    }

    #[tokio::test]
    async fn test_orders_are_paged_inside_the_window() {
        let s = Sandbox::new("ozon", SandboxConfig { orders_per_hour: 10, ..fast() });
        let page = s.orders(0, 48 * 3_600_000, 1).await.unwrap();
        assert_eq!(page.total_orders, 480);
        assert_eq!(page.total_pages, 3);
        assert_eq!(page.orders.len(), 200);
        assert!(page.orders.iter().all(|o| o.last_modified >= 0 && o.last_modified <= 48 * 3_600_000));
    }
}
