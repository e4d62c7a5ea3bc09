//! Catalogue syncs against a real MariaDB server (Debian's `mariadb-server`, started by each
//! test on a free port with TLS required) holding OpenCart's tables, pushed through the real
//! Trendyol connector to the fake Trendyol: changed products only, then nothing, then a full
//! sync; the mapping of stock, prices and specials; refused products; and the database's own
//! failures (wrong password, missing table, unreachable, no TLS trust).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use meschain_fake_trendyol::{Config as FakeConfig, FakeTrendyol};
use meschain_marketplace::catalog::{self, Catalog, CatalogError, CatalogSettings, Mode};
use meschain_marketplace::connector::{Connector, Order};
use meschain_marketplace::engine::{Engine, Options, Outcome, Reporter, SyncEvent};
use meschain_marketplace::net_guard::{ItemsHttp, UrlPolicy};
use meschain_marketplace::progress::{BatchReport, Progress};
use meschain_marketplace::rate_limit::RateLimit;
use meschain_marketplace::request::{Operation, SyncPlan, validate};
use meschain_marketplace::run::{self, SyncRun};
use meschain_marketplace::trendyol::{Trendyol, TrendyolConfig};
use meschain_store::Store;
use meschain_store::embedded::EmbeddedStore;
use serde_json::json;
use support::mariadb::{DATABASE, MariaDb};
use time::OffsetDateTime;
use tokio::time::Instant;

#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<BatchReport>>,
}

#[async_trait]
impl Reporter for Recorder {
    async fn progress(&self, _update: &Progress) {}
    async fn batch(&self, report: &BatchReport) {
        self.batches.lock().unwrap().push(report.clone());
    }
    async fn order(&self, _marketplace: &str, _order: &Order) {}
    async fn event(&self, _event: &SyncEvent) {}
}

fn settings(db: &MariaDb, url: &str, extra: &[(&str, &str)]) -> CatalogSettings {
    let mut values: Vec<(String, String)> =
        vec![("CATALOG_MYSQL_URL".into(), url.into()), ("CATALOG_MYSQL_CA_FILE".into(), db.ca.display().to_string())];
    values.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    CatalogSettings::from_lookup(&move |k: &str| values.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .unwrap()
        .unwrap()
}

fn catalog(db: &MariaDb) -> Arc<Catalog> {
    Arc::new(Catalog::new(settings(db, &db.reader_url(), &[])).unwrap())
}

/// `n` products stamped an hour ago: EAN `868` + id, quantity id % 50, price 10 + id % 7.
fn fill(db: &MariaDb, n: u32) {
    db.sql(
        Some(DATABASE),
        &format!(
            "SET SESSION sql_mode = ''; INSERT INTO oc_product (product_id, model, sku, upc, ean, jan, isbn, mpn, location, \
             quantity, stock_status_id, manufacturer_id, price, tax_class_id, status, date_added, date_modified) \
             SELECT seq, CONCAT('M', seq), CONCAT('SKU', seq), '', CONCAT('868', LPAD(seq, 10, '0')), '', '', '', '', \
             seq % 50, 7, 0, 10 + seq % 7, 0, 1, NOW() - INTERVAL 1 HOUR, NOW() - INTERVAL 1 HOUR FROM seq_1_to_{n}"
        ),
    );
}

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), Duration::from_secs(3600)).await.unwrap();
    (dir, Arc::new(store))
}

async fn fake() -> FakeTrendyol {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_trendyol::start(FakeConfig::default(), listener).await.unwrap()
}

fn connector(fake: &FakeTrendyol) -> Arc<dyn Connector> {
    let c = fake.config();
    Arc::new(Trendyol::new(
        TrendyolConfig {
            base_url: url::Url::parse(&fake.base_url()).unwrap(),
            seller_id: c.seller_id.clone(),
            api_key: c.api_key.clone(),
            api_secret: c.api_secret.clone(),
            integrator: "MesChain".into(),
            rate_limit: RateLimit::TRENDYOL,
            concurrency: 4,
        },
        reqwest::Client::new(),
    ))
}

fn plan(operation: &str, mode: Option<&str>, sync_id: &str) -> SyncPlan {
    let mut body = json!({ "marketplace": "trendyol", "operation": operation, "syncId": sync_id });
    if let Some(m) = mode {
        body["mode"] = json!(m);
    }
    validate(&body, None, OffsetDateTime::now_utc()).unwrap()
}

