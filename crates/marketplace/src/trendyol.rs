//! Trendyol's seller API (`shared/reference/marketplaces.md` §1): stock and price push, batch
//! results, orders.
//!
//! Every request carries Basic auth (API key : API secret) and the required
//! `User-Agent: {sellerId} - {integrator}`. Each endpoint has its own limiter (50 requests per
//! 10 s per endpoint). Statuses map to what the engine can act on: 429/5xx/timeouts are
//! transient (a 429's `Retry-After` also pauses the endpoint), 401/403/404 are fatal for the
//! sync (retrying bad credentials only gets the seller locked out), the 15-minute duplicate
//! rejection means "already accepted", any other 400 rejects the batch. Error bodies are parsed
//! leniently: `exception`, `errors[]` and `message` may each be absent.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use meschain_model::money::{self, Money};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, OrderLine, OrdersPage, PushOutcome};
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::request::Item;

pub const BASE_URL_SETTING: &str = meschain_model::settings::TRENDYOL_BASE_URL;
pub const SELLER_ID_SETTING: &str = meschain_model::settings::TRENDYOL_SELLER_ID;
pub const API_KEY_SETTING: &str = meschain_model::settings::TRENDYOL_API_KEY;
pub const API_SECRET_SETTING: &str = meschain_model::settings::TRENDYOL_API_SECRET;
pub const INTEGRATOR_SETTING: &str = meschain_model::settings::TRENDYOL_INTEGRATOR;
/// `N/SECONDS` per endpoint; default Trendyol's documented 50/10.
pub const RATE_LIMIT_SETTING: &str = meschain_model::settings::TRENDYOL_RATE_LIMIT;
/// Pushes in flight at once; default 4.
pub const CONCURRENCY_SETTING: &str = meschain_model::settings::TRENDYOL_CONCURRENCY;

pub const DEFAULT_BASE_URL: &str = "https://apigw.trendyol.com/integration";
pub const DEFAULT_INTEGRATOR: &str = "SelfIntegration";
/// Documented: at most 1,000 items per stock/price request.
pub const MAX_ITEMS: usize = 1000;
/// Documented: at most 200 packages per orders page.
pub const ORDERS_PAGE_SIZE: u32 = 200;
const DEFAULT_CONCURRENCY: usize = 4;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read (a 1,000-item batch result is about 300 KB).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// The message of the 15-minute identical-request rejection.
const DUPLICATE_MARKER: &str = "15 dakika";

/// Trendyol's settings. `Debug` never shows the API key or secret.
#[derive(Clone)]
pub struct TrendyolConfig {
    pub base_url: url::Url,
    pub seller_id: String,
    pub api_key: String,
    pub api_secret: String,
    pub integrator: String,
    pub rate_limit: RateLimit,
    pub concurrency: usize,
}

impl fmt::Debug for TrendyolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrendyolConfig")
            .field("base_url", &self.base_url.as_str())
            .field("seller_id", &self.seller_id)
            .field("api_key", &"<redacted>")
            .field("api_secret", &"<redacted>")
            .field("integrator", &self.integrator)
            .field("rate_limit", &self.rate_limit)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl TrendyolConfig {
    /// Whether any credential setting is given (then the live connector is meant).
    pub fn configured(get: &dyn Fn(&str) -> Option<String>) -> bool {
        [SELLER_ID_SETTING, API_KEY_SETTING, API_SECRET_SETTING]
            .iter()
            .any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
    }

    /// Reads the `TRENDYOL_*` settings; every problem is reported at once.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();
        let base = get(BASE_URL_SETTING).unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let base_url = match url::Url::parse(base.trim_end_matches('/')) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                problems.push(format!("{BASE_URL_SETTING} must be an http(s) URL"));
                None
            }
        };
        let seller_id = get(SELLER_ID_SETTING).unwrap_or_default();
        if seller_id.is_empty() || !seller_id.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(format!("{SELLER_ID_SETTING} must be the numeric seller id"));
        }
        let api_key = get(API_KEY_SETTING).unwrap_or_default();
        if api_key.is_empty() {
            problems.push(format!("{API_KEY_SETTING} is required"));
        }
        let api_secret = get(API_SECRET_SETTING).unwrap_or_default();
        if api_secret.is_empty() {
            problems.push(format!("{API_SECRET_SETTING} is required"));
        }
        let integrator = get(INTEGRATOR_SETTING).unwrap_or_else(|| DEFAULT_INTEGRATOR.into());
        if !(1..=30).contains(&integrator.len()) || !integrator.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push(format!("{INTEGRATOR_SETTING} must be 1-30 letters or digits (Trendyol's User-Agent rule)"));
        }
        let rate_limit = match get(RATE_LIMIT_SETTING) {
            None => RateLimit::TRENDYOL,
            Some(s) => RateLimit::parse(&s).unwrap_or_else(|e| {
                problems.push(format!("{RATE_LIMIT_SETTING}: {e}"));
                RateLimit::TRENDYOL
            }),
        };
        let concurrency = match get(CONCURRENCY_SETTING) {
            None => DEFAULT_CONCURRENCY,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=16).contains(&n) => n,
                _ => {
                    problems.push(format!("{CONCURRENCY_SETTING} must be 1-16"));
                    DEFAULT_CONCURRENCY
                }
            },
        };
        match base_url {
            Some(base_url) if problems.is_empty() => {
                Ok(TrendyolConfig { base_url, seller_id, api_key, api_secret, integrator, rate_limit, concurrency })
            }
            _ => Err(format!("trendyol connector: {}", problems.join("; "))),
        }
    }
}

