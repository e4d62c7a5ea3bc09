//! The sync engine against the fake Trendyol server (on 127.0.0.1:0), through the real Trendyol
//! connector: every item pushed once in batches of at most 1,000, progress in order, results
//! reported, redeliveries and concurrent deliveries, a killed delivery resumed, 429/5xx
//! honoured, continuation at the deadline, bad credentials, orders, `itemsUrl`. State is kept
//! in the embedded store (SQLite) in a temporary folder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use meschain_fake_trendyol::{Config as FakeConfig, FakeTrendyol, Faults};
use meschain_marketplace::connector::{Connector, Order};
use meschain_marketplace::engine::{Engine, EngineError, EventKind, Options, Outcome, Reporter, SyncEvent};
use meschain_marketplace::progress::{BatchReport, Progress, SyncStatus};
use meschain_marketplace::rate_limit::RateLimit;
use meschain_marketplace::request::{SyncPlan, validate};
use meschain_marketplace::run::{self, SyncRun};
use meschain_marketplace::trendyol::{Trendyol, TrendyolConfig};
use meschain_store::Store;
use meschain_store::embedded::EmbeddedStore;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

#[derive(Default)]
struct Recorder {
    progress: Mutex<Vec<Progress>>,
    batches: Mutex<Vec<BatchReport>>,
    orders: Mutex<Vec<Order>>,
    events: Mutex<Vec<SyncEvent>>,
    /// Blocks the delivery forever at this batch report (a process that hangs, then is killed).
    hang_at_batch: Option<usize>,
    hung: tokio::sync::Notify,
}

#[async_trait]
impl Reporter for Recorder {
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
    async fn event(&self, event: &SyncEvent) {
        self.events.lock().unwrap().push(event.clone());
    }
}

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), Duration::from_secs(3600)).await.unwrap();
    (dir, Arc::new(store))
}

async fn fake(config: FakeConfig) -> FakeTrendyol {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_trendyol::start(config, listener).await.unwrap()
}

fn connector(fake: &FakeTrendyol, rate_limit: RateLimit, concurrency: usize) -> Arc<dyn Connector> {
    let c = fake.config();
    let config = TrendyolConfig {
        base_url: url::Url::parse(&fake.base_url()).unwrap(),
        seller_id: c.seller_id.clone(),
        api_key: c.api_key.clone(),
        api_secret: c.api_secret.clone(),
        integrator: "MesChain".into(),
        rate_limit,
        concurrency,
    };
    Arc::new(Trendyol::new(config, reqwest::Client::new()))
}

fn options(owner: &str, budget: Duration) -> Options {
    Options {
        lease_ttl: Duration::from_secs(2),
        first_poll: Duration::from_millis(10),
        max_poll_interval: Duration::from_millis(100),
        wait_poll: Duration::from_millis(50),
        ..Options::new(owner, Instant::now() + budget)
    }
}

fn engine(
    store: &Arc<dyn Store>,
    connector: &Arc<dyn Connector>,
    reporter: &Arc<Recorder>,
    o: Options,
) -> Engine<'static> {
    Engine {
        store: store.clone(),
        connector: connector.clone(),
        reporter: reporter.clone(),
        http: meschain_marketplace::net_guard::ItemsHttp::new(
            meschain_marketplace::net_guard::UrlPolicy::loopback_only(),
        ),
        catalog: None,
        options: o,
        clock: Arc::new(meschain_model::clock::SystemClock),
    }
}

fn inventory(n: usize, sync_id: &str) -> (Value, SyncPlan) {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let barcode = if i % 997 == 5 { format!("FAIL-{i:06}") } else { format!("BC-{i:06}") };
            json!({ "barcode": barcode, "quantity": i % 100, "salePrice": 10.0 + (i % 7) as f64, "listPrice": 20.0 })
        })
        .collect();
    let body = json!({ "marketplace": "trendyol", "operation": "inventory", "items": items, "syncId": sync_id, "requestedBy": "ops" });
    let plan = validate(&body, None, OffsetDateTime::now_utc()).unwrap();
    (body, plan)
}

async fn stored_run(store: &Arc<dyn Store>, id: &str) -> SyncRun {
    serde_json::from_value(store.get_doc(run::COLLECTION, id).await.unwrap().unwrap().value).unwrap()
}