async fn sync(
    store: &Arc<dyn Store>,
    fake: &FakeTrendyol,
    catalog: &Arc<Catalog>,
    plan: &SyncPlan,
) -> (Outcome, Vec<BatchReport>) {
    let rec = Arc::new(Recorder::default());
    let engine = Engine {
        store: store.clone(),
        connector: connector(fake),
        reporter: rec.clone(),
        http: ItemsHttp::new(UrlPolicy::default()),
        catalog: Some(catalog.clone()),
        options: Options {
            first_poll: Duration::from_millis(10),
            max_poll_interval: Duration::from_millis(100),
            ..Options::new("owner", Instant::now() + Duration::from_secs(60))
        },
        clock: Arc::new(meschain_model::clock::SystemClock),
    };
    let outcome = engine.run(plan).await.unwrap();
    let batches = rec.batches.lock().unwrap().clone();
    (outcome, batches)
}

async fn stored_run(store: &Arc<dyn Store>, id: &str) -> SyncRun {
    serde_json::from_value(store.get_doc(run::COLLECTION, id).await.unwrap().unwrap().value).unwrap()
}

#[tokio::test]
async fn test_changed_products_only_then_nothing_then_full() {
    let db = MariaDb::start();
    fill(&db, 2500);
    // Refused before pushing: no barcode, a negative stock.
    db.sql(Some(DATABASE), "UPDATE oc_product SET ean = '' WHERE product_id = 7; UPDATE oc_product SET quantity = -2 WHERE product_id = 11; UPDATE oc_product SET ean = 'FAIL-13' WHERE product_id = 13;");
    let fake = fake().await;
    let (_dir, store) = store().await;
    let catalog = catalog(&db);

    // The first sync of a marketplace has no mark: every product.
    let (outcome, batches) = sync(&store, &fake, &catalog, &plan("inventory", None, "inv-1")).await;
    let Outcome::Completed(s) = outcome else { panic!("{outcome:?}") };
    assert_eq!((s.total, s.processed), (Some(2500), 2500));
    assert_eq!(fake.stats().items_pushed, 2498, "all but the two refused products");
    assert_eq!(fake.stats().barcodes_pushed_more_than_once, 0);
    assert!(fake.stats().largest_batch <= 1000);
    // Refused products are reported with their id and reason (in the run, for the operator),
    // the marketplace's refusal too (also to watchers).
    let failures = stored_run(&store, "inv-1").await.failures;
    assert!(batches.iter().flat_map(|b| &b.failures).any(|f| f.barcode == "FAIL-13"));
    assert!(
        failures.iter().any(|f| f.barcode == "product 7" && f.reasons == ["product 7: no barcode"]),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.barcode == "8680000000011" && f.reasons == ["product 11: quantity -2 is negative"]),
        "{failures:?}"
    );
    assert!(failures.iter().any(|f| f.barcode == "FAIL-13"), "{failures:?}");
    assert_eq!(s.failed_items, 3);
    let run1 = stored_run(&store, "inv-1").await;
    let snap1 = run1.catalog.clone().unwrap();
    assert_eq!(
        (snap1.mode, snap1.since.as_deref(), snap1.total, snap1.boundaries.len()),
        (Mode::Changed, None, 2500, 3)
    );
    let mark = catalog::mark::read(&*store, "trendyol", "inventory").await.unwrap().unwrap();
    assert_eq!((mark.until.as_str(), mark.sync_id.as_str()), (snap1.until.as_str(), "inv-1"));
    // Prices have their own mark.
    assert!(catalog::mark::read(&*store, "trendyol", "prices").await.unwrap().is_none());

    // Three products change; past the mark's lag, only they are pushed.
    db.sql(
        Some(DATABASE),
        "UPDATE oc_product SET quantity = 42, date_modified = NOW() WHERE product_id IN (100, 1500, 2400)",
    );
    tokio::time::sleep(catalog::MARK_LAG + Duration::from_millis(1100)).await;
    let before = fake.stats().items_pushed;
    let (outcome, batches) = sync(&store, &fake, &catalog, &plan("inventory", None, "inv-2")).await;
    let Outcome::Completed(s) = outcome else { panic!("{outcome:?}") };
    assert_eq!((s.total, s.processed, s.succeeded, s.failed_items), (Some(3), 3, 3, 0));
    assert_eq!(fake.stats().items_pushed - before, 3);
    for id in [100, 1500, 2400] {
        assert_eq!(fake.times_pushed(&format!("868{id:010}")), 2, "product {id}");
    }
    assert_eq!(fake.times_pushed("8680000000101"), 1);
    assert_eq!(batches.len(), 1);
    let snap2 = stored_run(&store, "inv-2").await.catalog.unwrap();
    assert_eq!(snap2.since.as_deref(), Some(snap1.until.as_str()));

    // Nothing changed since: a sync that pushes nothing, and completes.
    let before = fake.stats();
    let (outcome, _) = sync(&store, &fake, &catalog, &plan("inventory", None, "inv-3")).await;
    let Outcome::Completed(s) = outcome else { panic!("{outcome:?}") };
    assert_eq!((s.total, s.processed), (Some(0), 0));
    assert_eq!(fake.stats().pushes, before.pushes);
    let mark = catalog::mark::read(&*store, "trendyol", "inventory").await.unwrap().unwrap();
    let snap3 = stored_run(&store, "inv-3").await.catalog.unwrap();
    assert_eq!(snap3.since.as_deref(), Some(snap2.until.as_str()));
    assert_eq!(mark.until, snap3.until, "the mark never moves back");

    // Full: every product again, whatever the mark (prices, so not a repeat of an earlier request).
    let before = fake.stats().items_pushed;
    let (outcome, _) = sync(&store, &fake, &catalog, &plan("prices", Some("full"), "prices-full")).await;
    let Outcome::Completed(s) = outcome else { panic!("{outcome:?}") };
    assert_eq!((s.total, s.processed), (Some(2500), 2500));
    assert_eq!(fake.stats().items_pushed - before, 2499, "all but the product without a barcode");
    assert!(catalog::mark::read(&*store, "trendyol", "prices").await.unwrap().is_some());
    fake.shutdown().await;
}

