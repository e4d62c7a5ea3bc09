//! Hepsiburada's merchant APIs: stock and price uploads, their per-SKU results, paid order
//! lines. Contract: Hepsiburada's "Listeleme" OpenAPI
//! (<https://developers.hepsiburada.com/api/v1/public/docs/hepsiburada/listeleme/v1/openapi>),
//! its OMS order listing and changelogs
//! (<https://developers.hepsiburada.com/hepsiburada/changelog/hepsiburada-entegrasyon-haziran-2023>,
//! <https://developers.hepsiburada.com/hepsiburada/changelog/eylül-2022>,
//! <https://developers.hepsiburada.com/hepsiburada/changelog/ocak-2024-entegrasyon-güncellemeleri>).
//!
//! Why it looks like this:
//! - Stock and price are two uploads (`stock-uploads`, `price-uploads`), each answered with an id
//!   whose result lists only the failed elements (by position and SKU). So a push makes one or
//!   two uploads and the receipt carries both ids and the SKUs of each upload in order: the
//!   successes are the SKUs not listed, and a redelivery after a crash can still read them.
//! - Hepsiburada has one price per listing: the item's `salePrice`. An item with only a
//!   `listPrice` cannot be expressed, so it is failed here, with the reason, and never sent.
//! - If the second upload of a push fails after the first was accepted, the retry of the same
//!   push (same items) reuses the first upload's id instead of applying it again. Only an
//!   unfinished push leaves such an id behind, for two minutes.
//! - Basic auth is merchant id : service key, with the integrator's name as `User-Agent`
//!   (required on every call). Listing calls share one limiter (the catalog limit, 100
//!   requests/s, is enforced by Hepsiburada with 403 and an IP block, so it must never be
//!   reached); order calls have their own (1000 requests/s, then 429 with `X-RateLimit-Reset`).
//! - Orders are listed by 24-hour ranges at most (a longer range is silently cut), 100 lines a
//!   page, `offset`/`limit` mandatory. The engine's pages are numbered across those ranges: the
//!   connector counts each range once per sync window and maps a page to (range, offset).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use meschain_model::money::{self, Money};
use rust_decimal::prelude::ToPrimitive;

use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, OrderLine, OrdersPage, PushOutcome};
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::request::Item;

pub const BASE_URL_SETTING: &str = meschain_model::settings::HEPSIBURADA_BASE_URL;
pub const ORDERS_BASE_URL_SETTING: &str = meschain_model::settings::HEPSIBURADA_ORDERS_BASE_URL;
pub const MERCHANT_ID_SETTING: &str = meschain_model::settings::HEPSIBURADA_MERCHANT_ID;
pub const SERVICE_KEY_SETTING: &str = meschain_model::settings::HEPSIBURADA_SERVICE_KEY;
pub const INTEGRATOR_SETTING: &str = meschain_model::settings::HEPSIBURADA_INTEGRATOR;
pub const RATE_LIMIT_SETTING: &str = meschain_model::settings::HEPSIBURADA_RATE_LIMIT;
pub const CONCURRENCY_SETTING: &str = meschain_model::settings::HEPSIBURADA_CONCURRENCY;

pub const DEFAULT_BASE_URL: &str = "https://listing-external.hepsiburada.com";
pub const DEFAULT_ORDERS_BASE_URL: &str = "https://oms-external.hepsiburada.com";
/// Items per push. Hepsiburada documents no upload size; third-party code claims 4,000. A
/// quarter of that keeps each upload well inside the claim and each receipt small.
pub const MAX_ITEMS: usize = 1000;
/// Documented: the catalog APIs allow 100 requests/s.
pub const LISTING_RATE_LIMIT: RateLimit = RateLimit { requests: 100, per: Duration::from_secs(1) };
/// Documented: the order APIs allow 1000 requests/s.
pub const ORDERS_RATE_LIMIT: RateLimit = RateLimit { requests: 1000, per: Duration::from_secs(1) };
/// Documented: at most (and by default) 100 order lines a page.
pub const ORDERS_PAGE_SIZE: u32 = 100;
/// Documented: one order query spans 24 hours at most.
pub const ORDERS_RANGE_MS: i64 = 24 * 3_600_000;
/// Order dates carry no zone; Hepsiburada is in Turkey (UTC+3 all year). An assumption: the
/// documentation does not say.
pub const TURKEY_OFFSET_MS: i64 = 3 * 3_600_000;
const DEFAULT_CONCURRENCY: usize = 4;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// How long an unfinished push's accepted upload is remembered for its retry.
const REUSE_WINDOW: Duration = Duration::from_secs(2 * 60);

