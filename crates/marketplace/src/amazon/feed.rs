//! The pure part of the Amazon connector: the `JSON_LISTINGS_FEED` document it uploads, the
//! processing report it reads back, and the orders page it imports. No I/O, so each shape is
//! tested on its own (and the feed document against Amazon's published schema).
//!
//! Formats: <https://github.com/amzn/selling-partner-api-models> (`schemas/feeds/listings-feed-schema-v2.json`,
//! `listings-feed-processing-report-schema-v2.json`, `models/orders-api-model/orders_2026-01-01.json`).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::connector::{ItemResult, Order, OrderLine};
use crate::request::Item;
use meschain_model::money::Money;

/// Where the values go on a listing: an offer in one marketplace, in one currency.
#[derive(Debug, Clone)]
pub struct FeedTarget<'a> {
    pub seller_id: &'a str,
    pub marketplace_id: &'a str,
    pub currency: &'a str,
    pub product_type: &'a str,
}

/// A money value as JSON: a number, as the listings attribute schemas declare it. Written from
/// the decimal's shortest binary64 form, which prints back as the same digits for any price
/// with up to 15 significant digits.
fn amount(v: Money) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    v.to_f64().map_or(Value::Null, |f| json!(f))
}

/// The patches of one item: stock as `fulfillment_availability` (merchant-fulfilled; FBA stock
/// cannot be written), the sale price as the offer's `our_price`, the list price as the
/// `list_price` attribute. Each is `replace`: the values are absolute, so a repeated feed sets
/// the same values again.
fn patches(item: &Item, t: &FeedTarget<'_>) -> Vec<Value> {
    let mut patches = Vec::new();
    if let Some(q) = item.quantity {
        patches.push(json!({
            "op": "replace",
            "path": "/attributes/fulfillment_availability",
            "value": [{ "fulfillment_channel_code": "DEFAULT", "quantity": q }],
        }));
    }
    if let Some(price) = item.sale_price {
        patches.push(json!({
            "op": "replace",
            "path": "/attributes/purchasable_offer",
            "value": [{
                "marketplace_id": t.marketplace_id,
                "currency": t.currency,
                "audience": "ALL",
                "our_price": [{ "schedule": [{ "value_with_tax": amount(price) }] }],
            }],
        }));
    }
    if let Some(price) = item.list_price {
        // The `list_price` attribute's shape is the product-type definitions' (UNCONFIRMED here:
        // Amazon's examples only show our_price).
        patches.push(json!({
            "op": "replace",
            "path": "/attributes/list_price",
            "value": [{ "marketplace_id": t.marketplace_id, "currency": t.currency, "value_with_tax": amount(price) }],
        }));
    }
    patches
}

/// The feed document for `items`: message `i + 1` is `items[i]`, which is how the report's
/// `messageId`s map back to barcodes (the SKU). The report is asked to list the items it
/// processed (`includedData: issues`), so success is read per SKU, not inferred from counts.
/// Items with nothing to set are left out (the request validator does not let them through).
pub fn feed_document(items: &[Item], t: &FeedTarget<'_>) -> Value {
    let messages: Vec<Value> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let patches = patches(item, t);
            (!patches.is_empty()).then(|| {
                json!({
                    "messageId": i + 1,
                    "sku": item.barcode,
                    "operationType": "PATCH",
                    "productType": t.product_type,
                    "patches": patches,
                })
            })
        })
        .collect();
    json!({
        "header": {
            "sellerId": t.seller_id,
            "version": "2.0",
            "issueLocale": "en_US",
            "report": { "includedData": ["issues"], "apiVersion": "2021-08-01" },
        },
        "messages": messages,
    })
}

/// What a processing report says.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Per-item results (SKUs the report names; others are unconfirmed).
    Items(Vec<ItemResult>),
    /// The feed itself was refused (issues without a message): nothing maps to an item.
    FeedRefused(String),
}

/// Reads a processing report: an item failed when an `ERROR` issue names its message (or its
/// SKU), succeeded when the report lists it among the processed items with no such issue.
/// Warnings are kept as reasons only on failed items.
pub fn parse_report(body: &[u8]) -> Option<Report> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let issues = v.get("issues")?.as_array()?;
    let mut failed: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut feed_level = Vec::new();
    for issue in issues {
        let severity = issue.get("severity").and_then(Value::as_str).unwrap_or("");
        if severity != "ERROR" {
            continue;
        }
        let message = issue.get("message").and_then(Value::as_str).unwrap_or("").chars().take(300).collect::<String>();
        let code = issue.get("code").and_then(Value::as_str).unwrap_or("");
        let reason = if code.is_empty() { message } else { format!("{code}: {message}") };
        match issue.get("sku").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(sku) => {
                let at = *index.entry(sku.to_string()).or_insert_with(|| {
                    failed.push((sku.to_string(), Vec::new()));
                    failed.len() - 1
                });
                if failed[at].1.len() < 5 {
                    failed[at].1.push(reason);
                }
            }
            None => feed_level.push(reason),
        }
    }
    let mut results: Vec<ItemResult> = Vec::new();
    for item in v.get("items").and_then(Value::as_array).into_iter().flatten() {
        let Some(sku) = item.get("sku").and_then(Value::as_str) else { continue };
        if !index.contains_key(sku) {
            results.push(ItemResult { barcode: sku.to_string(), ok: true, reasons: Vec::new() });
        }
    }
    if results.is_empty() && failed.is_empty() && !feed_level.is_empty() {
        return Some(Report::FeedRefused(feed_level.into_iter().take(3).collect::<Vec<_>>().join("; ")));
    }
    results.extend(failed.into_iter().map(|(barcode, reasons)| ItemResult { barcode, ok: false, reasons }));
    Some(Report::Items(results))
}

