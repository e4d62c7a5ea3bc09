//! The Ozon connector against this fake: the documented contract both ways, and every request
//! the connector sent and every answer the fake gave checked against Ozon's own OpenAPI
//! (`../shared/reference/openapi/ozon/`, beside the repository), so neither can drift from it.

#[path = "../../marketplace/tests/support/reference.rs"]
mod reference;

use std::time::Duration;

use meschain_fake_ozon::{Config, FakeOzon};
use meschain_marketplace::connector::{Connector, ConnectorError, PushOutcome};
use meschain_marketplace::ozon::{
    API_KEY_SETTING, BASE_URL_SETTING, CLIENT_ID_SETTING, Ozon, OzonConfig, WAREHOUSE_ID_SETTING,
};
use meschain_model::marketplace::SyncItem;
use serde_json::Value;

async fn fake(config: Config) -> FakeOzon {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_ozon::start(config, listener).await.unwrap()
}

fn connector(fake: &FakeOzon, api_key: &str) -> Ozon {
    let c = fake.config();
    let settings = [
        (BASE_URL_SETTING, fake.base_url()),
        (CLIENT_ID_SETTING, c.client_id.clone()),
        (API_KEY_SETTING, api_key.to_string()),
        (WAREHOUSE_ID_SETTING, c.warehouse_id.to_string()),
    ];
    let get = move |k: &str| settings.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    Ozon::new(OzonConfig::from_settings(&get).unwrap(), reqwest::Client::new())
}

fn item(barcode: &str, quantity: Option<u32>, sale: Option<&str>, list: Option<&str>) -> SyncItem {
    SyncItem {
        barcode: barcode.into(),
        quantity,
        sale_price: sale.map(|s| s.parse().unwrap()),
        list_price: list.map(|s| s.parse().unwrap()),
    }
}

fn completed(outcome: PushOutcome) -> Vec<meschain_marketplace::connector::ItemResult> {
    match outcome {
        PushOutcome::Completed(results) => results,
        other => panic!("expected per-item results, got {other:?}"),
    }
}

#[tokio::test]
async fn test_push_applies_stock_and_prices_per_item() {
    let fake = fake(Config::default()).await;
    let ozon = connector(&fake, &fake.config().api_key.clone());
    let items: Vec<SyncItem> =
        (0..1000).map(|i| item(&format!("SKU-{i:04}"), Some(i % 50), Some("199.90"), Some("249.00"))).collect();
    fake.know_items(&items.iter().map(|i| i.barcode.clone()).collect::<Vec<_>>());
    fake.refuse_item("SKU-0007");
    let results = completed(ozon.push(&items).await.unwrap());
    assert_eq!(results.len(), 1000);
    let failed: Vec<_> = results.iter().filter(|r| !r.ok).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].barcode, "SKU-0007");
    assert!(failed[0].reasons.iter().any(|r| r.contains("NOT_FOUND_ERROR")), "{:?}", failed[0].reasons);
    assert_eq!(fake.stock("SKU-0042"), Some(42));
    let stats = fake.stats();
    assert_eq!((stats.stock_calls, stats.price_calls), (10, 1), "100 pairs per stocks call, 1,000 prices per call");
    assert_eq!(stats.largest_stock_call, 100);
    assert_eq!(fake.times_applied("SKU-0001"), 2, "stock and price");
    fake.shutdown().await;
}