/// Hepsiburada's settings. `Debug` never shows the service key.
#[derive(Clone)]
pub struct HepsiburadaConfig {
    pub base_url: url::Url,
    pub orders_base_url: url::Url,
    pub merchant_id: String,
    pub service_key: String,
    pub integrator: String,
    pub rate_limit: RateLimit,
    pub concurrency: usize,
}

impl fmt::Debug for HepsiburadaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HepsiburadaConfig")
            .field("base_url", &self.base_url.as_str())
            .field("orders_base_url", &self.orders_base_url.as_str())
            .field("merchant_id", &self.merchant_id)
            .field("service_key", &"<redacted>")
            .field("integrator", &self.integrator)
            .field("rate_limit", &self.rate_limit)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Whether any Hepsiburada credential is set (then the live connector is meant).
pub fn configured(get: &dyn Fn(&str) -> Option<String>) -> bool {
    [MERCHANT_ID_SETTING, SERVICE_KEY_SETTING].iter().any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

fn parse_base(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
    problems: &mut Vec<String>,
) -> Option<url::Url> {
    let base = get(name).unwrap_or_else(|| default.into());
    match url::Url::parse(base.trim_end_matches('/')) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
        _ => {
            problems.push(format!("{name} must be an http(s) URL"));
            None
        }
    }
}

