//! The connector contract: what every marketplace connector must do, whatever its
//! marketplace's API looks like. Each case is generic over a [`Fixture`] (one marketplace's
//! fake, started on a free loopback port) and drives the connector the way production does:
//! built from settings by `selection::from_settings`, run by the engine over the embedded store.
//! A new connector gets the whole suite by implementing [`Fixture`] and adding one
//! `contract_tests!` line in `tests/contract.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use meschain_marketplace::connector::{Connector, Order};
use meschain_marketplace::engine::{Engine, Options, Outcome, Reporter, SyncEvent};
use meschain_marketplace::progress::{BatchReport, Progress, SyncStatus};
use meschain_marketplace::request::{SyncPlan, validate};
use meschain_marketplace::selection;
use meschain_store::Store;
use meschain_store::embedded::EmbeddedStore;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

/// One marketplace's fake, as the suite drives it.
#[async_trait]
pub trait Fixture: Sized + Send + Sync + 'static {
    /// The marketplace's name as in `meschain_model::marketplace` ("trendyol", "ozon", ...).
    const MARKETPLACE: &'static str;
    /// Starts the fake on a free loopback port: the documented contract, no artificial latency.
    async fn start() -> Self;
    /// Settings (name, value) that make `selection::from_settings` build the live connector
    /// against this fake with valid credentials.
    fn settings(&self) -> Vec<(String, String)>;
    /// A secret setting: with a wrong value the sync fails naming it, never showing the value.
    /// `None` for a connector that has no credentials (the sandbox).
    fn credential_setting(&self) -> Option<&'static str>;
    /// The next `n` push calls get the marketplace's throttling answer, asking to wait
    /// `retry_after_secs`.
    fn throttle_pushes(&self, n: u32, retry_after_secs: u32);
    /// The next `n` push calls get a 5xx.
    fn fail_pushes(&self, n: u32);
    /// The marketplace refuses updates of this item, with a reason.
    fn refuse_item(&self, barcode: &str);
    /// Items the marketplace must know before they can be updated (eBay offers, Amazon
    /// listings, Ozon products); a no-op where the marketplace needs nothing.
    fn know_items(&self, barcodes: &[String]);
    /// How many times the fake applied an update of this item.
    fn times_applied(&self, barcode: &str) -> u32;
    /// The stock the fake holds for this item (`None` if never set).
    fn stock(&self, barcode: &str) -> Option<u64>;
    /// Creates `n` orders last modified within `[from_ms, to_ms]`.
    fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64);
    /// The connector under test. The default builds it from [`Fixture::settings`] exactly as
    /// the handler does; a fixture overrides it only where the connector is not built from
    /// settings alone.
    fn connector(&self, settings: &[(String, String)]) -> Result<Arc<dyn Connector>, String> {
        let map: HashMap<String, String> = settings.iter().cloned().collect();
        selection::from_settings(Self::MARKETPLACE, reqwest::Client::new(), &|k: &str| map.get(k).cloned())
    }
}

/// What the engine reported, for assertions.
#[derive(Default)]
pub struct Seen {
    pub progress: Mutex<Vec<Progress>>,
    pub batches: Mutex<Vec<BatchReport>>,
    pub orders: Mutex<Vec<Order>>,
    /// Hangs the delivery at this batch report (a process that stops, then is killed).
    pub hang_at_batch: Option<usize>,
    pub hung: tokio::sync::Notify,
}

#[async_trait]
impl Reporter for Seen {
    async fn progress(&self, update: &Progress) {
        self.progress.lock().unwrap().push(update.clone());
    }
    async fn batch(&self, report: &BatchReport) {
        let n = {
            let mut b = self.batches.lock().unwrap();
            b.push(report.clone());
            b.len()
        };
        if self.hang_at_batch == Some(n) {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
    }
    async fn order(&self, _marketplace: &str, order: &Order) {
        self.orders.lock().unwrap().push(order.clone());
    }
    async fn event(&self, _event: &SyncEvent) {}
}

struct Harness<F: Fixture> {
    fixture: F,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl<F: Fixture> Harness<F> {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), Duration::from_secs(3600)).await.unwrap());
        Harness { fixture: F::start().await, store, _dir: dir }
    }

    fn connector(&self) -> Arc<dyn Connector> {
        self.fixture.connector(&self.fixture.settings()).unwrap_or_else(|e| panic!("{}: {e}", F::MARKETPLACE))
    }

    fn engine(&self, connector: &Arc<dyn Connector>, seen: &Arc<Seen>, owner: &str) -> Engine<'static> {
        let options = Options {
            lease_ttl: Duration::from_secs(2),
            first_poll: Duration::from_millis(10),
            max_poll_interval: Duration::from_millis(200),
            wait_poll: Duration::from_millis(50),
            ..Options::new(owner, Instant::now() + Duration::from_secs(120))
        };
        Engine {
            store: self.store.clone(),
            connector: connector.clone(),
            reporter: seen.clone(),
            http: meschain_marketplace::net_guard::ItemsHttp::new(Default::default()),
            catalog: None,
            options,
            clock: Arc::new(meschain_model::clock::SystemClock),
        }
    }

    /// An inventory sync of `n` items (`CT-000000`, ...), each known to the marketplace.
    fn inventory(&self, n: usize, sync_id: &str) -> (Vec<String>, SyncPlan) {
        let barcodes: Vec<String> = (0..n).map(|i| format!("CT-{i:06}")).collect();
        self.fixture.know_items(&barcodes);
        let items: Vec<Value> =
            barcodes.iter().enumerate().map(|(i, b)| json!({ "barcode": b, "quantity": quantity(i) })).collect();
        let body = json!({
            "marketplace": F::MARKETPLACE, "operation": "inventory", "items": items,
            "syncId": sync_id, "requestedBy": "contract-suite",
        });
        (barcodes, validate(&body, None, OffsetDateTime::now_utc()).unwrap())
    }
}

