//! The eBay connector against this fake: the documented contract both ways, and every request
//! the connector sent and every answer the fake gave checked against eBay's own OpenAPI files
//! (`../shared/reference/openapi/ebay/`, beside the repository).

#[path = "../../marketplace/tests/support/reference.rs"]
mod reference;

use std::time::Duration;

use meschain_fake_ebay::{Config, FakeEbay, Faults};
use meschain_marketplace::connector::{Connector, ConnectorError, ItemResult, PushOutcome};
use meschain_marketplace::ebay::{
    BASE_URL_SETTING, CLIENT_ID_SETTING, CLIENT_SECRET_SETTING, Ebay, EbayConfig, REFRESH_TOKEN_SETTING,
};
use meschain_model::marketplace::SyncItem;
use serde_json::Value;

async fn fake(config: Config) -> FakeEbay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_ebay::start(config, listener).await.unwrap()
}

fn connector(fake: &FakeEbay, refresh_token: &str) -> Ebay {
    let c = fake.config();
    let settings = [
        (BASE_URL_SETTING, fake.base_url()),
        (CLIENT_ID_SETTING, c.client_id.clone()),
        (CLIENT_SECRET_SETTING, c.client_secret.clone()),
        (REFRESH_TOKEN_SETTING, refresh_token.to_string()),
    ];
    let get = move |k: &str| settings.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    Ebay::new(EbayConfig::from_settings(&get).unwrap(), reqwest::Client::new())
}

fn item(sku: &str, quantity: Option<u32>, sale: Option<&str>) -> SyncItem {
    SyncItem { barcode: sku.into(), quantity, sale_price: sale.map(|s| s.parse().unwrap()), list_price: None }
}

fn completed(outcome: PushOutcome) -> Vec<ItemResult> {
    match outcome {
        PushOutcome::Completed(results) => results,
        other => panic!("expected per-item results, got {other:?}"),
    }
}

#[tokio::test]
async fn test_push_looks_up_offers_once_and_reports_each_item() {
    let fake = fake(Config::default()).await;
    let ebay = connector(&fake, &fake.config().refresh_token.clone());
    let items: Vec<SyncItem> = (0..500).map(|i| item(&format!("SKU-{i:04}"), Some(i % 40), Some("19.99"))).collect();
    fake.know_items(&items[..499].iter().map(|i| i.barcode.clone()).collect::<Vec<_>>());
    fake.refuse_item("SKU-0003");
    let results = completed(ebay.push(&items).await.unwrap());
    assert_eq!(results.len(), 500);
    let failed: Vec<&ItemResult> = results.iter().filter(|r| !r.ok).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].barcode == "SKU-0003" && failed[0].reasons[0].contains("25002"), "{failed:?}");
    assert!(failed[1].barcode == "SKU-0499" && failed[1].reasons[0].contains("no published offer"), "{failed:?}");
    assert_eq!(fake.stock("SKU-0041"), Some(1));
    let stats = fake.stats();
    assert_eq!((stats.bulk_calls, stats.largest_bulk_call), (20, 25), "25 SKUs per call");
    assert_eq!(stats.offer_lookups, 500);
    assert_eq!(stats.tokens_issued, 1);
    // A second push of known SKUs looks nothing up again.
    let again: Vec<SyncItem> = (0..50).map(|i| item(&format!("SKU-{i:04}"), Some(7), None)).collect();
    completed(ebay.push(&again).await.unwrap());
    assert_eq!(fake.stats().offer_lookups, 500);
    fake.shutdown().await;
}

#[tokio::test]
async fn test_expired_token_is_refreshed_once() {
    let fake = fake(Config::default()).await;
    let ebay = connector(&fake, &fake.config().refresh_token.clone());
    fake.know_items(&["A".to_string()]);
    assert!(completed(ebay.push(&[item("A", Some(1), None)]).await.unwrap())[0].ok);
    fake.expire_tokens();
    assert!(completed(ebay.push(&[item("A", Some(2), None)]).await.unwrap())[0].ok);
    let stats = fake.stats();
    assert_eq!((stats.tokens_issued, stats.rejected_tokens), (2, 1));
    assert_eq!(fake.stock("A"), Some(2));
    fake.shutdown().await;
}