impl HepsiburadaConfig {
    /// Reads the `HEPSIBURADA_*` settings; every problem is reported at once, by name.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();
        let base_url = parse_base(&get, BASE_URL_SETTING, DEFAULT_BASE_URL, &mut problems);
        let orders_base_url = parse_base(&get, ORDERS_BASE_URL_SETTING, DEFAULT_ORDERS_BASE_URL, &mut problems);
        let merchant_id = get(MERCHANT_ID_SETTING).unwrap_or_default();
        if uuid::Uuid::try_parse(&merchant_id).is_err() {
            problems.push(format!("{MERCHANT_ID_SETTING} must be the merchant id (a GUID)"));
        }
        let service_key = get(SERVICE_KEY_SETTING).unwrap_or_default();
        if service_key.is_empty() {
            problems.push(format!("{SERVICE_KEY_SETTING} is required"));
        } else if service_key.contains(':') || service_key.chars().any(char::is_control) {
            problems.push(format!("{SERVICE_KEY_SETTING} must not contain ':' or control characters"));
        }
        let integrator = get(INTEGRATOR_SETTING).unwrap_or_default();
        if integrator.is_empty() || HeaderValue::from_str(&integrator).is_err() || !integrator.is_ascii() {
            problems.push(format!(
                "{INTEGRATOR_SETTING} is required: the integrator user name Hepsiburada expects as User-Agent (printable ASCII)"
            ));
        }
        let rate_limit = match get(RATE_LIMIT_SETTING) {
            None => LISTING_RATE_LIMIT,
            Some(s) => RateLimit::parse(&s).unwrap_or_else(|e| {
                problems.push(format!("{RATE_LIMIT_SETTING}: {e}"));
                LISTING_RATE_LIMIT
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
        match (base_url, orders_base_url) {
            (Some(base_url), Some(orders_base_url)) if problems.is_empty() => Ok(HepsiburadaConfig {
                base_url,
                orders_base_url,
                merchant_id,
                service_key,
                integrator,
                rate_limit,
                concurrency,
            }),
            _ => Err(format!("hepsiburada connector: {}", problems.join("; "))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Stock,
    Price,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Stock => "stock-uploads",
            Kind::Price => "price-uploads",
        }
    }
}

/// What one push sends: the uploads' elements and the items failed before sending.
#[derive(Debug, Default, PartialEq)]
pub struct PushPlan {
    pub stock: Vec<Value>,
    pub stock_skus: Vec<String>,
    pub price: Vec<Value>,
    pub price_skus: Vec<String>,
    pub refused: Vec<(String, String)>,
}

/// Splits a batch into a stock upload and a price upload (pure).
pub fn plan_push(items: &[Item]) -> PushPlan {
    let mut plan = PushPlan::default();
    for item in items {
        if item.quantity.is_none() && item.sale_price.is_none() {
            plan.refused.push((
                item.barcode.clone(),
                "hepsiburada has one price per listing (salePrice); a listPrice alone cannot be sent".into(),
            ));
            continue;
        }
        if let Some(q) = item.quantity {
            plan.stock.push(json!({ "merchantSku": item.barcode, "availableStock": q }));
            plan.stock_skus.push(item.barcode.clone());
        }
        if let Some(p) = item.sale_price {
            // A JSON number, as the OpenAPI declares (`double`); the shortest form of the
            // nearest double prints the decimal digits sent.
            plan.price.push(json!({ "merchantSku": item.barcode, "price": p.to_f64() }));
            plan.price_skus.push(item.barcode.clone());
        }
    }
    plan
}

/// What a push leaves for reading its results, kept in the run document by the engine.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub stock_id: Option<String>,
    #[serde(rename = "ss", default, skip_serializing_if = "Vec::is_empty")]
    pub stock_skus: Vec<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub price_id: Option<String>,
    #[serde(rename = "ps", default, skip_serializing_if = "Vec::is_empty")]
    pub price_skus: Vec<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<(String, String)>,
}

/// One upload's answer, as far as it is read.
#[derive(Debug, PartialEq)]
pub enum UploadResult {
    Processing,
    /// Failed SKUs with their reasons (by SKU; by position where the SKU is absent).
    Done(Vec<(String, Vec<String>)>),
    /// The whole upload failed, without per-element errors.
    Failed(String),
}

/// Reads an upload result. `skus` are the upload's SKUs in the order sent (`elementNo`).
/// The `status` values are not enumerated by Hepsiburada: those that say "not yet" wait, those
/// that say "failed" fail the upload's SKUs not listed, anything else is final.
pub fn parse_upload_result(body: &[u8], skus: &[String]) -> Option<UploadResult> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or("").trim().to_ascii_lowercase();
    if matches!(status.as_str(), "" | "processing" | "inprogress" | "in_progress" | "pending" | "waiting" | "created") {
        return Some(UploadResult::Processing);
    }
    let mut failed = Vec::new();
    for e in v.get("errors").and_then(Value::as_array).into_iter().flatten() {
        let by_position = e.get("elementNo").and_then(Value::as_u64).and_then(|n| skus.get(n as usize));
        let by_sku = e.get("merchantSku").and_then(Value::as_str).filter(|s| skus.iter().any(|k| k == s));
        let Some(sku) = by_sku.map(str::to_string).or_else(|| by_position.cloned()) else { continue };
        let mut reasons: Vec<String> = e
            .get("errors")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if reasons.is_empty() {
            reasons.push("refused by hepsiburada (no reason given)".into());
        }
        failed.push((sku, reasons));
    }
    for p in v.get("priceValidations").and_then(Value::as_array).into_iter().flatten() {
        let by_position = p.get("elementNo").and_then(Value::as_u64).and_then(|n| skus.get(n as usize));
        let by_sku = p.get("merchantSku").and_then(Value::as_str).filter(|s| skus.iter().any(|k| k == s));
        let Some(sku) = by_sku.map(str::to_string).or_else(|| by_position.cloned()) else { continue };
        let description = p.get("description").and_then(Value::as_str).unwrap_or("price outside the allowed range");
        let range = match (p.get("minPrice").and_then(Value::as_f64), p.get("maxPrice").and_then(Value::as_f64)) {
            (Some(lo), Some(hi)) => format!(" ({lo}-{hi})"),
            _ => String::new(),
        };
        failed.push((sku, vec![format!("{description}{range}")]));
    }
    if matches!(status.as_str(), "failed" | "error" | "rejected") && failed.is_empty() {
        return Some(UploadResult::Failed(format!("upload status {status}")));
    }
    Some(UploadResult::Done(failed))
}

/// Merges the uploads' results into one result per item of the batch (pure).
pub fn merge_results(receipt: &Receipt, stock: Option<&UploadResult>, price: Option<&UploadResult>) -> Vec<ItemResult> {
    let mut order: Vec<&String> = Vec::new();
    let mut reasons: HashMap<&str, Vec<String>> = HashMap::new();
    for (skus, result, what) in [(&receipt.stock_skus, stock, "stock"), (&receipt.price_skus, price, "price")] {
        for sku in skus {
            if !reasons.contains_key(sku.as_str()) {
                order.push(sku);
                reasons.insert(sku, Vec::new());
            }
        }
        match result {
            Some(UploadResult::Done(failed)) => {
                for (sku, why) in failed {
                    if let Some(r) = reasons.get_mut(sku.as_str()) {
                        r.extend(why.iter().map(|w| format!("{what}: {w}")));
                    }
                }
            }
            Some(UploadResult::Failed(why)) => {
                for sku in skus {
                    reasons.get_mut(sku.as_str()).expect("listed above").push(format!("{what}: {why}"));
                }
            }
            Some(UploadResult::Processing) | None => {}
        }
    }
    let mut results: Vec<ItemResult> = order
        .into_iter()
        .map(|sku| {
            let why = reasons.remove(sku.as_str()).unwrap_or_default();
            ItemResult { barcode: sku.clone(), ok: why.is_empty(), reasons: why }
        })
        .collect();
    results.extend(receipt.refused.iter().map(|(b, why)| ItemResult {
        barcode: b.clone(),
        ok: false,
        reasons: vec![why.clone()],
    }));
    results
}

/// How one range of the order listing is laid out in the engine's pages.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    begin_ms: i64,
    end_ms: i64,
    pages: u32,
    count: u64,
}