#[tokio::test]
async fn test_5000_items_pushed_once_in_batches_with_ordered_progress() {
    let fake = fake(FakeConfig::default()).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit::TRENDYOL, 4);
    let rec = Arc::new(Recorder::default());
    let (_, plan) = inventory(5000, "sync-5000");

    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(60))).run(&plan).await.unwrap();
    let Outcome::Completed(summary) = outcome else { panic!("{outcome:?}") };
    let stats = fake.stats();
    assert_eq!(stats.items_pushed, 5000);
    assert_eq!(stats.distinct_barcodes, 5000);
    assert_eq!(stats.barcodes_pushed_more_than_once, 0);
    assert!(stats.largest_batch <= 1000 && stats.pushes == 5, "{stats:?}");
    assert_eq!(stats.rejected_duplicate + stats.rejected_auth + stats.rejected_user_agent + stats.rate_limited, 0);

    // Items whose barcode the fake refuses are reported failed with the reason, not retried.
    let failed = (0..5000).filter(|i| i % 997 == 5).count() as u64;
    assert_eq!((summary.processed, summary.failed_items, summary.succeeded), (5000, failed, 5000 - failed));
    let batches = rec.batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 5);
    assert_eq!(batches.iter().map(|b| b.failed).sum::<u64>(), failed);
    assert!(batches.iter().flat_map(|b| &b.failures).all(|f| f.barcode.starts_with("FAIL-") && !f.reasons.is_empty()));

    let progress = rec.progress.lock().unwrap().clone();
    let first = progress.first().unwrap();
    let last = progress.last().unwrap();
    assert_eq!((first.status, first.progress), (SyncStatus::Running, 0));
    assert_eq!((last.status, last.progress, last.processed), (SyncStatus::Completed, 100, 5000));
    assert!(last.finished_at.is_some() && last.requested_by.as_deref() == Some("ops"));
    assert!(progress.windows(2).all(|w| w[0].processed <= w[1].processed), "in order");

    let kinds: Vec<EventKind> = rec.events.lock().unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::Started));
    assert_eq!(kinds.last(), Some(&EventKind::Completed));
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Batch).count(), 5);

    let status = store.get_doc("marketplace-status", "trendyol").await.unwrap().unwrap().value;
    assert_eq!(status["status"], "idle");
    assert_eq!(status["itemsPushedToday"], 5000 - failed);
    assert!(status["lastSuccessAt"].is_string() && status["lastError"].is_null());
    fake.shutdown().await;
}

#[tokio::test]
async fn test_redelivered_and_concurrent_deliveries_push_once() {
    let fake = fake(FakeConfig { latency: Duration::from_millis(20), ..FakeConfig::default() }).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit::TRENDYOL, 2);
    let (_, plan) = inventory(6000, "sync-dup");
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let ea = engine(&store, &conn, &a, options("a", Duration::from_secs(60)));
    let eb = engine(&store, &conn, &b, options("b", Duration::from_secs(60)));
    let (ra, rb) = tokio::join!(ea.run(&plan), eb.run(&plan));
    let outcomes = [ra.unwrap(), rb.unwrap()];
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::Completed(_))).count(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::RunningElsewhere | Outcome::AlreadyFinished(_))),
        "{outcomes:?}"
    );
    assert_eq!(fake.stats().items_pushed, 6000);
    assert_eq!(fake.stats().barcodes_pushed_more_than_once, 0);

    // A redelivery of the finished sync does nothing and succeeds.
    let c = Arc::new(Recorder::default());
    let outcome = engine(&store, &conn, &c, options("c", Duration::from_secs(60))).run(&plan).await.unwrap();
    assert!(matches!(outcome, Outcome::AlreadyFinished(ref s) if s.processed == 6000), "{outcome:?}");
    assert_eq!(fake.stats().pushes, 6);
    assert!(c.progress.lock().unwrap().is_empty());

    // The same syncId with other items is refused, not merged.
    let (_, other) = inventory(10, "sync-dup");
    let err = engine(&store, &conn, &c, options("d", Duration::from_secs(60))).run(&other).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflicting(ref m) if m.contains("already used")), "{err}");
    fake.shutdown().await;
}