#[tokio::test]
async fn test_stock_prices_and_specials_as_opencart_shows_them() {
    let db = MariaDb::start();
    fill(&db, 30);
    db.sql(
        Some(DATABASE),
        "SET SESSION sql_mode = ''; \
         UPDATE oc_product SET status = 0, quantity = 9 WHERE product_id = 3; \
         UPDATE oc_product SET price = 100 WHERE product_id IN (20, 21, 22, 23); \
         INSERT INTO oc_product_special (product_id, customer_group_id, priority, price, date_start, date_end) VALUES \
           (20, 1, 1, 80, '0000-00-00', '0000-00-00'), \
           (20, 1, 2, 70, '0000-00-00', '0000-00-00'), \
           (21, 1, 1, 60, '2000-01-01', CURDATE() - INTERVAL 1 DAY), \
           (22, 2, 1, 50, '0000-00-00', '0000-00-00'), \
           (23, 1, 1, 90, CURDATE() + INTERVAL 1 DAY, '0000-00-00'), \
           (23, 1, 1, 95, '0000-00-00', CURDATE() + INTERVAL 3 DAY);",
    );
    let catalog = catalog(&db);
    let snap = catalog.snapshot(Operation::Prices, Mode::Full, None, 1000).await.unwrap();
    assert_eq!((snap.total, snap.customer_group, snap.boundaries.clone()), (30, 1, vec![30]));
    let (items, invalid) = catalog.batch(&snap, 0, Operation::Prices).await.unwrap();
    assert!(invalid.is_empty(), "{invalid:?}");
    let price = |id: u32| {
        let i = items.iter().find(|i| i.barcode == format!("868{id:010}")).unwrap();
        let f = |m: meschain_model::money::Money| m.to_string().parse::<f64>().unwrap();
        (f(i.list_price.unwrap()), f(i.sale_price.unwrap()), i.quantity)
    };
    assert_eq!(price(20), (100.0, 80.0, None), "priority first, as OpenCart");
    assert_eq!(price(21), (100.0, 100.0, None), "an ended special no longer applies");
    assert_eq!(price(22), (100.0, 100.0, None), "another customer group's special does not");
    assert_eq!(price(23), (100.0, 95.0, None), "the special in force today");
    assert_eq!(price(5), (15.0, 15.0, None));

    let snap = catalog.snapshot(Operation::Inventory, Mode::Full, None, 7).await.unwrap();
    assert_eq!(snap.boundaries, vec![7, 14, 21, 28, 30]);
    let (items, _) = catalog.batch(&snap, 0, Operation::Inventory).await.unwrap();
    let stock = |id: u32| items.iter().find(|i| i.barcode == format!("868{id:010}")).unwrap().quantity;
    assert_eq!(stock(3), Some(0), "a disabled product is not for sale");
    assert_eq!(stock(4), Some(4));
    assert!(items.iter().all(|i| i.sale_price.is_none() && i.list_price.is_none()));
    let (items, _) = catalog.batch(&snap, 4, Operation::Inventory).await.unwrap();
    assert_eq!(items.len(), 2);

    // The barcode column is a setting; the customer group too.
    let by_sku = Catalog::new(settings(
        &db,
        &db.reader_url(),
        &[("CATALOG_BARCODE_COLUMN", "sku"), ("CATALOG_CUSTOMER_GROUP_ID", "2")],
    ))
    .unwrap();
    let snap = by_sku.snapshot(Operation::Prices, Mode::Full, None, 1000).await.unwrap();
    let (items, _) = by_sku.batch(&snap, 0, Operation::Prices).await.unwrap();
    let p22 = items.iter().find(|i| i.barcode == "SKU22").unwrap();
    assert_eq!(p22.sale_price, Some(meschain_model::money::Money::from(50)));

    // A special that starts by date, without the product being edited, changes today's price:
    // a changed-items prices sync whose window covers that midnight picks the product up.
    db.sql(
        Some(DATABASE),
        "UPDATE oc_product SET date_modified = NOW() - INTERVAL 2 DAY; \
         INSERT INTO oc_product_special (product_id, customer_group_id, priority, price, date_start) VALUES (5, 1, 1, 12, CURDATE())",
    );
    let yesterday = db.sql(None, "SELECT DATE_FORMAT(NOW() - INTERVAL 1 DAY, '%Y-%m-%d %H:%i:%s')").trim().to_string();
    let snap = catalog.snapshot(Operation::Prices, Mode::Changed, Some(yesterday), 1000).await.unwrap();
    assert_eq!(snap.total, 1, "{snap:?}");
    let (items, _) = catalog.batch(&snap, 0, Operation::Prices).await.unwrap();
    assert_eq!(items[0].barcode, "8680000000005");
}

