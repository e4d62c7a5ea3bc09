//! The Amazon connector against the fake SP-API (a real HTTP server on a loopback port), and
//! every request and answer of those exchanges validated against Amazon's own models, so
//! neither the connector nor the fake can drift from the published contract.
//!
//! The models are read from `shared/reference/openapi/amazon/` beside the repository
//! (copies of <https://github.com/amzn/selling-partner-api-models>); the validation test fails
//! if they are missing rather than passing without checking.

#[path = "support/reference.rs"]
mod reference;

use meschain_model::money::Money;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meschain_fake_amazon::{Config, Exchange, FakeAmazon, Faults};
use meschain_marketplace::amazon::{self, Amazon, AmazonConfig};
use meschain_marketplace::connector::{BatchStatus, Connector, ConnectorError, PushOutcome};
use meschain_marketplace::request::Item;
use meschain_model::clock::ManualClock;
use serde_json::{Value, json};

/// Every exchange any test saw, for the validation test.
static SEEN: Mutex<Vec<Exchange>> = Mutex::new(Vec::new());

async fn fake(config: Config) -> FakeAmazon {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_amazon::start(config, listener).await.unwrap()
}

fn settings(f: &FakeAmazon, overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let c = f.config();
    let mut s: HashMap<String, String> = [
        (amazon::BASE_URL_SETTING, f.base_url()),
        (amazon::TOKEN_URL_SETTING, f.token_url()),
        (amazon::CLIENT_ID_SETTING, c.client_id.clone()),
        (amazon::CLIENT_SECRET_SETTING, c.client_secret.clone()),
        (amazon::REFRESH_TOKEN_SETTING, c.refresh_token.clone()),
        (amazon::SELLER_ID_SETTING, c.seller_id.clone()),
        (amazon::MARKETPLACE_ID_SETTING, c.marketplace_id.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in overrides {
        s.insert(k.to_string(), v.to_string());
    }
    s
}

fn connector_with(f: &FakeAmazon, overrides: &[(&str, &str)], clock: ManualClock) -> Amazon {
    let s = settings(f, overrides);
    let config = AmazonConfig::from_settings(&|k| s.get(k).cloned()).unwrap();
    Amazon::with_clock(config, reqwest::Client::new(), Arc::new(clock))
}

fn connector(f: &FakeAmazon) -> Amazon {
    connector_with(f, &[], ManualClock::at_ms(meschain_model::clock::now_ms()))
}

fn keep(f: &FakeAmazon) {
    SEEN.lock().unwrap().extend(f.exchanges());
}

fn items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| Item {
            barcode: format!("SKU-{i:05}"),
            quantity: Some(i as u32 % 50),
            sale_price: Some(Money::from(100 + i)),
            list_price: Some(Money::from(150 + i)),
        })
        .collect()
}

async fn result_of(c: &Amazon, receipt: &str) -> Vec<meschain_marketplace::connector::ItemResult> {
    for _ in 0..10 {
        match c.batch_result(receipt).await.unwrap() {
            BatchStatus::Done(r) => return r,
            BatchStatus::InProgress => {}
        }
    }
    panic!("feed {receipt} never finished");
}