/// The live Trendyol connector.
pub struct Trendyol {
    http: reqwest::Client,
    base: String,
    seller_id: String,
    headers: HeaderMap,
    concurrency: usize,
    push_limit: RateLimiter,
    results_limit: RateLimiter,
    orders_limit: RateLimiter,
}

impl Trendyol {
    pub fn new(config: TrendyolConfig, http: reqwest::Client) -> Self {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", config.api_key, config.api_secret));
        let mut auth = HeaderValue::from_str(&format!("Basic {credentials}")).expect("base64 is a valid header value");
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        // Checked in from_settings: digits and alphanumerics are valid header characters.
        let ua = format!("{} - {}", config.seller_id, config.integrator);
        headers.insert(header::USER_AGENT, HeaderValue::from_str(&ua).expect("checked user agent"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        Trendyol {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            seller_id: config.seller_id,
            headers,
            concurrency: config.concurrency,
            push_limit: RateLimiter::new(config.rate_limit),
            results_limit: RateLimiter::new(config.rate_limit),
            orders_limit: RateLimiter::new(config.rate_limit),
        }
    }

    /// Sends one request under `limiter`; returns status and body, or the transient/fatal error.
    async fn send(
        &self,
        limiter: &RateLimiter,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        limiter.acquire().await;
        let response = request.headers(self.headers.clone()).timeout(REQUEST_TIMEOUT).send().await.map_err(|e| {
            // reqwest's Display includes the URL, which holds no secret here (ids only).
            let kind = if e.is_timeout() { "timed out" } else { "failed" };
            ConnectorError::transient(format!("trendyol {what} {kind}: {e}"))
        })?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body =
            read_capped(response).await.map_err(|e| ConnectorError::transient(format!("trendyol {what}: {e}")))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limiter.pause_for(retry_after.unwrap_or(Duration::from_secs(1))).await;
            return Err(ConnectorError::Transient {
                reason: format!("trendyol {what}: 429 too many requests"),
                retry_after,
            });
        }
        if status.is_server_error() {
            return Err(ConnectorError::Transient {
                reason: format!("trendyol {what}: HTTP {} {}", status.as_u16(), error_text(&body)),
                retry_after,
            });
        }
        match status {
            StatusCode::UNAUTHORIZED => Err(ConnectorError::Fatal(format!(
                "trendyol {what}: 401 {} (check {API_KEY_SETTING} and {API_SECRET_SETTING})",
                error_text(&body)
            ))),
            StatusCode::FORBIDDEN => Err(ConnectorError::Fatal(format!(
                "trendyol {what}: 403 {} (check {SELLER_ID_SETTING} and {INTEGRATOR_SETTING}, the User-Agent)",
                error_text(&body)
            ))),
            _ => Ok((status, body)),
        }
    }
}

#[async_trait]
impl Connector for Trendyol {
    fn max_batch(&self) -> usize {
        MAX_ITEMS
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        if items.len() > MAX_ITEMS {
            return Err(ConnectorError::Fatal(format!("trendyol push: {} items, at most {MAX_ITEMS}", items.len())));
        }
        let url = format!("{}/inventory/sellers/{}/products/price-and-inventory", self.base, self.seller_id);
        let body = serde_json::to_vec(&json!({ "items": items })).expect("items serialize");
        let request = self.http.post(url).header(header::CONTENT_TYPE, "application/json").body(body);
        let (status, body) = self.send(&self.push_limit, "push", request).await?;
        match status {
            StatusCode::OK => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match v.get("batchRequestId").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => Ok(PushOutcome::Accepted { receipt: id.to_string() }),
                    _ => Err(ConnectorError::transient("trendyol push: 200 without a batchRequestId")),
                }
            }
            StatusCode::NOT_FOUND => Err(ConnectorError::Fatal(format!(
                "trendyol push: 404 request URL is invalid (check {BASE_URL_SETTING})"
            ))),
            s if s.is_client_error() => {
                let text = error_text(&body);
                if text.contains(DUPLICATE_MARKER) {
                    Ok(PushOutcome::AlreadyAccepted)
                } else {
                    Ok(PushOutcome::Rejected { reason: format!("HTTP {} {text}", s.as_u16()) })
                }
            }
            s => Err(ConnectorError::transient(format!("trendyol push: unexpected HTTP {}", s.as_u16()))),
        }
    }

    async fn batch_result(&self, receipt: &str) -> Result<BatchStatus, ConnectorError> {
        let id: String = url::form_urlencoded::byte_serialize(receipt.as_bytes()).collect();
        let url = format!("{}/product/sellers/{}/products/batch-requests/{id}", self.base, self.seller_id);
        let (status, body) = self.send(&self.results_limit, "batch result", self.http.get(url)).await?;
        match status {
            StatusCode::OK => Ok(parse_batch_result(&body)),
            // Right after a push the batch may not be visible yet; the engine bounds the polls.
            StatusCode::NOT_FOUND => Ok(BatchStatus::InProgress),
            s => {
                Err(ConnectorError::Fatal(format!("trendyol batch result: HTTP {} {}", s.as_u16(), error_text(&body))))
            }
        }
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        let url = format!("{}/order/sellers/{}/orders", self.base, self.seller_id);
        let query = [
            ("startDate", from_ms.to_string()),
            ("endDate", to_ms.to_string()),
            ("page", page.to_string()),
            ("size", ORDERS_PAGE_SIZE.to_string()),
            ("orderByField", "PackageLastModifiedDate".to_string()),
            ("orderByDirection", "ASC".to_string()),
        ];
        let (status, body) = self.send(&self.orders_limit, "orders", self.http.get(url).query(&query)).await?;
        if status != StatusCode::OK {
            return Err(ConnectorError::Fatal(format!(
                "trendyol orders: HTTP {} {}",
                status.as_u16(),
                error_text(&body)
            )));
        }
        parse_orders(&body).ok_or_else(|| ConnectorError::transient("trendyol orders: unreadable page"))
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the response failed: {e}"))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A short description of an error body, from whichever of Trendyol's shapes it has.
pub fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(e) = v.get("exception").and_then(Value::as_str) {
        parts.push(e.to_string());
    }
    for e in v.get("errors").and_then(Value::as_array).into_iter().flatten().take(5) {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        parts.push(if key.is_empty() { message.to_string() } else { format!("{key}: {message}") });
    }
    for field in ["error", "message"] {
        if let Some(m) = v.get(field).and_then(Value::as_str) {
            parts.push(m.to_string());
        }
    }
    let mut text = parts.join("; ");
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

/// Reads a batch result: done only when every item has a final status (stock/price batches
/// carry no batch-level status, and `COMPLETED` would not mean every item succeeded anyway).
pub fn parse_batch_result(body: &[u8]) -> BatchStatus {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return BatchStatus::InProgress;
    };
    let items = v.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let expected = v.get("itemCount").and_then(Value::as_u64).unwrap_or(items.len() as u64);
    if items.is_empty() || (items.len() as u64) < expected {
        return BatchStatus::InProgress;
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let ok = match item.get("status").and_then(Value::as_str) {
            Some("SUCCESS") => true,
            Some("FAILED") => false,
            _ => return BatchStatus::InProgress,
        };
        let barcode = item.pointer("/requestItem/barcode").and_then(Value::as_str).unwrap_or("").to_string();
        let reasons = item
            .get("failureReasons")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        results.push(ItemResult { barcode, ok, reasons });
    }
    BatchStatus::Done(results)
}