#[tokio::test]
async fn test_database_failures_say_why_and_never_show_the_password() {
    let db = MariaDb::start();
    fill(&db, 10);
    let wrong = Catalog::new(settings(&db, &db.url("catalog_reader", "not-the-password"), &[])).unwrap();
    let err = wrong.snapshot(Operation::Inventory, Mode::Changed, None, 1000).await.unwrap_err();
    assert!(matches!(&err, CatalogError::Broken(m) if m.contains("refused the user or password")), "{err}");
    assert!(!err.to_string().contains("not-the-password"));

    let prefix = Catalog::new(settings(&db, &db.reader_url(), &[("CATALOG_TABLE_PREFIX", "shop_")])).unwrap();
    let err = prefix.snapshot(Operation::Prices, Mode::Changed, None, 1000).await.unwrap_err().to_string();
    assert!(err.contains("table shop_product") && err.contains("table shop_product_special"), "{err}");

    db.sql(Some(DATABASE), "ALTER TABLE oc_product DROP COLUMN upc");
    let upc = Catalog::new(settings(&db, &db.reader_url(), &[("CATALOG_BARCODE_COLUMN", "upc")])).unwrap();
    let err = upc.snapshot(Operation::Inventory, Mode::Changed, None, 1000).await.unwrap_err().to_string();
    assert!(err.contains("column oc_product.upc"), "{err}");

    // Without the test CA the server's certificate is not trusted: TLS is never skipped.
    let url = db.reader_url();
    let untrusted =
        CatalogSettings::from_lookup(&move |k: &str| (k == "CATALOG_MYSQL_URL").then(|| url.clone())).unwrap().unwrap();
    let err =
        Catalog::new(untrusted).unwrap().snapshot(Operation::Inventory, Mode::Full, None, 1000).await.unwrap_err();
    assert!(!err.to_string().contains(support::mariadb::READER_PASSWORD), "{err}");

    // Unreachable: worth retrying, so the engine keeps the run and retries until its deadline.
    // Bound and never listening, so it refuses for as long as it lives (a released port could
    // be handed to a server of a test running in parallel).
    let refused = tokio::net::TcpSocket::new_v4().unwrap();
    refused.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let port = refused.local_addr().unwrap().port();
    let gone = Catalog::new(settings(&db, &format!("mysql://u:p@127.0.0.1:{port}/opencart"), &[])).unwrap();
    let err = gone.snapshot(Operation::Inventory, Mode::Full, None, 1000).await.unwrap_err();
    assert!(matches!(&err, CatalogError::Unavailable(m) if m.contains("unreachable")), "{err}");

    // Through the engine: a broken catalogue fails the sync with the reason, and the mark stays.
    let fake = fake().await;
    let (_dir, store) = store().await;
    let (outcome, _) = sync(&store, &fake, &Arc::new(prefix), &plan("prices", None, "bad-prefix")).await;
    let Outcome::Failed(s) = outcome else { panic!("{outcome:?}") };
    assert!(s.last_error.as_deref().unwrap().contains("shop_product"), "{s:?}");
    assert!(catalog::mark::read(&*store, "trendyol", "prices").await.unwrap().is_none());
    assert_eq!(fake.stats().pushes, 0);
    fake.shutdown().await;
}