#[tokio::test]
async fn test_push_feeds_and_read_every_item_with_failures() {
    let f = fake(Config { require_listings: true, ..Config::default() }).await;
    let c = connector_with(
        &f,
        &[(amazon::FEED_MESSAGES_SETTING, "10")],
        ManualClock::at_ms(meschain_model::clock::now_ms()),
    );
    assert_eq!(c.max_batch(), 10);
    let mut all = items(25);
    all[3].barcode = "FAIL-3".into();
    let skus: Vec<String> = all.iter().map(|i| i.barcode.clone()).filter(|b| b != "SKU-00007").collect();
    f.know_listings(&skus);
    f.refuse("SKU-00012", "The listing is suppressed for a policy violation.");
    let mut results = Vec::new();
    for batch in all.chunks(10) {
        let PushOutcome::Accepted { receipt } = c.push(batch).await.unwrap() else { panic!("not accepted") };
        results.extend(result_of(&c, &receipt).await);
    }
    assert_eq!(results.len(), 25, "every item has a result: {results:?}");
    let failed: HashMap<&str, &Vec<String>> =
        results.iter().filter(|r| !r.ok).map(|r| (r.barcode.as_str(), &r.reasons)).collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed["FAIL-3"][0].contains("suppressed"));
    assert!(failed["SKU-00007"][0].contains("No listing"), "an unknown listing: {:?}", failed["SKU-00007"]);
    assert!(failed["SKU-00012"][0].contains("policy violation"));
    assert_eq!(f.stock("SKU-00024"), Some(24));
    assert_eq!(f.price("SKU-00024"), Some(124.0));
    assert_eq!(f.times_applied("SKU-00000"), 1);
    assert_eq!(f.times_applied("SKU-00012"), 0);
    let s = f.stats();
    assert_eq!((s.feeds, s.largest_feed, s.tokens_issued), (3, 10, 1), "one token for every call: {s:?}");
    keep(&f);
    f.shutdown().await;
}

#[tokio::test]
async fn test_feed_in_progress_then_gzip_report() {
    let f = fake(Config { feed_polls_in_progress: 2, gzip_reports: true, ..Config::default() }).await;
    let c = connector(&f);
    let PushOutcome::Accepted { receipt } = c.push(&items(3)).await.unwrap() else { panic!() };
    assert_eq!(c.batch_result(&receipt).await.unwrap(), BatchStatus::InProgress);
    assert_eq!(c.batch_result(&receipt).await.unwrap(), BatchStatus::InProgress);
    let BatchStatus::Done(r) = c.batch_result(&receipt).await.unwrap() else { panic!("not done") };
    assert_eq!(r.iter().filter(|r| r.ok).count(), 3);
    keep(&f);
    f.inject(Faults { stuck_feeds: true, ..Faults::default() });
    let PushOutcome::Accepted { receipt } = c.push(&items(2)).await.unwrap() else { panic!() };
    for _ in 0..5 {
        assert_eq!(c.batch_result(&receipt).await.unwrap(), BatchStatus::InProgress, "a stuck feed stays pending");
    }
    f.shutdown().await;
}