/// One `searchOrders` page: the orders and the next page's token.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersPage {
    pub orders: Vec<Order>,
    pub next_token: Option<String>,
}

fn money(v: Option<&Value>) -> Option<(Money, String)> {
    let v = v?;
    // Amazon's `Decimal` is a string; a number is accepted too.
    let amount = meschain_model::money::from_json(v.get("amount")?)?;
    let currency = v.get("currencyCode").and_then(Value::as_str).unwrap_or("").to_string();
    Some((amount, currency))
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Reads a `SearchOrdersResponse`. An order missing a required field is skipped rather than
/// failing the page (the rest are still imported); `None` when the page itself is unreadable.
pub fn parse_orders(body: &[u8], default_currency: &str) -> Option<OrdersPage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let orders = v.get("orders")?.as_array()?;
    let next_token = v
        .get("pagination")
        .and_then(|p| p.get("nextToken"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let mut out = Vec::with_capacity(orders.len());
    for o in orders {
        let Some(id) = o.get("orderId").and_then(Value::as_str) else { continue };
        let Some(modified) = o.get("lastUpdatedTime").and_then(Value::as_str).and_then(rfc3339_ms) else { continue };
        let mut lines = Vec::new();
        let mut lines_total = Money::ZERO;
        let mut line_currency = None;
        for item in o.get("orderItems").and_then(Value::as_array).into_iter().flatten() {
            let product = item.get("product");
            let sku = product.and_then(|p| p.get("sellerSku")).and_then(Value::as_str).unwrap_or("");
            let quantity = item.get("quantityOrdered").and_then(Value::as_u64).unwrap_or(0).min(u64::from(u32::MAX));
            let unit = money(product.and_then(|p| p.get("price")).and_then(|p| p.get("unitPrice")));
            let unit_price = unit.as_ref().map_or(Money::ZERO, |(a, _)| *a);
            if let Some((_, c)) = unit
                && !c.is_empty()
            {
                line_currency.get_or_insert(c);
            }
            lines_total += unit_price * Money::from(quantity);
            lines.push(OrderLine { barcode: sku.to_string(), quantity: quantity as u32, unit_price });
        }
        let grand = money(o.get("proceeds").and_then(|p| p.get("grandTotal")));
        let (total, currency) = match grand {
            Some((amount, currency)) if !currency.is_empty() => (amount, currency),
            Some((amount, _)) => (amount, line_currency.unwrap_or_else(|| default_currency.to_string())),
            None => (lines_total, line_currency.unwrap_or_else(|| default_currency.to_string())),
        };
        let status = o
            .get("fulfillment")
            .and_then(|f| f.get("fulfillmentStatus"))
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_string();
        out.push(Order {
            package_id: id.to_string(),
            order_number: id.to_string(),
            status,
            total,
            currency,
            last_modified: modified,
            lines,
        });
    }
    Some(OrdersPage { orders: out, next_token })
}

/// An SP-API `ErrorList` as one short line (`code: message (details)`, at most three).
pub fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    };
    let parts: Vec<String> = v
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(3)
        .map(|e| {
            let code = e.get("code").and_then(Value::as_str).unwrap_or("");
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            match e.get("details").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                Some(d) => format!("{code}: {message} ({d})"),
                None => format!("{code}: {message}"),
            }
        })
        .collect();
    let text = parts.join("; ");
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> FeedTarget<'static> {
        FeedTarget { seller_id: "A2SELLER", marketplace_id: "A33AVAJ2PDY3EV", currency: "TRY", product_type: "PRODUCT" }
    }

    fn item(barcode: &str, quantity: Option<u32>, sale: Option<f64>, list: Option<f64>) -> Item {
        let money = |v: f64| Money::from_f64_retain(v).map(|m| m.round_dp(2));
        Item { barcode: barcode.into(), quantity, sale_price: sale.and_then(money), list_price: list.and_then(money) }
    }

    #[test]
    fn test_feed_document_messages_map_to_positions() {
        let items = [item("A", Some(3), None, None), item("B", None, Some(19.9), Some(25.0))];
        let doc = feed_document(&items, &target());
        assert_eq!(doc["header"]["sellerId"], "A2SELLER");
        assert_eq!(doc["header"]["version"], "2.0");
        let m = doc["messages"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0]["messageId"].as_u64(), m[0]["sku"].as_str()), (Some(1), Some("A")));
        assert_eq!(m[0]["patches"][0]["value"][0]["quantity"], 3);
        assert_eq!(m[1]["messageId"], 2);
        assert_eq!(m[1]["patches"][0]["value"][0]["our_price"][0]["schedule"][0]["value_with_tax"], 19.9);
        assert_eq!(m[1]["patches"][0]["value"][0]["currency"], "TRY");
        assert_eq!(m[1]["patches"][1]["path"], "/attributes/list_price");
    }

    #[test]
    fn test_report_items_and_issues() {
        let body = br#"{"header":{"sellerId":"S","version":"2.0","feedId":"1"},
            "issues":[{"messageId":2,"sku":"B","code":"90220","severity":"ERROR","message":"bad"},
                      {"messageId":1,"sku":"A","code":"1","severity":"WARNING","message":"meh"}],
            "summary":{"errors":1,"warnings":1,"messagesProcessed":3,"messagesAccepted":2,"messagesInvalid":1},
            "items":[{"sku":"A"},{"sku":"B"},{"sku":"C"}]}"#;
        let Some(Report::Items(r)) = parse_report(body) else { panic!() };
        assert_eq!(r.len(), 3);
        assert!(r.iter().any(|x| x.barcode == "A" && x.ok));
        assert!(r.iter().any(|x| x.barcode == "C" && x.ok));
        let b = r.iter().find(|x| x.barcode == "B").unwrap();
        assert!(!b.ok);
        assert_eq!(b.reasons, vec!["90220: bad".to_string()]);
    }

    #[test]
    fn test_report_feed_level_refusal_and_garbage() {
        let body = br#"{"header":{"sellerId":"S","version":"2.0","feedId":"1"},
            "issues":[{"code":"4000001","severity":"ERROR","message":"The feed is not valid JSON."}],
            "summary":{"errors":1,"warnings":0,"messagesProcessed":0,"messagesAccepted":0,"messagesInvalid":0}}"#;
        assert_eq!(parse_report(body), Some(Report::FeedRefused("4000001: The feed is not valid JSON.".into())));
        assert_eq!(parse_report(b"<html>"), None);
        assert_eq!(parse_report(b"{}"), None);
    }

    #[test]
    fn test_orders_page() {
        let body = br#"{"orders":[
            {"orderId":"171-1","createdTime":"2026-12-01T10:00:00Z","lastUpdatedTime":"2026-12-01T10:05:00Z",
             "salesChannel":{"channelName":"AMAZON"},"fulfillment":{"fulfillmentStatus":"UNSHIPPED"},
             "proceeds":{"grandTotal":{"amount":"250.50","currencyCode":"TRY"}},
             "orderItems":[{"orderItemId":"1","quantityOrdered":2,"product":{"sellerSku":"S1","price":{"unitPrice":{"amount":"125.25","currencyCode":"TRY"}}}}]},
            {"orderId":"171-2","createdTime":"2026-12-01T10:00:00Z","lastUpdatedTime":"2026-12-01T11:00:00.500Z",
             "salesChannel":{"channelName":"AMAZON"},
             "orderItems":[{"orderItemId":"1","quantityOrdered":1,"product":{"sellerSku":"S2","price":{"unitPrice":{"amount":"10","currencyCode":"EUR"}}}}]},
            {"orderId":"no-time","orderItems":[]}],
            "pagination":{"nextToken":"tok"}}"#;
        let page = parse_orders(body, "TRY").unwrap();
        assert_eq!(page.next_token.as_deref(), Some("tok"));
        assert_eq!(page.orders.len(), 2, "an order without lastUpdatedTime is skipped");
        assert_eq!(page.orders[0].total, Money::new(2505, 1));
        assert_eq!(page.orders[0].status, "UNSHIPPED");
        assert_eq!(page.orders[0].lines[0].quantity, 2);
        assert_eq!(page.orders[1].total, Money::new(10, 0));
        assert_eq!(page.orders[1].currency, "EUR");
        assert_eq!(page.orders[1].last_modified % 1000, 500);
        assert_eq!(parse_orders(br#"{"orders":[]}"#, "TRY").unwrap().next_token, None);
    }

    #[test]
    fn test_error_text() {
        let body = br#"{"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":"The access token you provided has expired."}]}"#;
        assert_eq!(
            error_text(body),
            "Unauthorized: Access to requested resource is denied. (The access token you provided has expired.)"
        );
    }
}
