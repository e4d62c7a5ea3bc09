//! The Hepsiburada connector against `meschain-fake-hepsiburada`, with every listing request the
//! connector sends and every answer the fake gives validated against Hepsiburada's own OpenAPI
//! (the excerpt kept beside the repository in `shared/reference/openapi/hepsiburada/`), so
//! neither side can drift from the published contract.

#[path = "support/reference.rs"]
mod reference;

use std::time::Duration;

use meschain_fake_hepsiburada::{Config, FakeHepsiburada, Faults};
use meschain_marketplace::connector::{BatchStatus, Connector, ConnectorError, ItemResult, PushOutcome};
use meschain_marketplace::hepsiburada::{self as hb, Hepsiburada, HepsiburadaConfig};
use meschain_marketplace::request::Item;
use serde_json::{Value, json};

async fn fake(config: Config) -> FakeHepsiburada {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_hepsiburada::start(Config { record_exchanges: true, ..config }, listener).await.unwrap()
}

fn connector(fake: &FakeHepsiburada, key: Option<&str>) -> Hepsiburada {
    let c = fake.config().clone();
    let key = key.map(str::to_string).unwrap_or(c.service_key);
    let pairs = [
        (hb::BASE_URL_SETTING, fake.base_url()),
        (hb::ORDERS_BASE_URL_SETTING, fake.base_url()),
        (hb::MERCHANT_ID_SETTING, c.merchant_id),
        (hb::SERVICE_KEY_SETTING, key),
        (hb::INTEGRATOR_SETTING, c.integrator),
    ];
    let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    Hepsiburada::new(HepsiburadaConfig::from_settings(&get).unwrap(), reqwest::Client::new())
}

fn item(b: &str, q: Option<u32>, sale: Option<f64>, list: Option<f64>) -> Item {
    let money = |x: Option<f64>| x.map(|x| x.to_string().parse::<meschain_model::money::Money>().unwrap());
    Item { barcode: b.into(), quantity: q, sale_price: money(sale), list_price: money(list) }
}

async fn results(c: &Hepsiburada, receipt: &str) -> Vec<ItemResult> {
    for _ in 0..50 {
        match c.batch_result(receipt).await.unwrap() {
            BatchStatus::Done(r) => return r,
            BatchStatus::InProgress => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("the upload never finished");
}

fn receipt(outcome: PushOutcome) -> String {
    match outcome {
        PushOutcome::Accepted { receipt } => receipt,
        other => panic!("accepted expected, got {other:?}"),
    }
}

/// Hepsiburada's listing OpenAPI excerpt, when this checkout has it (see `support/reference.rs`).
fn openapi() -> Option<Value> {
    let path = reference::openapi_file("hepsiburada/hepsiburada-listing-excerpt.json")?;
    Some(serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
}

/// OpenAPI 3.0's `nullable` as JSON Schema: `type: T` + `nullable: true` → `type: [T, "null"]`.
fn nullable_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([t, "null"]));
            }
            map.values_mut().for_each(nullable_to_json_schema);
        }
        Value::Array(a) => a.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// The schema at `pointer` in the OpenAPI document, its `#/components/...` refs resolvable.
fn schema(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc.pointer(pointer).unwrap_or_else(|| panic!("{pointer} not in the OpenAPI")).clone();
    root["components"] = doc["components"].clone();
    nullable_to_json_schema(&mut root);
    jsonschema::validator_for(&root).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, body: &[u8], what: &str) {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} breaks Hepsiburada's OpenAPI: {errors:?}\n{v}");
}

/// Every exchange with the listing API matches the OpenAPI: request bodies, 200 answers, the
/// required `User-Agent` and Basic auth.
fn check_against_openapi(fake: &FakeHepsiburada, doc: &Value) -> usize {
    let mut checked = 0;
    for x in fake.exchanges() {
        let Some(path) = x.route.strip_prefix("/listings/merchantid/{merchant}") else { continue };
        let path = format!("/listings/merchantid/{{merchantId}}{path}");
        let op = format!("/paths/{}/{}", path.replace('~', "~0").replace('/', "~1"), x.method.to_lowercase());
        assert!(doc.pointer(&op).is_some(), "{} {path} is not in Hepsiburada's OpenAPI", x.method);
        assert!(x.headers.get("user-agent").is_some_and(|v| !v.is_empty()), "User-Agent is required");
        assert!(
            x.headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Basic ")),
            "HTTP Basic"
        );
        if x.method == "POST" {
            let s = schema(doc, &format!("{op}/requestBody/content/application~1json/schema"));
            assert_valid(&s, &x.request, &format!("request to {path}"));
        }
        if x.status == 200 {
            let s = schema(doc, &format!("{op}/responses/200/content/application~1json/schema"));
            assert_valid(&s, &x.response, &format!("answer of {path}"));
        }
        checked += 1;
    }
    checked
}