#[tokio::test]
async fn test_throttled_push_waits_for_the_bucket_and_5xx_is_transient() {
    let f = fake(Config::default()).await;
    let c = connector(&f);
    f.inject(Faults { create_document: vec![429, 503], ..Faults::default() });
    match c.push(&items(2)).await {
        Err(ConnectorError::Transient { retry_after: Some(wait), reason }) => {
            // createFeedDocument refills 0.5 tokens/s: the next one in 2 s.
            assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2), "{wait:?}");
            assert!(reason.contains("QuotaExceeded"), "{reason}");
        }
        other => panic!("expected a throttled push, got {other:?}"),
    }
    let t0 = std::time::Instant::now();
    match c.push(&items(2)).await {
        Err(ConnectorError::Transient { reason, .. }) => assert!(reason.contains("503"), "{reason}"),
        other => panic!("expected a transient 5xx, got {other:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(1500), "the emptied bucket held the next call");
    assert!(matches!(c.push(&items(2)).await, Ok(PushOutcome::Accepted { .. })));
    keep(&f);
    f.shutdown().await;
}

#[tokio::test]
async fn test_wrong_credentials_fatal_naming_the_setting_never_the_value() {
    let f = fake(Config::default()).await;
    for (setting, value) in [
        (amazon::REFRESH_TOKEN_SETTING, "Atzr|wrong-refresh-value"),
        (amazon::CLIENT_SECRET_SETTING, "wrong-secret-value"),
    ] {
        let c = connector_with(&f, &[(setting, value)], ManualClock::at_ms(meschain_model::clock::now_ms()));
        match c.push(&items(1)).await {
            Err(ConnectorError::Fatal(reason)) => {
                assert!(reason.contains(setting), "{reason}");
                assert!(!reason.contains(value), "{reason}");
            }
            other => panic!("expected Fatal, got {other:?}"),
        }
    }
    assert_eq!(f.stats().feeds, 0);
    f.shutdown().await;
}

#[tokio::test]
async fn test_token_refreshed_before_expiry_and_once_when_refused() {
    let f = fake(Config::default()).await;
    let clock = ManualClock::at_ms(meschain_model::clock::now_ms());
    let c = connector_with(&f, &[], clock.clone());
    c.push(&items(1)).await.unwrap();
    c.push(&items(1)).await.unwrap();
    assert_eq!(f.stats().tokens_issued, 1, "cached");
    // 59 minutes and a bit later: within the refresh margin, a new token before the old lapses.
    clock.advance(Duration::from_secs(3541));
    c.push(&items(1)).await.unwrap();
    assert_eq!(f.stats().tokens_issued, 2);
    assert_eq!(f.stats().expired_access_tokens, 0);
    // Amazon says the token expired (our clock disagrees): one refresh, the call goes through.
    f.expire_tokens();
    c.push(&items(1)).await.unwrap();
    let s = f.stats();
    assert_eq!((s.tokens_issued, s.expired_access_tokens), (3, 1), "{s:?}");
    keep(&f);
    f.shutdown().await;
}

#[tokio::test]
async fn test_refused_marketplace_and_non_token_403() {
    let f = fake(Config::default()).await;
    let c = connector_with(
        &f,
        &[(amazon::MARKETPLACE_ID_SETTING, "A1PA6795UKMFR9")],
        ManualClock::at_ms(meschain_model::clock::now_ms()),
    );
    match c.push(&items(1)).await.unwrap() {
        PushOutcome::Rejected { reason } => assert!(reason.contains("marketplace"), "{reason}"),
        other => panic!("{other:?}"),
    }
    keep(&f);
    f.shutdown().await;
}

#[tokio::test]
async fn test_orders_across_pages_none_twice_and_after_a_restart() {
    let f = fake(Config::default()).await;
    let now = meschain_model::clock::now_ms() as i64;
    let (from, to) = (now - 3_600_000, now);
    f.add_orders(250, from, to - 1000);
    f.add_orders(5, from - 7_200_000, from - 3_600_000);
    let c = connector(&f);
    let mut ids = std::collections::HashSet::new();
    let mut page = 0;
    loop {
        let p = c.orders(from, to, page).await.unwrap();
        for o in &p.orders {
            assert!(ids.insert(o.package_id.clone()), "order {} twice", o.package_id);
            assert!(o.last_modified >= from && o.last_modified <= to);
            assert!(o.total > Money::ZERO && o.currency == "TRY" && o.lines.len() == 1);
        }
        page += 1;
        if page >= p.total_pages {
            break;
        }
    }
    assert_eq!((ids.len(), page), (250, 3));
    // A new process asked for the last page walks the tokens from the first.
    let fresh = connector(&f);
    let last = fresh.orders(from, to, 2).await.unwrap();
    assert_eq!((last.orders.len(), last.total_pages), (50, 3));
    assert!(last.orders.iter().all(|o| ids.contains(&o.package_id)));
    keep(&f);
    f.shutdown().await;
}

// ---- through the engine ----

struct Quiet;

#[async_trait::async_trait]
impl meschain_marketplace::engine::Reporter for Quiet {
    async fn progress(&self, _: &meschain_marketplace::progress::Progress) {}
    async fn batch(&self, _: &meschain_marketplace::progress::BatchReport) {}
    async fn order(&self, _: &str, _: &meschain_marketplace::connector::Order) {}
    async fn event(&self, _: &meschain_marketplace::engine::SyncEvent) {}
}

async fn run_engine(conn: Amazon, n: usize, sync_id: &str) -> meschain_marketplace::engine::Summary {
    use meschain_marketplace::engine::{Engine, Options, Outcome};
    let dir = tempfile::tempdir().unwrap();
    let store = meschain_store::embedded::EmbeddedStore::open(dir.path(), Duration::from_secs(3600)).await.unwrap();
    let items: Vec<Value> = (0..n).map(|i| json!({ "barcode": format!("SKU-{i:05}"), "quantity": i % 9 })).collect();
    let body = json!({ "marketplace": "amazon", "operation": "inventory", "items": items, "syncId": sync_id, "requestedBy": "ops" });
    let plan = meschain_marketplace::request::validate(&body, None, time::OffsetDateTime::now_utc()).unwrap();
    let engine = Engine {
        store: Arc::new(store),
        connector: Arc::new(conn),
        reporter: Arc::new(Quiet),
        http: meschain_marketplace::net_guard::ItemsHttp::new(Default::default()),
        catalog: None,
        options: Options {
            first_poll: Duration::from_millis(20),
            max_poll_interval: Duration::from_millis(100),
            max_polls: 3,
            ..Options::new("t", tokio::time::Instant::now() + Duration::from_secs(60))
        },
        clock: Arc::new(meschain_model::clock::SystemClock),
    };
    match engine.run(&plan).await.unwrap() {
        Outcome::Completed(s) => s,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn test_engine_keeps_polling_a_slow_feed_then_counts_a_stuck_one_unconfirmed() {
    // Feeds answer IN_QUEUE/IN_PROGRESS for 6 polls, twice the engine's poll budget here: still read.
    let f = fake(Config { feed_polls_in_progress: 6, ..Config::default() }).await;
    let s = settings(&f, &[(amazon::FEED_MESSAGES_SETTING, "40")]);
    let mut config = AmazonConfig::from_settings(&|k| s.get(k).cloned()).unwrap();
    config.results_within = Duration::from_secs(5);
    let conn = Amazon::new(config, reqwest::Client::new());
    let summary = run_engine(conn, 100, "slow-feeds").await;
    assert_eq!((summary.processed, summary.succeeded, summary.unconfirmed_items), (100, 100, 0), "{summary:?}");
    assert_eq!(f.stats().feeds, 3);
    keep(&f);

    // A feed that never finishes: polled until results_within, then its items are unconfirmed.
    f.inject(Faults { stuck_feeds: true, ..Faults::default() });
    let s = settings(&f, &[]);
    let mut config = AmazonConfig::from_settings(&|k| s.get(k).cloned()).unwrap();
    config.results_within = Duration::from_millis(800);
    let t0 = std::time::Instant::now();
    let summary = run_engine(Amazon::new(config, reqwest::Client::new()), 10, "stuck-feed").await;
    assert!(t0.elapsed() >= Duration::from_millis(800));
    assert_eq!((summary.processed, summary.succeeded, summary.unconfirmed_items), (10, 0, 10), "{summary:?}");
    assert!(f.stats().feed_polls > 6 + 3 + 3, "polled past the engine's own budget: {:?}", f.stats());
    f.shutdown().await;
}

// ---- contract validation against Amazon's models ----

/// One of Amazon's models, when this checkout has them (see `support/reference.rs`).
fn load(name: &str) -> Option<Value> {
    let path = reference::openapi_file(&format!("amazon/{name}"))?;
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn definition(model: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({ "$ref": format!("#/definitions/{name}"), "definitions": model["definitions"] });
    jsonschema::validator_for(&schema).unwrap()
}

fn check(validator: &jsonschema::Validator, what: &str, v: &Value) {
    if let Err(e) = validator.validate(v) {
        panic!("{what} does not follow Amazon's model: {e}\n{v}");
    }
}

#[tokio::test]
async fn test_exchanges_follow_amazons_models() {
    // Run a fresh set of exchanges here too, so this test never depends on the others' order.
    let f = fake(Config { gzip_reports: true, ..Config::default() }).await;
    let c = connector(&f);
    let mut batch = items(4);
    batch[1].barcode = "FAIL-1".into();
    batch[2].quantity = None;
    batch[3].sale_price = None;
    let PushOutcome::Accepted { receipt } = c.push(&batch).await.unwrap() else { panic!() };
    result_of(&c, &receipt).await;
    f.inject(Faults { create_document: vec![429], get_feed: vec![500], ..Faults::default() });
    let _ = c.push(&items(1)).await;
    let _ = c.batch_result(&receipt).await;
    let _ = c.batch_result("no-such-feed").await;
    let now = meschain_model::clock::now_ms() as i64;
    f.add_orders(120, now - 60_000, now - 1000);
    c.orders(now - 120_000, now, 0).await.unwrap();
    c.orders(now - 120_000, now, 1).await.unwrap();
    keep(&f);
    f.shutdown().await;

    let (Some(feeds), Some(orders), Some(feed_doc), Some(report)) = (
        load("feeds_2021-06-30.json"),
        load("orders_2026-01-01.json"),
        load("listings-feed-schema-v2.json"),
        load("listings-feed-processing-report-schema-v2.json"),
    ) else {
        return;
    };
    let feed_doc = jsonschema::validator_for(&feed_doc).unwrap();
    let report = jsonschema::validator_for(&report).unwrap();
    let errors = definition(&feeds, "ErrorList");
    let orders_errors = definition(&orders, "ErrorList");
    let create_doc_req = definition(&feeds, "CreateFeedDocumentSpecification");
    let create_doc_resp = definition(&feeds, "CreateFeedDocumentResponse");
    let create_feed_req = definition(&feeds, "CreateFeedSpecification");
    let create_feed_resp = definition(&feeds, "CreateFeedResponse");
    let feed = definition(&feeds, "Feed");
    let document = definition(&feeds, "FeedDocument");
    let search = definition(&orders, "SearchOrdersResponse");

    // The validators do refuse what breaks the models (a check that cannot fail checks nothing).
    assert!(feed_doc.validate(&json!({ "header": { "sellerId": "S", "version": "1.0" }, "messages": [] })).is_err());
    assert!(feed.validate(&json!({ "feedId": "1" })).is_err());
    assert!(search.validate(&json!({ "orders": [{ "orderId": "1" }] })).is_err());
    assert!(errors.validate(&json!({ "errors": [{ "message": "no code" }] })).is_err());

    let seen = SEEN.lock().unwrap().clone();
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for x in &seen {
        *counts.entry(x.operation).or_default() += 1;
        let what = format!("{} {}", x.operation, x.status);
        if let Some(req) = &x.request {
            match x.operation {
                "createFeedDocument" => check(&create_doc_req, &what, req),
                "createFeed" => check(&create_feed_req, &what, req),
                "feedDocument" => check(&feed_doc, "the uploaded JSON_LISTINGS_FEED", req),
                _ => {}
            }
        }
        let Some(resp) = &x.response else { continue };
        if x.status >= 400 {
            check(if x.operation == "searchOrders" { &orders_errors } else { &errors }, &what, resp);
            continue;
        }
        match x.operation {
            "createFeedDocument" => check(&create_doc_resp, &what, resp),
            "createFeed" => check(&create_feed_resp, &what, resp),
            "getFeed" => check(&feed, &what, resp),
            "getFeedDocument" => check(&document, &what, resp),
            "processingReport" => check(&report, &what, resp),
            "searchOrders" => check(&search, &what, resp),
            other => panic!("unexpected operation {other}"),
        }
    }
    for op in [
        "createFeedDocument",
        "feedDocument",
        "createFeed",
        "getFeed",
        "getFeedDocument",
        "processingReport",
        "searchOrders",
    ] {
        assert!(counts.get(op).copied().unwrap_or(0) > 0, "no {op} exchange was validated: {counts:?}");
    }
    assert!(seen.iter().any(|x| x.status == 429) && seen.iter().any(|x| x.status == 500));
}