#[tokio::test]
async fn test_killed_delivery_is_resumed_without_repushing_finished_batches() {
    let fake = fake(FakeConfig { latency: Duration::from_millis(30), ..FakeConfig::default() }).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit::TRENDYOL, 2);
    let (_, plan) = inventory(10_000, "sync-kill");
    let doomed = Arc::new(Recorder { hang_at_batch: Some(3), ..Recorder::default() });
    let first = engine(&store, &conn, &doomed, options("doomed", Duration::from_secs(60)));
    let task = tokio::spawn(async move { first.run(&plan).await });
    doomed.hung.notified().await;
    task.abort();
    let _ = task.await;
    let before = stored_run(&store, "sync-kill").await;
    assert!(before.lease.is_some() && before.status == run::RunStatus::Running);

    // The redelivery waits out the dead owner's lease, then resumes.
    let (_, plan) = inventory(10_000, "sync-kill");
    let rec = Arc::new(Recorder::default());
    let started = Instant::now();
    let outcome = engine(&store, &conn, &rec, options("redelivery", Duration::from_secs(60))).run(&plan).await.unwrap();
    let Outcome::Completed(summary) = outcome else { panic!("{outcome:?}") };
    assert!(started.elapsed() >= Duration::from_millis(500), "waited for the lease");
    assert_eq!(summary.processed, 10_000);
    let stats = fake.stats();
    assert_eq!(stats.distinct_barcodes, 10_000);
    // Only the window in flight at the kill (at most `concurrency` batches) may repeat, and the
    // repeat is counted.
    assert!(stats.barcodes_pushed_more_than_once <= 2 * 1000, "{stats:?}");
    assert_eq!(summary.repeated_batches, before.in_flight.len() as u64);
    let run = stored_run(&store, "sync-kill").await;
    assert_eq!(run.deliveries, 2);
    assert!(rec.events.lock().unwrap().first().is_some_and(|e| e.kind == EventKind::Resumed));
    fake.shutdown().await;
}

#[tokio::test]
async fn test_429_and_5xx_are_retried_honouring_retry_after() {
    let fake = fake(FakeConfig::default()).await;
    fake.inject(Faults { push: vec![429, 500, 503], retry_after_seconds: Some(1), ..Faults::default() });
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit::TRENDYOL, 1);
    let rec = Arc::new(Recorder::default());
    let (_, plan) = inventory(2000, "sync-429");
    let started = Instant::now();
    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(60))).run(&plan).await.unwrap();
    let Outcome::Completed(summary) = outcome else { panic!("{outcome:?}") };
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    assert_eq!(summary.retries, 3);
    assert_eq!(fake.stats().items_pushed, 2000);
    assert_eq!(fake.stats().injected_faults, 3);
    fake.shutdown().await;
}

#[tokio::test]
async fn test_client_keeps_to_the_marketplace_rate_limit() {
    let limit = RateLimit { requests: 4, per: Duration::from_secs(1) };
    let fake = fake(FakeConfig { rate_limit: Some((limit.requests, limit.per)), ..FakeConfig::default() }).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, limit, 4);
    let rec = Arc::new(Recorder::default());
    let (_, plan) = inventory(10_000, "sync-rate");
    let started = Instant::now();
    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(60))).run(&plan).await.unwrap();
    assert!(matches!(outcome, Outcome::Completed(_)), "{outcome:?}");
    assert_eq!(fake.stats().rate_limited, 0, "never over the limit");
    assert!(started.elapsed() >= Duration::from_secs(2), "10 pushes at 4/s take over 2 s");
    fake.shutdown().await;
}