fn quantity(i: usize) -> u64 {
    (i % 97) as u64 + 1
}

fn completed(outcome: Outcome) -> meschain_marketplace::engine::Summary {
    match outcome {
        Outcome::Completed(s) => s,
        other => panic!("expected a completed sync, got {other:?}"),
    }
}

/// Pushes two and a half batches; every item is applied once and every result is reported.
pub async fn push_and_read_results<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let connector = h.connector();
    let n = connector.max_batch() * 5 / 2;
    let (barcodes, plan) = h.inventory(n, "contract-push");
    let seen = Arc::new(Seen::default());
    let summary = completed(h.engine(&connector, &seen, "a").run(&plan).await.unwrap());
    assert_eq!((summary.processed, summary.succeeded, summary.failed_items), (n as u64, n as u64, 0), "{summary:?}");
    for (i, b) in barcodes.iter().enumerate() {
        assert_eq!(h.fixture.times_applied(b), 1, "{b} applied once");
        assert_eq!(h.fixture.stock(b), Some(quantity(i)), "{b} stock");
    }
    let batches = seen.batches.lock().unwrap();
    assert_eq!(batches.iter().map(|b| b.succeeded).sum::<u64>(), n as u64);
    assert!(batches.iter().all(|b| b.items as usize <= connector.max_batch()));
    let last = seen.progress.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.status, last.progress), (SyncStatus::Completed, 100));
}

/// Items the marketplace refuses are reported failed, each with a reason; the rest succeed.
pub async fn per_item_failures_reported<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let connector = h.connector();
    let n = connector.max_batch() + 3;
    let (barcodes, plan) = h.inventory(n, "contract-refusals");
    let refused: Vec<&String> = [1, n / 2, n - 1].iter().map(|&i| &barcodes[i]).collect();
    for b in &refused {
        h.fixture.refuse_item(b);
    }
    let seen = Arc::new(Seen::default());
    let summary = completed(h.engine(&connector, &seen, "a").run(&plan).await.unwrap());
    assert_eq!((summary.failed_items, summary.succeeded), (3, n as u64 - 3), "{summary:?}");
    let failures: Vec<_> = seen.batches.lock().unwrap().iter().flat_map(|b| b.failures.clone()).collect();
    let mut failed: Vec<&String> = failures.iter().map(|f| &f.barcode).collect();
    failed.sort();
    assert_eq!(failed, refused, "the refused items, by barcode");
    assert!(failures.iter().all(|f| !f.ok && f.reasons.iter().any(|r| !r.trim().is_empty())), "{failures:?}");
}

/// A throttling answer is waited out, not failed.
pub async fn throttling_honoured<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let connector = h.connector();
    let (barcodes, plan) = h.inventory(connector.max_batch().min(50), "contract-throttle");
    h.fixture.throttle_pushes(2, 1);
    let seen = Arc::new(Seen::default());
    let started = Instant::now();
    let summary = completed(h.engine(&connector, &seen, "a").run(&plan).await.unwrap());
    assert!(started.elapsed() >= Duration::from_secs(1), "the wait the marketplace asked for");
    assert!(summary.retries >= 2, "{summary:?}");
    assert_eq!(summary.failed_items, 0, "{summary:?}");
    assert!(barcodes.iter().all(|b| h.fixture.times_applied(b) == 1));
}

/// A 5xx is retried; the batch is applied once.
pub async fn server_errors_retried<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let connector = h.connector();
    let (barcodes, plan) = h.inventory(connector.max_batch().min(50), "contract-5xx");
    h.fixture.fail_pushes(2);
    let seen = Arc::new(Seen::default());
    let summary = completed(h.engine(&connector, &seen, "a").run(&plan).await.unwrap());
    assert!(summary.retries >= 2 && summary.failed_items == 0, "{summary:?}");
    assert!(barcodes.iter().all(|b| h.fixture.times_applied(b) == 1));
}

