//! The N11 connector against `meschain-fake-n11`: tasks and their per-SKU results, N11's price
//! rules enforced before sending, credentials, throttling, orders across ranges and statuses.

use std::time::Duration;

use meschain_fake_n11::{Config, FakeN11, Faults};
use meschain_marketplace::connector::{BatchStatus, Connector, ConnectorError, ItemResult, PushOutcome};
use meschain_marketplace::n11::{self, N11, N11Config};
use meschain_marketplace::request::Item;
use serde_json::Value;

async fn fake(config: Config) -> FakeN11 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_n11::start(Config { record_exchanges: true, ..config }, listener).await.unwrap()
}

fn connector(fake: &FakeN11, secret: Option<&str>) -> N11 {
    let c = fake.config().clone();
    let pairs = [
        (n11::BASE_URL_SETTING, fake.base_url()),
        (n11::APP_KEY_SETTING, c.app_key),
        (n11::APP_SECRET_SETTING, secret.map(str::to_string).unwrap_or(c.app_secret)),
    ];
    let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    N11::new(N11Config::from_settings(&get).unwrap(), reqwest::Client::new())
}

fn item(b: &str, q: Option<u32>, sale: Option<f64>, list: Option<f64>) -> Item {
    let money = |x: Option<f64>| x.map(|x| x.to_string().parse::<meschain_model::money::Money>().unwrap());
    Item { barcode: b.into(), quantity: q, sale_price: money(sale), list_price: money(list) }
}

async fn results(c: &N11, receipt: &str) -> Vec<ItemResult> {
    for _ in 0..50 {
        match c.batch_result(receipt).await.unwrap() {
            BatchStatus::Done(r) => return r,
            BatchStatus::InProgress => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("the task never finished");
}

fn receipt(outcome: PushOutcome) -> String {
    match outcome {
        PushOutcome::Accepted { receipt } => receipt,
        other => panic!("accepted expected, got {other:?}"),
    }
}

#[tokio::test]
async fn test_task_results_and_price_rule() {
    let fake = fake(Config { task_polls_in_queue: 2, ..Config::default() }).await;
    fake.refuse("N-unknown");
    let c = connector(&fake, None);
    let items = vec![
        item("N-ok", Some(2), Some(1600.0), Some(2000.0)),
        item("N-stock", Some(9), None, None),
        item("N-below", Some(4), Some(20.0), Some(19.99)),
        item("N-unknown", Some(1), None, None),
    ];
    let receipt = receipt(c.push(&items).await.unwrap());
    assert_eq!(c.batch_result(&receipt).await.unwrap(), BatchStatus::InProgress, "IN_QUEUE first");
    let r = results(&c, &receipt).await;
    let summary: Vec<(&str, bool)> = r.iter().map(|x| (x.barcode.as_str(), x.ok)).collect();
    assert_eq!(summary, vec![("N-ok", true), ("N-stock", true), ("N-unknown", false), ("N-below", false)]);
    assert!(r[2].reasons[0].contains("bulunamadı"), "{r:?}");
    assert!(r[3].reasons[0].contains("listPrice ≥ salePrice"), "{r:?}");
    assert_eq!(fake.times_applied("N-below"), 0, "never sent");
    assert_eq!(fake.prices("N-ok"), (Some(2000.0), Some(1600.0)));
    assert_eq!(fake.stock("N-stock"), Some(9));
    // The body N11 documents: payload.integrator and at most 1,000 skus, prices with 2 decimals.
    let push = fake.exchanges().into_iter().find(|x| x.path.ends_with("price-stock-update")).unwrap();
    let body: Value = serde_json::from_slice(&push.request).unwrap();
    assert_eq!(body["payload"]["integrator"], n11::DEFAULT_INTEGRATOR);
    assert_eq!(body["payload"]["skus"].as_array().unwrap().len(), 3);
    assert_eq!(body["payload"]["skus"][0]["currencyType"], "TL");
}

#[tokio::test]
async fn test_wrong_secret_is_fatal_and_named() {
    let fake = fake(Config::default()).await;
    let c = connector(&fake, Some("wrong-secret-value"));
    let err = c.push(&[item("A", Some(1), None, None)]).await.unwrap_err();
    let ConnectorError::Fatal(msg) = err else { panic!("fatal expected: {err:?}") };
    assert!(msg.contains(n11::APP_SECRET_SETTING) && !msg.contains("wrong-secret-value"), "{msg}");
    assert!(msg.contains("SellerApiUserUnauthorizedException"), "{msg}");
    let err = c.orders(0, 1000, 0).await.unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Fatal(m) if m.contains("403") && m.contains(n11::APP_KEY_SETTING)),
        "{err:?}"
    );
}

#[tokio::test]
async fn test_throttling_and_5xx() {
    let fake = fake(Config::default()).await;
    let c = connector(&fake, None);
    fake.inject(Faults { push: vec![429, 503], retry_after_seconds: Some(1), ..Faults::default() });
    let err = c.push(&[item("A", Some(1), None, None)]).await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{err:?}"
    );
    let started = tokio::time::Instant::now();
    let err = c.push(&[item("A", Some(1), None, None)]).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for Retry-After");
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    let r = results(&c, &receipt(c.push(&[item("A", Some(1), None, None)]).await.unwrap())).await;
    assert!(r[0].ok);
    assert_eq!(fake.times_applied("A"), 1);
}

#[tokio::test]
async fn test_orders_across_ranges_and_statuses_each_once() {
    let fake = fake(Config::default()).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let to = now - 60_000;
    let from = to - 20 * 24 * 3_600_000;
    fake.add_orders(650, from, to);
    let c = connector(&fake, None);
    let first = c.orders(from, to, 0).await.unwrap();
    assert_eq!(first.total_orders, 650);
    let mut ids: Vec<String> = first.orders.iter().map(|o| o.package_id.clone()).collect();
    for page in 1..first.total_pages {
        ids.extend(c.orders(from, to, page).await.unwrap().orders.into_iter().map(|o| o.package_id));
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (650, 650));
}