/// Reads an orders page (field names as renamed on 08.12.2025; the old ones as fallback).
pub fn parse_orders(body: &[u8]) -> Option<OrdersPage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let num = |o: &Value, keys: &[&str]| keys.iter().find_map(|k| o.get(*k).and_then(money::from_json));
    let text = |o: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| o.get(*k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())))
            .unwrap_or_default()
    };
    let orders = v
        .get("content")?
        .as_array()?
        .iter()
        .map(|p| Order {
            package_id: text(p, &["shipmentPackageId", "id"]),
            order_number: text(p, &["orderNumber"]),
            status: text(p, &["status", "shipmentPackageStatus"]),
            total: num(p, &["packageTotalPrice", "totalPrice"]).unwrap_or(Money::ZERO),
            currency: p.get("currencyCode").and_then(Value::as_str).unwrap_or("TRY").to_string(),
            last_modified: p.get("lastModifiedDate").and_then(Value::as_i64).unwrap_or(0),
            lines: p
                .get("lines")
                .and_then(Value::as_array)
                .map(|lines| {
                    lines
                        .iter()
                        .map(|l| OrderLine {
                            barcode: text(l, &["barcode", "stockCode", "merchantSku"]),
                            quantity: l.get("quantity").and_then(Value::as_u64).unwrap_or(1) as u32,
                            unit_price: num(l, &["lineUnitPrice", "price"]).unwrap_or(Money::ZERO),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Some(OrdersPage {
        orders,
        total_pages: v.get("totalPages").and_then(Value::as_u64).unwrap_or(0) as u32,
        total_orders: v.get("totalElements").and_then(Value::as_u64).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn test_config_defaults_and_redaction() {
        let get = settings(&[(SELLER_ID_SETTING, "1234"), (API_KEY_SETTING, "key-1"), (API_SECRET_SETTING, "s3cret")]);
        let c = TrendyolConfig::from_settings(&get).unwrap();
        assert_eq!(c.base_url.as_str(), "https://apigw.trendyol.com/integration");
        assert_eq!(c.integrator, "SelfIntegration");
        assert_eq!(c.rate_limit, RateLimit::TRENDYOL);
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("key-1"), "{debug}");
    }

    #[test]
    fn test_config_reports_every_problem() {
        let get = settings(&[
            (SELLER_ID_SETTING, "12a"),
            (INTEGRATOR_SETTING, "Bad Name"),
            (RATE_LIMIT_SETTING, "fast"),
            (BASE_URL_SETTING, "ftp://x"),
        ]);
        let err = TrendyolConfig::from_settings(&get).unwrap_err();
        for needle in [
            SELLER_ID_SETTING,
            API_KEY_SETTING,
            API_SECRET_SETTING,
            INTEGRATOR_SETTING,
            RATE_LIMIT_SETTING,
            BASE_URL_SETTING,
        ] {
            assert!(err.contains(needle), "{needle} missing: {err}");
        }
    }

    #[test]
    fn test_retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
    }

    #[test]
    fn test_error_text_shapes() {
        assert_eq!(
            error_text(br#"{"exception":"ClientApiAuthenticationException"}"#),
            "ClientApiAuthenticationException"
        );
        assert_eq!(
            error_text(br#"{"errors":[{"key":"invalid.barcode","message":"Barkod","errorCode":"400"}]}"#),
            "invalid.barcode: Barkod"
        );
        assert_eq!(error_text(br#"{"error":"x","message":"y"}"#), "x; y");
        assert_eq!(error_text(b"<html>"), "<html>");
    }

    #[test]
    fn test_batch_result_done_only_when_every_item_is_final() {
        let done = br#"{"items":[{"requestItem":{"barcode":"a"},"status":"SUCCESS","failureReasons":[]},
            {"requestItem":{"barcode":"b"},"status":"FAILED","failureReasons":["no product"]}],"itemCount":2}"#;
        let BatchStatus::Done(r) = parse_batch_result(done) else { panic!("done expected") };
        assert_eq!(r[1], ItemResult { barcode: "b".into(), ok: false, reasons: vec!["no product".into()] });
        let partial = br#"{"items":[{"requestItem":{"barcode":"a"},"status":"SUCCESS"}],"itemCount":2}"#;
        assert_eq!(parse_batch_result(partial), BatchStatus::InProgress);
        let in_progress = br#"{"items":[{"requestItem":{"barcode":"a"},"status":"IN_PROGRESS"}]}"#;
        assert_eq!(parse_batch_result(in_progress), BatchStatus::InProgress);
    }

    #[test]
    fn test_orders_page_new_and_old_names() {
        let body = br#"{"totalElements":2,"totalPages":1,"page":0,"size":200,"content":[
            {"shipmentPackageId":11,"orderNumber":"A","packageTotalPrice":12.5,"status":"Created","lines":[{"barcode":"x","quantity":2,"lineUnitPrice":6.25}]},
            {"id":12,"orderNumber":"B","totalPrice":3,"lines":[{"merchantSku":"y","price":3}]}]}"#;
        let page = parse_orders(body).unwrap();
        assert_eq!(page.total_orders, 2);
        assert_eq!(page.orders[0].package_id, "11");
        assert_eq!(page.orders[0].lines[0].quantity, 2);
        assert_eq!(page.orders[1].total, Money::from(3));
        assert_eq!(page.orders[1].lines[0].barcode, "y");
        assert_eq!(page.orders[1].currency, "TRY");
    }
}