/// The 24-hour ranges covering `[from_ms, to_ms]`, on whole minutes (the query's precision),
/// each `[begin, end)` so no line is in two.
fn ranges(from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
    let start = from_ms.div_euclid(60_000) * 60_000;
    let stop = to_ms.div_euclid(60_000) * 60_000 + 60_000;
    let mut out = Vec::new();
    let mut b = start;
    while b < stop {
        let e = (b + ORDERS_RANGE_MS).min(stop);
        out.push((b, e));
        b = e;
    }
    out
}

/// `yyyy-MM-dd HH:mm` in Turkey time.
pub fn hb_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms + TURKEY_OFFSET_MS) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(format).unwrap_or_default()
}

/// An order date: RFC 3339, or a local date-time without a zone (Turkey time).
fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let format = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let t = time::PrimitiveDateTime::parse(s, format).ok()?;
    Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64 - TURKEY_OFFSET_MS)
}

fn amount(v: Option<&Value>) -> Option<Money> {
    let v = v?;
    v.get("amount").and_then(money::from_json).or_else(|| money::from_json(v))
}

/// Reads a page of order lines into orders (one paid line is one order record: that is what
/// this listing returns, keyed by the line's id).
pub fn parse_order_lines(body: &[u8]) -> Option<(Vec<Order>, u64)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let total = v.get("totalCount").and_then(Value::as_u64).unwrap_or(0);
    let text = |o: &Value, k: &str| o.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()));
    let orders = v
        .get("items")?
        .as_array()?
        .iter()
        .map(|l| {
            let quantity = l.get("quantity").and_then(Value::as_u64).unwrap_or(1).min(u64::from(u32::MAX)) as u32;
            let unit = amount(l.get("unitPrice")).unwrap_or(Money::ZERO);
            let total = amount(l.get("totalPrice")).unwrap_or(unit * Money::from(quantity));
            let currency = l.pointer("/totalPrice/currency").and_then(Value::as_str).unwrap_or("TRY").to_string();
            let modified = ["lastStatusUpdateDate", "orderDate"]
                .iter()
                .find_map(|k| l.get(*k).and_then(Value::as_str).and_then(parse_date))
                .unwrap_or(0);
            Order {
                package_id: text(l, "id").unwrap_or_default(),
                order_number: text(l, "orderNumber").unwrap_or_default(),
                status: text(l, "status").unwrap_or_default(),
                total,
                currency,
                last_modified: modified,
                lines: vec![OrderLine {
                    barcode: text(l, "merchantSKU").or_else(|| text(l, "merchantSku")).unwrap_or_default(),
                    quantity,
                    unit_price: unit,
                }],
            }
        })
        .collect();
    Some((orders, total))
}

/// Seconds to wait from a 429: `Retry-After`, else `X-RateLimit-Reset` (seconds, or an epoch
/// time when it is that large; its unit is not documented).
pub fn throttle_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(d) = crate::trendyol::retry_after(headers, now) {
        return Some(d);
    }
    let reset: u64 = headers.get("x-ratelimit-reset")?.to_str().ok()?.trim().parse().ok()?;
    let wait = if reset > 1_000_000_000 {
        let now_s = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        reset.saturating_sub(now_s)
    } else {
        reset
    };
    Some(Duration::from_secs(wait.min(3600)))
}