#[tokio::test]
async fn test_per_product_limits_are_kept_before_ozon_refuses() {
    let fake = fake(Config::default()).await;
    let ozon = connector(&fake, &fake.config().api_key.clone());
    fake.know_items(&["A".to_string(), "P".to_string()]);
    // Stock: a second update of the pair within 30 s is held back (a wait, not a failure).
    completed(ozon.push(&[item("A", Some(1), None, None)]).await.unwrap());
    match ozon.push(&[item("A", Some(2), None, None)]).await {
        Err(ConnectorError::Transient { retry_after: Some(wait), reason }) => {
            assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(31), "{wait:?}");
            assert!(reason.contains("30 s"), "{reason}");
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    // Price: the 11th change within an hour is reported failed with the reason, never sent.
    for n in 0..10 {
        let price = format!("{}.00", 100 + n);
        let results = completed(ozon.push(&[item("P", None, Some(&price), None)]).await.unwrap());
        assert!(results[0].ok, "{results:?}");
    }
    let results = completed(ozon.push(&[item("P", None, Some("150.00"), None)]).await.unwrap());
    assert!(!results[0].ok);
    assert!(results[0].reasons[0].contains("10 price changes"), "{:?}", results[0].reasons);
    let stats = fake.stats();
    assert_eq!((stats.pair_limited, stats.price_limited), (0, 0), "Ozon never had to refuse");
    fake.shutdown().await;
}

#[tokio::test]
async fn test_duplicates_in_a_batch_send_the_last_value_once() {
    let fake = fake(Config::default()).await;
    let ozon = connector(&fake, &fake.config().api_key.clone());
    fake.know_items(&["A".to_string()]);
    let results =
        completed(ozon.push(&[item("A", Some(1), None, None), item("A", Some(5), None, None)]).await.unwrap());
    assert!(!results[0].ok && results[0].reasons[0].contains("superseded"), "{results:?}");
    assert!(results[1].ok);
    assert_eq!((fake.stock("A"), fake.times_applied("A")), (Some(5), 1));
    fake.shutdown().await;
}

#[tokio::test]
async fn test_throttling_and_5xx_are_transient_and_a_retry_resends_only_the_unanswered() {
    let fake = fake(Config::default()).await;
    let ozon = connector(&fake, &fake.config().api_key.clone());
    let items: Vec<SyncItem> = (0..150).map(|i| item(&format!("S{i}"), Some(1), Some("10"), None)).collect();
    fake.know_items(&items.iter().map(|i| i.barcode.clone()).collect::<Vec<_>>());
    fake.throttle_pushes(1, 3);
    match ozon.push(&items).await {
        Err(ConnectorError::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("expected a 429 wait, got {other:?}"),
    }
    // The prices call and the first stocks call are answered; the second stocks call gets a 5xx.
    fake.inject(meschain_fake_ozon::Faults { push: vec![0, 0, 500], ..Default::default() });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(matches!(ozon.push(&items).await, Err(ConnectorError::Transient { .. })));
    let results = completed(ozon.push(&items).await.unwrap());
    assert!(results.iter().all(|r| r.ok), "{:?}", results.iter().find(|r| !r.ok));
    for sku in ["S0", "S99", "S100", "S149"] {
        assert_eq!(fake.times_applied(sku), 2, "{sku}: price once, stock once, nothing twice");
    }
    let stats = fake.stats();
    assert_eq!((stats.price_calls, stats.stock_calls), (1, 2), "answered calls were not sent again");
    assert_eq!(stats.pair_limited, 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn test_wrong_key_is_fatal_naming_the_setting_not_the_value() {
    let fake = fake(Config::default()).await;
    let ozon = connector(&fake, "wrong-key-value");
    match ozon.push(&[item("A", Some(1), None, None)]).await {
        Err(ConnectorError::Fatal(message)) => {
            assert!(message.contains(API_KEY_SETTING), "{message}");
            assert!(!message.contains("wrong-key-value"), "{message}");
        }
        other => panic!("expected fatal, got {other:?}"),
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn test_orders_across_cursor_pages_and_after_a_restart() {
    let fake = fake(Config::default()).await;
    let now = meschain_model::clock::now_ms() as i64;
    fake.add_orders(250, now - 3_600_000, now - 1000);
    fake.add_orders(5, now - 30 * 86_400_000, now - 29 * 86_400_000);
    let ozon = connector(&fake, &fake.config().api_key.clone());
    let mut seen = std::collections::HashSet::new();
    let mut page = 0;
    loop {
        let p = ozon.orders(now - 7_200_000, now, page).await.unwrap();
        for o in &p.orders {
            assert!(seen.insert(o.package_id.clone()), "{} twice", o.package_id);
            assert!(!o.lines.is_empty());
        }
        page += 1;
        if page >= p.total_pages {
            break;
        }
    }
    assert_eq!(seen.len(), 250);
    // A new process asked for page 2 directly walks the cursors from the first page.
    let fresh = connector(&fake, &fake.config().api_key.clone());
    let p = fresh.orders(now - 7_200_000, now, 2).await.unwrap();
    assert_eq!(p.orders.len(), 50);
    assert_eq!(p.total_pages, 3);
    fake.shutdown().await;
}

/// Ozon's OpenAPI excerpt, prepared for JSON Schema validation: `pattern` values in this swagger
/// are format hints (`" YYYY-MM-DDThh:mm:ssZ"`, with a leading space), not regular expressions,
/// and the stocks item's `required` lists `product_id` and the undefined `quant_size` where
/// Ozon's own text makes `offer_id`/`product_id` one-of and `quant_size` optional.
fn ozon_openapi() -> Option<Value> {
    let text = std::fs::read_to_string(reference::openapi_file("ozon/ozon-seller-api-excerpt.json")?).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    fn strip_patterns(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if o.get("pattern").is_some_and(Value::is_string) {
                    o.remove("pattern");
                }
                o.values_mut().for_each(strip_patterns);
            }
            Value::Array(a) => a.iter_mut().for_each(strip_patterns),
            _ => {}
        }
    }
    strip_patterns(&mut doc);
    doc["components"]["schemas"]["productv2ProductsStocksRequestStock"]["required"] =
        serde_json::json!(["stock", "warehouse_id"]);
    Some(doc)
}

fn validate(doc: &Value, pointer: &str, instance: &Value) -> Result<(), String> {
    let mut root = doc.clone();
    root["$ref"] = Value::String(format!("#{pointer}"));
    let validator = jsonschema::draft4::new(&root).map_err(|e| format!("schema {pointer}: {e}"))?;
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("{pointer}: {}", errors.join("; "))) }
}

#[tokio::test]
async fn test_requests_and_answers_follow_ozons_openapi() {
    let Some(doc) = ozon_openapi() else { return };
    let fake = fake(Config::default()).await;
    let ozon = connector(&fake, &fake.config().api_key.clone());
    let mut items: Vec<SyncItem> =
        (0..120).map(|i| item(&format!("V{i}"), Some(i), Some("99.5"), Some("120"))).collect();
    items.push(item("UNKNOWN", Some(1), Some("1"), None));
    fake.know_items(&items[..120].iter().map(|i| i.barcode.clone()).collect::<Vec<_>>());
    completed(ozon.push(&items).await.unwrap());
    let now = meschain_model::clock::now_ms() as i64;
    fake.add_orders(120, now - 60_000, now - 1000);
    ozon.orders(now - 120_000, now, 0).await.unwrap();
    ozon.orders(now - 120_000, now, 1).await.unwrap();
    let exchanges = fake.exchanges();
    assert!(exchanges.len() >= 5, "{}", exchanges.len());
    let mut problems = Vec::new();
    for x in &exchanges {
        let path = x.path.replace('~', "~0").replace('/', "~1");
        let op = format!("/paths/{path}/post");
        let request = doc
            .pointer(&format!("{op}/requestBody/content/application~1json/schema/$ref"))
            .and_then(Value::as_str)
            .unwrap();
        let response = doc
            .pointer(&format!("{op}/responses/{}/content/application~1json/schema/$ref", x.status))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{} answered {}, which the spec does not declare", x.path, x.status));
        if let Err(e) = validate(&doc, request.trim_start_matches('#'), &x.request) {
            problems.push(format!("request {e}"));
        }
        if let Err(e) = validate(&doc, response.trim_start_matches('#'), &x.response) {
            problems.push(format!("answer {e}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // And the validation can fail: a price as a number is not Ozon's contract.
    let bad = serde_json::json!({ "prices": [{ "offer_id": "A", "price": 10 }] });
    assert!(validate(&doc, "/components/schemas/productImportProductsPricesRequest", &bad).is_err());
    fake.shutdown().await;
}