/// Wrong credentials fail the sync with an error that names the setting, never its value.
pub async fn wrong_credentials_named<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let Some(setting) = h.fixture.credential_setting() else {
        eprintln!("{}: no credentials to get wrong", F::MARKETPLACE);
        return;
    };
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let settings: Vec<(String, String)> =
        h.fixture.settings().into_iter().map(|(k, v)| if k == setting { (k, wrong.clone()) } else { (k, v) }).collect();
    assert!(settings.iter().any(|(k, _)| k == setting), "{setting} is one of the fixture's settings");
    let connector = h.fixture.connector(&settings).unwrap();
    let (barcodes, plan) = h.inventory(10, "contract-credentials");
    let seen = Arc::new(Seen::default());
    let outcome = h.engine(&connector, &seen, "a").run(&plan).await.unwrap();
    let Outcome::Failed(summary) = outcome else { panic!("expected a failed sync, got {outcome:?}") };
    let error = summary.last_error.unwrap_or_default();
    assert!(error.contains(setting), "names {setting}: {error}");
    assert!(!error.contains(&wrong), "never shows the value: {error}");
    assert!(barcodes.iter().all(|b| h.fixture.times_applied(b) == 0));
}

/// A delivery killed after some batches were answered and checkpointed is resumed by the next
/// delivery, which never pushes those batches again. Only the window in flight at the kill may
/// be pushed again, with the same absolute values, and is counted as repeated.
pub async fn crash_does_not_repush_answered_batches<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let connector = h.connector();
    let n = connector.max_batch() * 4;
    let (barcodes, plan) = h.inventory(n, "contract-crash");
    let doomed = Arc::new(Seen { hang_at_batch: Some(1), ..Seen::default() });
    let first = h.engine(&connector, &doomed, "doomed");
    let task = tokio::spawn({
        let plan = plan.clone();
        async move { first.run(&plan).await }
    });
    doomed.hung.notified().await;
    task.abort();
    let _ = task.await;
    let answered: Vec<String> = doomed
        .batches
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| {
            let start = b.batch as usize * connector.max_batch();
            barcodes[start..(start + b.items as usize).min(n)].to_vec()
        })
        .collect();
    assert!(!answered.is_empty());

    let seen = Arc::new(Seen::default());
    let summary = completed(h.engine(&connector, &seen, "redelivery").run(&plan).await.unwrap());
    assert_eq!(summary.processed, n as u64, "{summary:?}");
    for b in &answered {
        assert_eq!(h.fixture.times_applied(b), 1, "{b} was answered before the crash: never pushed again");
    }
    let repeated = barcodes.iter().filter(|b| h.fixture.times_applied(b) > 1).count();
    assert!(repeated <= connector.concurrency() * connector.max_batch(), "only the window in flight");
    assert!(repeated == 0 || summary.repeated_batches > 0, "a repeat is counted");
    for (i, b) in barcodes.iter().enumerate() {
        assert_eq!(h.fixture.stock(b), Some(quantity(i)), "{b}: the marketplace ends with the pushed stock");
    }
}

/// Orders spread over several pages are imported, each once.
pub async fn orders_imported_across_pages<F: Fixture>() {
    let h = Harness::<F>::new().await;
    let now = time::OffsetDateTime::now_utc();
    let to_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64 - 60_000;
    let from_ms = to_ms - 6 * 3_600_000;
    h.fixture.add_orders(450, from_ms, to_ms);
    let connector = h.connector();
    let since = (now - time::Duration::hours(12)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let body =
        json!({ "marketplace": F::MARKETPLACE, "operation": "orders", "since": since, "syncId": "contract-orders" });
    let plan = validate(&body, None, now).unwrap();
    let seen = Arc::new(Seen::default());
    let summary = completed(h.engine(&connector, &seen, "a").run(&plan).await.unwrap());
    let orders = seen.orders.lock().unwrap().clone();
    assert_eq!((orders.len(), summary.orders_imported), (450, 450), "{summary:?}");
    let mut ids: Vec<&str> = orders.iter().map(|o| o.package_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 450, "each order once");
    assert!(orders.iter().all(|o| o.last_modified >= from_ms && o.last_modified <= to_ms + 60_000));
    let revenue: meschain_model::money::Money = orders.iter().map(|o| o.total).sum();
    assert_eq!(summary.revenue, revenue, "exact revenue");
}

/// The suite's cases as `#[tokio::test]`s for one fixture: `contract_tests!(module, Fixture);`.
#[macro_export]
macro_rules! contract_tests {
    ($name:ident, $fixture:ty) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn push_and_read_results() {
                suite::push_and_read_results::<$fixture>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn per_item_failures_reported() {
                suite::per_item_failures_reported::<$fixture>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn throttling_honoured() {
                suite::throttling_honoured::<$fixture>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn server_errors_retried() {
                suite::server_errors_retried::<$fixture>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn wrong_credentials_named() {
                suite::wrong_credentials_named::<$fixture>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crash_does_not_repush_answered_batches() {
                suite::crash_does_not_repush_answered_batches::<$fixture>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn orders_imported_across_pages() {
                suite::orders_imported_across_pages::<$fixture>().await;
            }
        }
    };
}