fn error_text(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(s)) => s,
        Ok(v) => ["message", "error", "title", "detail"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut text = text.trim().to_string();
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

/// (push digest, upload kind).
type PartialKey = ([u8; 32], &'static str);
/// The import window and its ranges.
type Layout = ((i64, i64), Vec<Range>);

/// The live Hepsiburada connector.
pub struct Hepsiburada {
    http: reqwest::Client,
    listing: String,
    oms: String,
    merchant_id: String,
    headers: HeaderMap,
    concurrency: usize,
    listing_limit: RateLimiter,
    orders_limit: RateLimiter,
    /// Accepted uploads of unfinished pushes, by (push digest, kind): for the retry of a push
    /// whose other upload failed.
    partial: Mutex<HashMap<PartialKey, (String, Instant)>>,
    /// The order ranges of the current import window, counted once.
    layout: tokio::sync::Mutex<Option<Layout>>,
}

impl Hepsiburada {
    pub fn new(config: HepsiburadaConfig, http: reqwest::Client) -> Self {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", config.merchant_id, config.service_key));
        let mut auth = HeaderValue::from_str(&format!("Basic {credentials}")).expect("base64 is a valid header value");
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers
            .insert(header::USER_AGENT, HeaderValue::from_str(&config.integrator).expect("checked in from_settings"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        Hepsiburada {
            http,
            listing: config.base_url.as_str().trim_end_matches('/').to_string(),
            oms: config.orders_base_url.as_str().trim_end_matches('/').to_string(),
            merchant_id: config.merchant_id,
            headers,
            concurrency: config.concurrency,
            listing_limit: RateLimiter::new(config.rate_limit),
            orders_limit: RateLimiter::new(ORDERS_RATE_LIMIT),
            partial: Mutex::new(HashMap::new()),
            layout: tokio::sync::Mutex::new(None),
        }
    }

    async fn send(
        &self,
        limiter: &RateLimiter,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        limiter.acquire().await;
        let response = request.headers(self.headers.clone()).timeout(REQUEST_TIMEOUT).send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timed out" } else { "failed" };
            ConnectorError::transient(format!("hepsiburada {what} {kind}: {}", e.without_url()))
        })?;
        let status = response.status();
        let wait = throttle_wait(response.headers(), SystemTime::now());
        let body =
            read_capped(response).await.map_err(|e| ConnectorError::transient(format!("hepsiburada {what}: {e}")))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limiter.pause_for(wait.unwrap_or(Duration::from_secs(1))).await;
            return Err(ConnectorError::Transient {
                reason: format!("hepsiburada {what}: 429 too many requests"),
                retry_after: wait,
            });
        }
        if status.is_server_error() {
            return Err(ConnectorError::Transient {
                reason: format!("hepsiburada {what}: HTTP {} {}", status.as_u16(), error_text(&body)),
                retry_after: wait,
            });
        }
        match status {
            StatusCode::UNAUTHORIZED => Err(ConnectorError::Fatal(format!(
                "hepsiburada {what}: 401 {} (check {MERCHANT_ID_SETTING} and {SERVICE_KEY_SETTING})",
                error_text(&body)
            ))),
            StatusCode::FORBIDDEN => Err(ConnectorError::Fatal(format!(
                "hepsiburada {what}: 403 {} (check {INTEGRATOR_SETTING}, sent as User-Agent, and {MERCHANT_ID_SETTING}; \
                 Hepsiburada also answers 403 and blocks the address above {RATE_LIMIT_SETTING})",
                error_text(&body)
            ))),
            _ => Ok((status, body)),
        }
    }

    /// Sends one upload of the push `push` (its digest), or reuses the id of the same upload
    /// accepted by an earlier, unfinished attempt of that push.
    async fn upload(
        &self,
        push: [u8; 32],
        kind: Kind,
        elements: &[Value],
    ) -> Result<Result<String, String>, ConnectorError> {
        let key = (push, kind.path());
        {
            let mut partial = self.partial.lock().unwrap();
            partial.retain(|_, (_, at)| at.elapsed() < REUSE_WINDOW);
            if let Some((id, _)) = partial.get(&key) {
                return Ok(Ok(id.clone()));
            }
        }
        let body = serde_json::to_vec(elements).expect("elements serialize");
        let url = format!("{}/listings/merchantid/{}/{}", self.listing, self.merchant_id, kind.path());
        let request = self.http.post(url).header(header::CONTENT_TYPE, "application/json").body(body);
        let what = format!("{} upload", if kind == Kind::Stock { "stock" } else { "price" });
        let (status, body) = self.send(&self.listing_limit, &what, request).await?;
        match status {
            StatusCode::OK | StatusCode::CREATED | StatusCode::ACCEPTED => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match v.get("id").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => {
                        self.partial.lock().unwrap().insert(key, (id.to_string(), Instant::now()));
                        Ok(Ok(id.to_string()))
                    }
                    _ => Err(ConnectorError::transient(format!("hepsiburada {what}: 200 without an id"))),
                }
            }
            StatusCode::NOT_FOUND => Err(ConnectorError::Fatal(format!(
                "hepsiburada {what}: 404 (check {BASE_URL_SETTING} and {MERCHANT_ID_SETTING})"
            ))),
            s if s.is_client_error() => Ok(Err(format!("HTTP {} {}", s.as_u16(), error_text(&body)))),
            s => Err(ConnectorError::transient(format!("hepsiburada {what}: unexpected HTTP {}", s.as_u16()))),
        }
    }

    async fn upload_result(&self, kind: Kind, id: &str, skus: &[String]) -> Result<UploadResult, ConnectorError> {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let url = format!("{}/listings/merchantid/{}/{}/id/{id}", self.listing, self.merchant_id, kind.path());
        let (status, body) = self.send(&self.listing_limit, "upload result", self.http.get(url)).await?;
        match status {
            StatusCode::OK => parse_upload_result(&body, skus)
                .ok_or_else(|| ConnectorError::transient("hepsiburada upload result: unreadable answer")),
            // Right after an upload its result may not be visible yet; the engine bounds the polls.
            StatusCode::NOT_FOUND => Ok(UploadResult::Processing),
            s => Err(ConnectorError::Fatal(format!(
                "hepsiburada upload result: HTTP {} {}",
                s.as_u16(),
                error_text(&body)
            ))),
        }
    }

    async fn orders_page(
        &self,
        begin_ms: i64,
        end_ms: i64,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Order>, u64), ConnectorError> {
        let url = format!("{}/orders/merchantid/{}", self.oms, self.merchant_id);
        let query = [
            ("offset", offset.to_string()),
            ("limit", limit.to_string()),
            ("begindate", hb_date(begin_ms)),
            ("enddate", hb_date(end_ms)),
        ];
        let (status, body) = self.send(&self.orders_limit, "orders", self.http.get(url).query(&query)).await?;
        if status != StatusCode::OK {
            return Err(ConnectorError::Fatal(format!(
                "hepsiburada orders: HTTP {} {}",
                status.as_u16(),
                error_text(&body)
            )));
        }
        parse_order_lines(&body).ok_or_else(|| ConnectorError::transient("hepsiburada orders: unreadable page"))
    }

    /// The ranges of `[from_ms, to_ms]` with their page counts (one counting call per range,
    /// once per import window).
    async fn layout(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Range>, ConnectorError> {
        let mut cached = self.layout.lock().await;
        if let Some((key, ranges)) = cached.as_ref()
            && *key == (from_ms, to_ms)
        {
            return Ok(ranges.clone());
        }
        let mut layout = Vec::new();
        for (b, e) in ranges(from_ms, to_ms) {
            let (_, count) = self.orders_page(b, e, 0, 1).await?;
            let pages = count.div_ceil(u64::from(ORDERS_PAGE_SIZE)).min(u64::from(u32::MAX)) as u32;
            layout.push(Range { begin_ms: b, end_ms: e, pages, count });
        }
        *cached = Some(((from_ms, to_ms), layout.clone()));
        Ok(layout)
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

#[async_trait]
impl Connector for Hepsiburada {
    fn max_batch(&self) -> usize {
        MAX_ITEMS
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        if items.len() > MAX_ITEMS {
            return Err(ConnectorError::Fatal(format!("hepsiburada push: {} items, at most {MAX_ITEMS}", items.len())));
        }
        let plan = plan_push(items);
        let digest: [u8; 32] = Sha256::digest(serde_json::to_vec(items).expect("items serialize")).into();
        let mut receipt = Receipt { refused: plan.refused, ..Receipt::default() };
        if !plan.stock.is_empty() {
            match self.upload(digest, Kind::Stock, &plan.stock).await? {
                Ok(id) => {
                    receipt.stock_id = Some(id);
                    receipt.stock_skus = plan.stock_skus;
                }
                Err(reason) => return Ok(PushOutcome::Rejected { reason: format!("stock upload: {reason}") }),
            }
        }
        if !plan.price.is_empty() {
            match self.upload(digest, Kind::Price, &plan.price).await? {
                Ok(id) => {
                    receipt.price_id = Some(id);
                    receipt.price_skus = plan.price_skus;
                }
                // The stock upload (if any) stands: its SKUs are read as usual, the prices failed.
                Err(reason) => {
                    receipt.refused.extend(plan.price_skus.into_iter().map(|b| (b, format!("price upload: {reason}"))));
                }
            }
        }
        // Answered: a later push of the same items is a new push, sent again.
        self.partial.lock().unwrap().retain(|(d, _), _| *d != digest);
        Ok(PushOutcome::Accepted { receipt: serde_json::to_string(&receipt).expect("receipt serializes") })
    }

    async fn batch_result(&self, receipt: &str) -> Result<BatchStatus, ConnectorError> {
        let receipt: Receipt = serde_json::from_str(receipt)
            .map_err(|e| ConnectorError::Fatal(format!("hepsiburada batch result: unreadable receipt: {e}")))?;
        let stock = match &receipt.stock_id {
            Some(id) => Some(self.upload_result(Kind::Stock, id, &receipt.stock_skus).await?),
            None => None,
        };
        let price = match &receipt.price_id {
            Some(id) => Some(self.upload_result(Kind::Price, id, &receipt.price_skus).await?),
            None => None,
        };
        if [&stock, &price].iter().any(|r| matches!(r, Some(UploadResult::Processing))) {
            return Ok(BatchStatus::InProgress);
        }
        Ok(BatchStatus::Done(merge_results(&receipt, stock.as_ref(), price.as_ref())))
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        let layout = self.layout(from_ms, to_ms).await?;
        let total_pages: u32 = layout.iter().map(|r| r.pages).fold(0, u32::saturating_add);
        let total_orders: u64 = layout.iter().map(|r| r.count).sum();
        let mut skip = page;
        let Some(range) = layout.iter().find(|r| {
            if skip < r.pages {
                return true;
            }
            skip -= r.pages;
            false
        }) else {
            return Ok(OrdersPage { orders: Vec::new(), total_pages, total_orders });
        };
        let offset = u64::from(skip) * u64::from(ORDERS_PAGE_SIZE);
        let (orders, _) = self.orders_page(range.begin_ms, range.end_ms, offset, ORDERS_PAGE_SIZE).await?;
        // The ranges are on whole minutes; only lines inside the asked window are this sync's.
        let orders = orders.into_iter().filter(|o| o.last_modified >= from_ms && o.last_modified <= to_ms).collect();
        Ok(OrdersPage { orders, total_pages, total_orders })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    const MERCHANT: &str = "5e2f3c4d-1a2b-4c3d-8e9f-0a1b2c3d4e5f";

    #[test]
    fn test_config_defaults_and_redaction() {
        let get = settings(&[
            (MERCHANT_ID_SETTING, MERCHANT),
            (SERVICE_KEY_SETTING, "S3cretKey123"),
            (INTEGRATOR_SETTING, "meschain_dev"),
        ]);
        assert!(configured(&get));
        let c = HepsiburadaConfig::from_settings(&get).unwrap();
        assert_eq!(c.base_url.as_str(), "https://listing-external.hepsiburada.com/");
        assert_eq!(c.orders_base_url.as_str(), "https://oms-external.hepsiburada.com/");
        assert_eq!(c.rate_limit, LISTING_RATE_LIMIT);
        let debug = format!("{c:?}");
        assert!(!debug.contains("S3cretKey123"), "{debug}");
    }

    #[test]
    fn test_config_reports_every_problem_by_name_never_value() {
        let get = settings(&[
            (MERCHANT_ID_SETTING, "not-a-guid"),
            (SERVICE_KEY_SETTING, "has:colon"),
            (RATE_LIMIT_SETTING, "fast"),
            (ORDERS_BASE_URL_SETTING, "ftp://x"),
            (CONCURRENCY_SETTING, "99"),
        ]);
        assert!(configured(&get));
        let err = HepsiburadaConfig::from_settings(&get).unwrap_err();
        for needle in [
            MERCHANT_ID_SETTING,
            SERVICE_KEY_SETTING,
            INTEGRATOR_SETTING,
            RATE_LIMIT_SETTING,
            ORDERS_BASE_URL_SETTING,
            CONCURRENCY_SETTING,
        ] {
            assert!(err.contains(needle), "{needle} missing: {err}");
        }
        assert!(!err.contains("has:colon") && !err.contains("not-a-guid"), "{err}");
        assert!(!configured(&settings(&[(INTEGRATOR_SETTING, "x")])));
    }

    fn item(b: &str, q: Option<u32>, sale: Option<f64>, list: Option<f64>) -> Item {
        let money = |x: Option<f64>| x.map(|x| x.to_string().parse::<Money>().unwrap());
        Item { barcode: b.into(), quantity: q, sale_price: money(sale), list_price: money(list) }
    }

    #[test]
    fn test_plan_splits_stock_and_price_and_refuses_list_price_only() {
        let plan = plan_push(&[
            item("a", Some(3), None, None),
            item("b", None, Some(9.5), Some(12.0)),
            item("c", Some(0), Some(1.25), None),
            item("d", None, None, Some(5.0)),
        ]);
        assert_eq!(
            plan.stock,
            vec![json!({"merchantSku":"a","availableStock":3}), json!({"merchantSku":"c","availableStock":0})]
        );
        assert_eq!(plan.price, vec![json!({"merchantSku":"b","price":9.5}), json!({"merchantSku":"c","price":1.25})]);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, "d");
    }

    #[test]
    fn test_upload_result_statuses_and_positions() {
        let skus = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            parse_upload_result(br#"{"status":"Processing","errors":[]}"#, &skus),
            Some(UploadResult::Processing)
        );
        assert_eq!(parse_upload_result(br#"{"status":null}"#, &skus), Some(UploadResult::Processing));
        let done = br#"{"id":"x","status":"Done","total":3,"errors":[
            {"elementNo":1,"merchantSku":null,"errors":["Listing bulunamadi"]},
            {"elementNo":0,"merchantSku":"c","errors":[]}]}"#;
        let Some(UploadResult::Done(failed)) = parse_upload_result(done, &skus) else { panic!("done expected") };
        assert_eq!(failed[0], ("b".to_string(), vec!["Listing bulunamadi".to_string()]));
        assert_eq!(failed[1].0, "c", "the SKU wins over the position");
        assert!(!failed[1].1.is_empty(), "a reason even when none was given");
        assert!(matches!(
            parse_upload_result(br#"{"status":"Failed","errors":[]}"#, &skus),
            Some(UploadResult::Failed(_))
        ));
        assert_eq!(parse_upload_result(b"<html>", &skus), None);
    }

    #[test]
    fn test_merge_reports_every_item_once() {
        let receipt = Receipt {
            stock_id: Some("s".into()),
            stock_skus: vec!["a".into(), "c".into()],
            price_id: Some("p".into()),
            price_skus: vec!["b".into(), "c".into()],
            refused: vec![("d".into(), "no price".into())],
        };
        let stock = UploadResult::Done(vec![]);
        let price = UploadResult::Done(vec![("c".into(), vec!["too low".into()])]);
        let r = merge_results(&receipt, Some(&stock), Some(&price));
        let summary: Vec<(&str, bool)> = r.iter().map(|x| (x.barcode.as_str(), x.ok)).collect();
        assert_eq!(summary, vec![("a", true), ("c", false), ("b", true), ("d", false)]);
        assert_eq!(r[1].reasons, vec!["price: too low".to_string()]);
        let wire = serde_json::to_string(&receipt).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&wire).unwrap(), receipt);
    }

    #[test]
    fn test_order_ranges_cover_the_window_without_overlap() {
        let day = ORDERS_RANGE_MS;
        let from = 1_700_000_012_345;
        let to = from + 2 * day + 5_000;
        let r = ranges(from, to);
        assert_eq!(r.len(), 3);
        assert!(r[0].0 <= from && r.last().unwrap().1 > to);
        assert!(r.windows(2).all(|w| w[0].1 == w[1].0), "contiguous, end exclusive");
        assert!(r.iter().all(|(b, e)| e - b <= day && b % 60_000 == 0 && e % 60_000 == 0));
    }

    #[test]
    fn test_dates_in_turkey_time() {
        // 2026-12-05 07:30 UTC is 10:30 in Turkey.
        let ms = 1_796_455_800_000;
        assert_eq!(hb_date(ms), "2026-12-05 10:30");
        assert_eq!(parse_date("2026-12-05T10:30:00+03:00"), Some(ms));
        assert_eq!(parse_date("2026-12-05T10:30:00"), Some(ms));
        assert_eq!(parse_date("2026-12-05T10:30:00.250"), Some(ms + 250));
    }

    #[test]
    fn test_throttle_wait_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(throttle_wait(&h, now), None);
        h.insert("x-ratelimit-reset", HeaderValue::from_static("3"));
        assert_eq!(throttle_wait(&h, now), Some(Duration::from_secs(3)));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000007"));
        assert_eq!(throttle_wait(&h, now), Some(Duration::from_secs(7)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(throttle_wait(&h, now), Some(Duration::from_secs(2)));
    }

    #[test]
    fn test_order_lines_become_orders() {
        let body = br#"{"items":[{"id":"l1","orderNumber":"HB1","orderDate":"2026-12-05T10:30:00+03:00",
            "merchantSKU":"S1","quantity":2,"unitPrice":{"amount":10.25,"currency":"TRY"},
            "totalPrice":{"amount":20.5,"currency":"TRY"},"status":"Open"}],"limit":100,"offset":0,"pageCount":1,"totalCount":1}"#;
        let (orders, total) = parse_order_lines(body).unwrap();
        assert_eq!(total, 1);
        assert_eq!(orders[0].package_id, "l1");
        assert_eq!(orders[0].total, Money::new(205, 1));
        assert_eq!(orders[0].lines[0].barcode, "S1");
        assert_eq!(orders[0].last_modified, 1_796_455_800_000);
    }
}