#[tokio::test]
async fn test_wrong_refresh_token_is_fatal_naming_the_setting_not_the_value() {
    let fake = fake(Config::default()).await;
    let ebay = connector(&fake, "v^1.1#wrong-refresh-value");
    match ebay.push(&[item("A", Some(1), None)]).await {
        Err(ConnectorError::Fatal(message)) => {
            assert!(message.contains(REFRESH_TOKEN_SETTING), "{message}");
            assert!(!message.contains("wrong-refresh-value"), "{message}");
        }
        other => panic!("expected fatal, got {other:?}"),
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn test_throttling_and_5xx_are_transient_and_answered_calls_are_not_resent() {
    let fake = fake(Config::default()).await;
    let ebay = connector(&fake, &fake.config().refresh_token.clone());
    let items: Vec<SyncItem> = (0..50).map(|i| item(&format!("S{i}"), Some(3), Some("5.00"))).collect();
    fake.know_items(&items.iter().map(|i| i.barcode.clone()).collect::<Vec<_>>());
    fake.throttle_pushes(1, 2);
    match ebay.push(&items).await {
        Err(ConnectorError::Transient { retry_after, reason }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
            assert!(reason.contains("2001"), "{reason}");
        }
        other => panic!("expected a 429 wait, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Of the two calls sent together, one got the 429 and the other was answered (and is not sent
    // again); the unanswered one now gets a 500, then goes through.
    assert_eq!(fake.stats().bulk_calls, 1);
    fake.inject(Faults { push: vec![500], ..Default::default() });
    assert!(matches!(ebay.push(&items).await, Err(ConnectorError::Transient { .. })));
    let results = completed(ebay.push(&items).await.unwrap());
    assert!(results.iter().all(|r| r.ok));
    assert_eq!(fake.stats().applied_more_than_once, 0, "the answered call was not sent again");
    assert_eq!(fake.times_applied("S0"), 1);
    assert_eq!(fake.times_applied("S49"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn test_daily_revisions_are_kept_before_ebay_refuses() {
    let fake = fake(Config::default()).await;
    let ebay = connector(&fake, &fake.config().refresh_token.clone());
    fake.know_items(&["R".to_string()]);
    for n in 0..250 {
        let results = completed(ebay.push(&[item("R", Some(n), None)]).await.unwrap());
        assert!(results[0].ok, "revision {n}: {results:?}");
    }
    let results = completed(ebay.push(&[item("R", Some(999), None)]).await.unwrap());
    assert!(!results[0].ok);
    assert!(results[0].reasons[0].contains("250 revisions"), "{:?}", results[0].reasons);
    assert_eq!(fake.stats().revision_limited, 0, "eBay never had to refuse");
    assert_eq!(fake.stock("R"), Some(249));
    fake.shutdown().await;
}

#[tokio::test]
async fn test_orders_across_pages() {
    let fake = fake(Config::default()).await;
    let now = meschain_model::clock::now_ms() as i64;
    fake.add_orders(450, now - 3_600_000, now - 1000);
    fake.add_orders(10, now - 10 * 86_400_000, now - 9 * 86_400_000);
    let ebay = connector(&fake, &fake.config().refresh_token.clone());
    let mut seen = std::collections::HashSet::new();
    let first = ebay.orders(now - 7_200_000, now, 0).await.unwrap();
    assert_eq!((first.total_pages, first.total_orders), (3, 450));
    for page in 0..first.total_pages {
        for o in ebay.orders(now - 7_200_000, now, page).await.unwrap().orders {
            assert!(seen.insert(o.package_id.clone()), "{} twice", o.package_id);
            assert_eq!(o.lines.len(), 1);
        }
    }
    assert_eq!(seen.len(), 450);
    fake.shutdown().await;
}

fn shared_file(name: &str) -> Option<String> {
    reference::openapi_file(&format!("ebay/{name}")).map(|p| std::fs::read_to_string(p).unwrap())
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
async fn test_requests_and_answers_follow_ebays_openapi() {
    let (Some(inventory), Some(fulfillment)) =
        (shared_file("sell_inventory_v1_oas3.json"), shared_file("sell_fulfillment_v1_oas3.yaml"))
    else {
        return;
    };
    let inventory: Value = serde_json::from_str(&inventory).unwrap();
    let fulfillment: Value = serde_yaml::from_str(&fulfillment).unwrap();
    let fake = fake(Config::default()).await;
    let ebay = connector(&fake, &fake.config().refresh_token.clone());
    let items: Vec<SyncItem> = (0..30).map(|i| item(&format!("V{i}"), Some(i), Some("12.50"))).collect();
    fake.know_items(&items[..29].iter().map(|i| i.barcode.clone()).collect::<Vec<_>>());
    fake.refuse_item("V1");
    completed(ebay.push(&items).await.unwrap());
    let now = meschain_model::clock::now_ms() as i64;
    fake.add_orders(5, now - 60_000, now - 1000);
    ebay.orders(now - 120_000, now, 0).await.unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for x in fake.exchanges() {
        let (doc, request, response) = match (x.method, x.path.as_str(), x.status) {
            ("POST", "/sell/inventory/v1/bulk_update_price_quantity", 200 | 207) => {
                // 207 declares no schema; its body is the same BulkPriceQuantityResponse.
                (
                    &inventory,
                    Some("/components/schemas/BulkPriceQuantity"),
                    Some("/components/schemas/BulkPriceQuantityResponse"),
                )
            }
            ("GET", "/sell/inventory/v1/offer", 200) => (&inventory, None, Some("/components/schemas/Offers")),
            ("GET", "/sell/inventory/v1/offer", 404) => (&inventory, None, Some("/components/schemas/ErrorDetailV3")),
            ("GET", "/sell/fulfillment/v1/order", 200) => {
                (&fulfillment, None, Some("/components/schemas/OrderSearchPagedCollection"))
            }
            other => panic!("unexpected exchange {other:?}"),
        };
        if let Some(p) = request
            && let Err(e) = validate(doc, p, &x.request)
        {
            problems.push(format!("request {e}"));
        }
        if let Some(p) = response {
            let p = if doc.pointer(p).is_some() { p } else { "/components/schemas/Error" };
            let target = if p.ends_with("/Error") { &x.response["errors"][0] } else { &x.response };
            if let Err(e) = validate(doc, p, target) {
                problems.push(format!("answer {e}"));
            }
        }
        checked += 1;
    }
    assert!(checked >= 32, "{checked}");
    assert!(problems.is_empty(), "{problems:#?}");
    let bad = serde_json::json!({ "requests": [{ "sku": "A", "offers": [{ "offerId": "1", "price": { "value": 12.5, "currency": "USD" } }] }] });
    assert!(
        validate(&inventory, "/components/schemas/BulkPriceQuantity", &bad).is_err(),
        "a price as a number is not eBay's contract"
    );
    fake.shutdown().await;
}