#[tokio::test]
async fn test_push_results_per_item_and_contract() {
    let fake = fake(Config { result_polls_in_progress: 2, ..Config::default() }).await;
    fake.refuse("B-refused");
    let c = connector(&fake, None);
    let items = vec![
        item("B-stock", Some(7), None, None),
        item("B-both", Some(3), Some(19.99), Some(25.0)),
        item("B-price", None, Some(5.5), None),
        item("B-list-only", None, None, Some(10.0)),
        item("B-refused", Some(1), None, None),
    ];
    let receipt = receipt(c.push(&items).await.unwrap());
    assert_eq!(c.batch_result(&receipt).await.unwrap(), BatchStatus::InProgress, "Processing first");
    let r = results(&c, &receipt).await;
    assert_eq!(r.len(), items.len(), "one result per item: {r:?}");
    let ok: Vec<(&str, bool)> = r.iter().map(|x| (x.barcode.as_str(), x.ok)).collect();
    for (b, expected) in
        [("B-stock", true), ("B-both", true), ("B-price", true), ("B-list-only", false), ("B-refused", false)]
    {
        assert!(ok.contains(&(b, expected)), "{b}: {ok:?}");
    }
    let refused = r.iter().find(|x| x.barcode == "B-refused").unwrap();
    assert!(refused.reasons.iter().any(|m| m.contains("Listing bulunamadı")), "{refused:?}");
    let list_only = r.iter().find(|x| x.barcode == "B-list-only").unwrap();
    assert!(list_only.reasons[0].contains("salePrice"), "{list_only:?}");
    assert_eq!(fake.stock("B-stock"), Some(7));
    assert_eq!(fake.stock("B-both"), Some(3));
    assert_eq!(fake.price("B-both"), Some(19.99));
    assert_eq!(fake.price("B-price"), Some(5.5));
    assert_eq!(fake.times_applied("B-list-only"), 0, "never sent");
    assert_eq!((fake.stats().stock_uploads, fake.stats().price_uploads), (1, 1));
    let Some(doc) = openapi() else { return };
    assert!(check_against_openapi(&fake, &doc) >= 4, "uploads and result reads were checked");
    // The check itself can fail: a wrong type and an unknown field are caught.
    let s = schema(
        &doc,
        "/paths/~1listings~1merchantid~1{merchantId}~1stock-uploads/post/requestBody/content/application~1json/schema",
    );
    assert!(!s.is_valid(&json!([{"merchantSku": 5, "availableStock": 1}])));
    assert!(!s.is_valid(&json!([{"merchantSku": "A", "quantity": 1}])));
    assert!(s.is_valid(&json!([{"merchantSku": "A", "hepsiburadaSku": null, "availableStock": 1}])));
}

#[tokio::test]
async fn test_wrong_service_key_is_fatal_and_named() {
    let fake = fake(Config::default()).await;
    let c = connector(&fake, Some("WrongKey9999"));
    let err = c.push(&[item("A", Some(1), None, None)]).await.unwrap_err();
    let ConnectorError::Fatal(msg) = err else { panic!("fatal expected: {err:?}") };
    assert!(msg.contains(hb::SERVICE_KEY_SETTING) && !msg.contains("WrongKey9999"), "{msg}");
    assert_eq!(fake.times_applied("A"), 0);
}

#[tokio::test]
async fn test_throttling_pauses_the_endpoint() {
    let fake = fake(Config::default()).await;
    let c = connector(&fake, None);
    fake.inject(Faults { push: vec![429], reset_seconds: Some(1), ..Faults::default() });
    let err = c.push(&[item("A", Some(1), None, None)]).await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{err:?}"
    );
    let started = tokio::time::Instant::now();
    let receipt = receipt(c.push(&[item("A", Some(1), None, None)]).await.unwrap());
    assert!(started.elapsed() >= Duration::from_millis(900), "the next call waited out X-RateLimit-Reset");
    assert!(results(&c, &receipt).await[0].ok);
    assert_eq!(fake.times_applied("A"), 1);
}