#[tokio::test]
async fn test_deadline_checkpoints_and_the_continuation_finishes() {
    // 5 batches at 300 ms each cannot fit a 1 s budget: the first delivery must continue.
    let fake = fake(FakeConfig { latency: Duration::from_millis(300), ..FakeConfig::default() }).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit::TRENDYOL, 1);
    let (_, plan) = inventory(5000, "sync-cont");
    let rec = Arc::new(Recorder::default());
    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(1))).run(&plan).await.unwrap();
    assert_eq!(outcome, Outcome::Continue);
    let paused = stored_run(&store, "sync-cont").await;
    assert!(paused.lease.is_none(), "released for the continuation");
    assert!(paused.next_batch < 5 && paused.in_flight.is_empty(), "{paused:?}");
    assert!(rec.events.lock().unwrap().iter().any(|e| e.kind == EventKind::Continued));

    let mut deliveries = 1;
    let summary = loop {
        deliveries += 1;
        let owner = format!("d{deliveries}");
        match engine(&store, &conn, &rec, options(&owner, Duration::from_secs(1))).run(&plan).await.unwrap() {
            Outcome::Continue => assert!(deliveries < 10, "no end"),
            Outcome::Completed(s) => break s,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((summary.processed, summary.repeated_batches), (5000, 0));
    assert_eq!(fake.stats().barcodes_pushed_more_than_once, 0);
    assert_eq!(fake.stats().items_pushed, 5000);
    assert_eq!(stored_run(&store, "sync-cont").await.deliveries, deliveries);
    fake.shutdown().await;
}

#[tokio::test]
async fn test_bad_credentials_fail_the_sync_once() {
    let fake = fake(FakeConfig::default()).await;
    let (_dir, store) = store().await;
    let c = fake.config();
    let config = TrendyolConfig {
        base_url: url::Url::parse(&fake.base_url()).unwrap(),
        seller_id: c.seller_id.clone(),
        api_key: c.api_key.clone(),
        api_secret: "wrong".into(),
        integrator: "MesChain".into(),
        rate_limit: RateLimit::TRENDYOL,
        concurrency: 2,
    };
    let conn: Arc<dyn Connector> = Arc::new(Trendyol::new(config, reqwest::Client::new()));
    let rec = Arc::new(Recorder::default());
    let (_, plan) = inventory(3000, "sync-401");
    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(60))).run(&plan).await.unwrap();
    let Outcome::Failed(summary) = outcome else { panic!("{outcome:?}") };
    let error = summary.last_error.unwrap();
    assert!(error.contains("401") && error.contains("TRENDYOL_API_KEY") && !error.contains("wrong"), "{error}");
    assert_eq!(fake.stats().rejected_auth, 2, "one window, not retried");
    let last = rec.progress.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.status, SyncStatus::Failed);
    let status = store.get_doc("marketplace-status", "trendyol").await.unwrap().unwrap().value;
    assert_eq!(status["status"], "failed");
    assert!(status["lastError"].as_str().unwrap().contains("401"));
    fake.shutdown().await;
}

#[tokio::test]
async fn test_orders_are_imported_page_by_page() {
    let fake = fake(FakeConfig { orders: 450, ..FakeConfig::default() }).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit::TRENDYOL, 2);
    let rec = Arc::new(Recorder::default());
    let since = OffsetDateTime::now_utc() - time::Duration::days(1);
    let since = since.format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = json!({ "marketplace": "trendyol", "operation": "orders", "since": since, "syncId": "orders-1" });
    let plan = validate(&body, None, OffsetDateTime::now_utc()).unwrap();
    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(60))).run(&plan).await.unwrap();
    let Outcome::Completed(summary) = outcome else { panic!("{outcome:?}") };
    let orders = rec.orders.lock().unwrap().clone();
    assert_eq!((orders.len(), summary.orders_imported), (450, 450));
    let mut numbers: Vec<&str> = orders.iter().map(|o| o.order_number.as_str()).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 450, "each order once");
    let revenue: meschain_model::money::Money = orders.iter().map(|o| o.total).sum();
    assert!(summary.revenue == revenue && revenue > meschain_model::money::Money::ZERO);
    assert_eq!(fake.stats().order_pages, 3);
    fake.shutdown().await;
}

#[tokio::test]
async fn test_items_url_source_is_read_window_by_window() {
    let fake = fake(FakeConfig { rate_limit: None, ..FakeConfig::default() }).await;
    let (_dir, store) = store().await;
    let conn = connector(&fake, RateLimit { requests: 1000, per: Duration::from_secs(1) }, 4);
    let rec = Arc::new(Recorder::default());
    let body = json!({ "marketplace": "trendyol", "operation": "inventory", "itemsUrl": fake.items_url(20_500), "syncId": "url-1" });
    let plan = validate(&body, None, OffsetDateTime::now_utc()).unwrap();
    let outcome = engine(&store, &conn, &rec, options("a", Duration::from_secs(60))).run(&plan).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Completed(ref s) if s.processed == 20_500 && s.failed_items == 0),
        "{outcome:?}"
    );
    let stats = fake.stats();
    assert_eq!((stats.items_pushed, stats.distinct_barcodes, stats.pushes), (20_500, 20_500, 21));
    // One probe for the total, then one page per batch.
    assert_eq!(stats.items_source_pages, 1 + 21);
    fake.shutdown().await;
}
