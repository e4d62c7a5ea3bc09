//! A simulated marketplace, for local runs of marketplaces we have no credentials for.
//!
//! It behaves like a real one so the local dashboard shows what production will: each call
//! takes some latency, about one push in 25 is answered with 429 and a `Retry-After`, results
//! are ready one poll later, and about one item in 200 is rejected with a reason. Which item
//! fails is a hash of its barcode, so runs are repeatable. It is only ever used when listed in
//! `MARKETPLACE_SANDBOX` (see [`crate::selection::from_settings`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

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
        let rejected = self.config.reject_one_in > 0 && fnv(&item.barcode).is_multiple_of(self.config.reject_one_in);
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
        if self.config.throttle_every > 0 && n.is_multiple_of(self.config.throttle_every) {
            self.limiter.pause_for(self.config.retry_after).await;
            return Err(ConnectorError::Transient {
                reason: format!("{} sandbox: 429 too many requests", self.marketplace),
                retry_after: Some(self.config.retry_after),
            });
        }
        let receipt = uuid::Uuid::new_v4().to_string();
        let results = items.iter().map(|i| self.result(i)).collect();
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
        let hours = ((to_ms - from_ms).max(0) / 3_600_000) as u64;
        let total = (hours * u64::from(self.config.orders_per_hour)).min(500);
        let step = if total == 0 { 0 } else { (to_ms - from_ms) / total as i64 };
        let orders = (u64::from(page) * PAGE..(u64::from(page) * PAGE + PAGE).min(total))
            .map(|i| {
                let quantity = 1 + (i % 3) as u32;
                let unit_price = 50.0 + (fnv(&i.to_string()) % 200) as f64;
                Order {
                    package_id: format!("SB-{}-{i}", self.marketplace),
                    order_number: format!("SB{}", 1_000_000 + i),
                    status: "Created".into(),
                    total: unit_price * f64::from(quantity),
                    currency: "TRY".into(),
                    last_modified: from_ms + step * i as i64,
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