#[tokio::test]
async fn test_retry_after_a_failed_second_upload_does_not_reapply_the_first() {
    let fake = fake(Config::default()).await;
    let c = connector(&fake, None);
    let items = [item("B", Some(4), Some(3.0), None)];
    // The stock upload passes (200), the price upload gets a 503: the push fails as a whole.
    fake.inject(Faults { push: vec![200, 503], ..Faults::default() });
    let err = c.push(&items).await;
    assert!(matches!(err, Err(ConnectorError::Transient { .. })), "{err:?}");
    assert_eq!(fake.times_applied("B"), 1, "the stock upload was applied");
    // The engine retries the same push: the stock upload is not sent again.
    let r = results(&c, &receipt(c.push(&items).await.unwrap())).await;
    assert!(r.iter().all(|x| x.ok), "{r:?}");
    assert_eq!(fake.times_applied("B"), 2, "stock once, price once, despite two pushes");
    assert_eq!(fake.stats().skus_applied_more_than_once, 0);
    assert_eq!((fake.stock("B"), fake.price("B")), (Some(4), Some(3.0)));
    // A completed push leaves nothing behind: the same values pushed again are sent again.
    let _ = results(&c, &receipt(c.push(&items).await.unwrap())).await;
    assert_eq!(fake.times_applied("B"), 4);
}

#[tokio::test]
async fn test_orders_across_day_ranges_each_once() {
    let fake = fake(Config::default()).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let to = now - 60_000;
    let from = to - 3 * 24 * 3_600_000 + 12_345;
    fake.add_orders(730, from, to);
    fake.add_orders(5, from - 10 * 24 * 3_600_000, from - 3_600_000);
    let c = connector(&fake, None);
    let first = c.orders(from, to, 0).await.unwrap();
    assert_eq!(first.total_orders, 730);
    assert!(first.total_pages >= 8, "730 lines over 4 day ranges, 100 a page: {}", first.total_pages);
    let mut seen: Vec<String> = first.orders.iter().map(|o| o.package_id.clone()).collect();
    for page in 1..first.total_pages {
        let p = c.orders(from, to, page).await.unwrap();
        assert_eq!(p.total_pages, first.total_pages);
        assert!(p.orders.iter().all(|o| o.last_modified >= from && o.last_modified <= to));
        seen.extend(p.orders.iter().map(|o| o.package_id.clone()));
    }
    assert!(c.orders(from, to, first.total_pages).await.unwrap().orders.is_empty());
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((n, seen.len()), (730, 730), "every line once");
}

#[tokio::test]
async fn test_fake_refuses_what_hepsiburada_refuses() {
    let fake = fake(Config::default()).await;
    let c = fake.config().clone();
    let http = reqwest::Client::new();
    let url = format!("{}/listings/merchantid/{}/stock-uploads", fake.base_url(), c.merchant_id);
    let r = http.post(&url).basic_auth(&c.merchant_id, Some(&c.service_key)).json(&json!([])).send().await.unwrap();
    assert_eq!(r.status(), 403, "no User-Agent of the integrator");
    let send = |body: Value| {
        http.post(&url)
            .basic_auth(&c.merchant_id, Some(&c.service_key))
            .header("user-agent", &c.integrator)
            .json(&body)
            .send()
    };
    assert_eq!(send(json!({"merchantSku": "A"})).await.unwrap().status(), 400, "not an array");
    assert_eq!(send(json!([])).await.unwrap().status(), 400, "empty");
    let orders = format!("{}/orders/merchantid/{}", fake.base_url(), c.merchant_id);
    let get = |q: &'static str| {
        http.get(format!("{orders}?{q}"))
            .basic_auth(&c.merchant_id, Some(&c.service_key))
            .header("user-agent", &c.integrator)
            .send()
    };
    assert_eq!(get("offset=0").await.unwrap().status(), 400, "limit is mandatory");
    assert_eq!(get("offset=0&limit=101").await.unwrap().status(), 400, "limit at most 100");
    assert_eq!(get("offset=0&limit=100").await.unwrap().status(), 200);
}
