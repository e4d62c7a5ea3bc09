//! N11's REST seller API: price/stock update tasks, their task details, shipment packages.
//! Contract: <https://magazadestek.n11.com/satis-surecleri/restapi-servisleri-10173>,
//! <https://magazadestek.n11.com/satis-surecleri/restapi-urun-bilgileri-ve-fiyat-stok-guncelleme-servisi-10173>,
//! <https://developer.n11.com/documentation/n11-marketplace-entegrasyonu/urun-fiyat-stok-guncelleme/>,
//! <https://developer.n11.com/documentation/n11-siparis-entegrasyonu/siparis-listeleme-servisi/>.
//!
//! Why it looks like this:
//! - A push is one `price-stock-update` task (≤ 1,000 SKUs, `integrator` on every call, headers
//!   `appkey`/`appsecret`); N11 answers with a task id and applies it later, so the receipt is
//!   the task id, and the results are the task details' per-SKU `SUCCESS`/`FAIL`.
//! - N11 refuses a list price below the sale price, one price without the other and amounts
//!   with more than two decimals. Such items are failed here, each with its reason, and left
//!   out of the task: sending them would only have N11 fail them, and an item with a bad price
//!   and a good stock would otherwise lose its stock update with it. Their results travel in the
//!   receipt, so a redelivery still reports them.
//! - Product tasks have no documented request rate: the limiter starts at
//!   `N11_RATE_LIMIT` (default 10/s) and a 429 pauses it for its `Retry-After`. Orders are
//!   limited to 1000 requests/min, as documented.
//! - Shipment packages are listed one `status` per call and 15 days per range (a wider range
//!   is silently cut), `size` ≤ 100. The engine's pages are numbered across (range, status):
//!   each is counted once per import window.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use meschain_model::money::{self, Money};
use rust_decimal::prelude::ToPrimitive;

use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, OrderLine, OrdersPage, PushOutcome};
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::request::Item;

pub const BASE_URL_SETTING: &str = meschain_model::settings::N11_BASE_URL;
pub const APP_KEY_SETTING: &str = meschain_model::settings::N11_APP_KEY;
pub const APP_SECRET_SETTING: &str = meschain_model::settings::N11_APP_SECRET;
pub const INTEGRATOR_SETTING: &str = meschain_model::settings::N11_INTEGRATOR;
pub const RATE_LIMIT_SETTING: &str = meschain_model::settings::N11_RATE_LIMIT;
pub const CONCURRENCY_SETTING: &str = meschain_model::settings::N11_CONCURRENCY;

pub const DEFAULT_BASE_URL: &str = "https://api.n11.com";
pub const DEFAULT_INTEGRATOR: &str = "MesChain";
/// Documented: at most 1,000 SKUs per task.
pub const MAX_ITEMS: usize = 1000;
/// Documented: stock at most 999,999.
pub const MAX_QUANTITY: u32 = 999_999;
/// Undocumented for product tasks; a starting point that 429s can only lower.
pub const TASK_RATE_LIMIT: RateLimit = RateLimit { requests: 10, per: Duration::from_secs(1) };
/// Documented: orders 1000 requests/min.
pub const ORDERS_RATE_LIMIT: RateLimit = RateLimit { requests: 1000, per: Duration::from_secs(60) };
/// Documented: at most 100 packages a page.
pub const ORDERS_PAGE_SIZE: u32 = 100;
/// Documented (current page): 15 days per query.
pub const ORDERS_RANGE_MS: i64 = 15 * 24 * 3_600_000;
/// Documented: one status per call.
pub const STATUSES: [&str; 7] = ["Created", "Picking", "Shipped", "Delivered", "Cancelled", "UnPacked", "UnSupplied"];
const DEFAULT_CONCURRENCY: usize = 4;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// N11's settings. `Debug` never shows the key or the secret.
#[derive(Clone)]
pub struct N11Config {
    pub base_url: url::Url,
    pub app_key: String,
    pub app_secret: String,
    pub integrator: String,
    pub rate_limit: RateLimit,
    pub concurrency: usize,
}

impl fmt::Debug for N11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("N11Config")
            .field("base_url", &self.base_url.as_str())
            .field("app_key", &"<redacted>")
            .field("app_secret", &"<redacted>")
            .field("integrator", &self.integrator)
            .field("rate_limit", &self.rate_limit)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Whether any N11 credential is set (then the live connector is meant).
pub fn configured(get: &dyn Fn(&str) -> Option<String>) -> bool {
    [APP_KEY_SETTING, APP_SECRET_SETTING].iter().any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

impl N11Config {
    /// Reads the `N11_*` settings; every problem is reported at once, by name.
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
        let header_ok = |v: &str| !v.is_empty() && HeaderValue::from_str(v).is_ok();
        let app_key = get(APP_KEY_SETTING).unwrap_or_default();
        if !header_ok(&app_key) {
            problems.push(format!("{APP_KEY_SETTING} is required (printable characters)"));
        }
        let app_secret = get(APP_SECRET_SETTING).unwrap_or_default();
        if !header_ok(&app_secret) {
            problems.push(format!("{APP_SECRET_SETTING} is required (printable characters)"));
        }
        let integrator = get(INTEGRATOR_SETTING).unwrap_or_else(|| DEFAULT_INTEGRATOR.into());
        if integrator.len() > 100 {
            problems.push(format!("{INTEGRATOR_SETTING} must be at most 100 characters"));
        }
        let rate_limit = match get(RATE_LIMIT_SETTING) {
            None => TASK_RATE_LIMIT,
            Some(s) => RateLimit::parse(&s).unwrap_or_else(|e| {
                problems.push(format!("{RATE_LIMIT_SETTING}: {e}"));
                TASK_RATE_LIMIT
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
                Ok(N11Config { base_url, app_key, app_secret, integrator, rate_limit, concurrency })
            }
            _ => Err(format!("n11 connector: {}", problems.join("; "))),
        }
    }
}

/// An amount in kuruş when it has at most two decimals.
fn cents(x: Money) -> Option<i64> {
    (x > Money::ZERO && x.round_dp(2) == x).then(|| (x * Money::ONE_HUNDRED).to_i64()).flatten()
}

/// Kuruş as the JSON number N11 wants (`1600.0`, `19.99`).
fn amount_json(cents: i64) -> Value {
    json!(Money::new(cents, 2).to_f64())
}

/// The SKUs of one task and the items failed before sending (pure).
pub fn plan_task(items: &[Item]) -> (Vec<Value>, Vec<String>, Vec<(String, String)>) {
    let mut skus = Vec::with_capacity(items.len());
    let mut codes = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for item in items {
        let mut sku = serde_json::Map::new();
        sku.insert("stockCode".into(), json!(item.barcode));
        let problem = (|| {
            if let Some(q) = item.quantity {
                if q > MAX_QUANTITY {
                    return Some(format!("quantity {q} is over N11's maximum of {MAX_QUANTITY}"));
                }
                sku.insert("quantity".into(), json!(q));
            }
            match (item.list_price, item.sale_price) {
                (None, None) => {}
                (Some(list), Some(sale)) => {
                    let (Some(l), Some(s)) = (cents(list), cents(sale)) else {
                        return Some("N11 takes prices with at most two decimals".into());
                    };
                    if l < s {
                        return Some(format!(
                            "listPrice {list} is below salePrice {sale}: N11 requires listPrice ≥ salePrice"
                        ));
                    }
                    sku.insert("listPrice".into(), amount_json(l));
                    sku.insert("salePrice".into(), amount_json(s));
                    sku.insert("currencyType".into(), json!("TL"));
                }
                _ => return Some("N11 takes listPrice and salePrice together; one was missing".into()),
            }
            if sku.len() == 1 {
                return Some("nothing to update: no quantity or prices".into());
            }
            None
        })();
        match problem {
            Some(why) => refused.push((item.barcode.clone(), why)),
            None => {
                skus.push(Value::Object(sku));
                codes.push(item.barcode.clone());
            }
        }
    }
    (skus, codes, refused)
}

/// What a push leaves for reading its results.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<u64>,
    /// The stock codes sent, in order.
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<(String, String)>,
}

/// One page of task details.
#[derive(Debug, PartialEq)]
pub enum TaskPage {
    InQueue,
    Rejected(Vec<String>),
    Processed { results: Vec<ItemResult>, total_pages: u32 },
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Reads a task-details page.
pub fn parse_task_page(body: &[u8]) -> Option<TaskPage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match v.get("status").and_then(Value::as_str).unwrap_or("") {
        "PROCESSED" => {}
        "REJECT" => return Some(TaskPage::Rejected(strings(v.get("reasons")))),
        _ => return Some(TaskPage::InQueue),
    }
    let content = v.pointer("/skus/content").and_then(Value::as_array)?;
    let results = content
        .iter()
        .map(|s| {
            let ok = s.get("status").and_then(Value::as_str) == Some("SUCCESS");
            let mut reasons = strings(s.get("reasons"));
            if !ok && reasons.is_empty() {
                reasons.push("failed at n11 (no reason given)".into());
            }
            let barcode = s.get("itemCode").and_then(Value::as_str).unwrap_or("").to_string();
            ItemResult { barcode, ok, reasons: if ok { Vec::new() } else { reasons } }
        })
        .collect();
    let total_pages = v.pointer("/skus/totalPages").and_then(Value::as_u64).unwrap_or(1).min(1000) as u32;
    Some(TaskPage::Processed { results, total_pages })
}

/// Reads a shipment package page.
pub fn parse_packages(body: &[u8]) -> Option<(Vec<Order>, u64)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let text = |o: &Value, k: &str| o.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()));
    let orders = v
        .get("content")?
        .as_array()?
        .iter()
        .map(|p| {
            let lines: Vec<(OrderLine, Money)> = p
                .get("lines")
                .and_then(Value::as_array)
                .map(|ls| {
                    ls.iter()
                        .map(|l| {
                            let quantity =
                                l.get("quantity").and_then(Value::as_u64).unwrap_or(1).min(u64::from(u32::MAX)) as u32;
                            let unit = l.get("price").and_then(money::from_json).unwrap_or(Money::ZERO);
                            let amount = l
                                .get("sellerInvoiceAmount")
                                .and_then(money::from_json)
                                .unwrap_or(unit * Money::from(quantity));
                            (
                                OrderLine {
                                    barcode: text(l, "stockCode").unwrap_or_default(),
                                    quantity,
                                    unit_price: unit,
                                },
                                amount,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Order {
                package_id: text(p, "id").unwrap_or_default(),
                order_number: text(p, "orderNumber").unwrap_or_default(),
                status: text(p, "shipmentPackageStatus").unwrap_or_default(),
                total: lines.iter().map(|(_, a)| *a).sum(),
                currency: "TRY".into(),
                last_modified: p.get("lastModifiedDate").and_then(Value::as_i64).unwrap_or(0),
                lines: lines.into_iter().map(|(l, _)| l).collect(),
            }
        })
        .collect();
    Some((orders, v.get("totalElements").and_then(Value::as_u64).unwrap_or(0)))
}

fn error_text(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let parts: Vec<String> = ["@type", "message", "error"]
                .iter()
                .filter_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
                .chain(strings(v.get("reasons")))
                .collect();
            if parts.is_empty() { v.to_string() } else { parts.join(": ") }
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut text = text.trim().to_string();
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

#[derive(Debug, Clone, PartialEq)]
struct Unit {
    begin_ms: i64,
    end_ms: i64,
    status: &'static str,
    pages: u32,
    count: u64,
}

/// The import window and its (range, status) units.
type Layout = ((i64, i64), Vec<Unit>);

/// The live N11 connector.
pub struct N11 {
    http: reqwest::Client,
    base: String,
    headers: HeaderMap,
    integrator: String,
    concurrency: usize,
    task_limit: RateLimiter,
    details_limit: RateLimiter,
    orders_limit: RateLimiter,
    layout: tokio::sync::Mutex<Option<Layout>>,
}

impl N11 {
    pub fn new(config: N11Config, http: reqwest::Client) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in [("appkey", &config.app_key), ("appsecret", &config.app_secret)] {
            let mut v = HeaderValue::from_str(value).expect("checked in from_settings");
            v.set_sensitive(true);
            headers.insert(name, v);
        }
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        N11 {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            headers,
            integrator: config.integrator,
            concurrency: config.concurrency,
            task_limit: RateLimiter::new(config.rate_limit),
            details_limit: RateLimiter::new(config.rate_limit),
            orders_limit: RateLimiter::new(ORDERS_RATE_LIMIT),
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
            ConnectorError::transient(format!("n11 {what} {kind}: {}", e.without_url()))
        })?;
        let status = response.status();
        let wait = crate::trendyol::retry_after(response.headers(), SystemTime::now());
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ConnectorError::transient(format!("n11 {what}: reading the response failed: {e}")))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ConnectorError::transient(format!("n11 {what}: response over {MAX_RESPONSE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            limiter.pause_for(wait.unwrap_or(Duration::from_secs(1))).await;
            return Err(ConnectorError::Transient {
                reason: format!("n11 {what}: 429 too many requests"),
                retry_after: wait,
            });
        }
        if status.is_server_error() {
            return Err(ConnectorError::Transient {
                reason: format!("n11 {what}: HTTP {} {}", status.as_u16(), error_text(&body)),
                retry_after: wait,
            });
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(ConnectorError::Fatal(format!(
                "n11 {what}: {} {} (check {APP_KEY_SETTING} and {APP_SECRET_SETTING})",
                status.as_u16(),
                error_text(&body)
            )));
        }
        Ok((status, body))
    }

    async fn task_page(&self, task_id: u64, page: u32) -> Result<TaskPage, ConnectorError> {
        let url = format!("{}/ms/product/task-details/page-query", self.base);
        let body = json!({ "taskId": task_id, "pageable": { "page": page, "size": MAX_ITEMS } });
        let request = self.http.post(url).json(&body);
        let (status, body) = self.send(&self.details_limit, "task details", request).await?;
        match status {
            StatusCode::OK => {
                parse_task_page(&body).ok_or_else(|| ConnectorError::transient("n11 task details: unreadable answer"))
            }
            StatusCode::NOT_FOUND => Ok(TaskPage::InQueue),
            s => Err(ConnectorError::Fatal(format!("n11 task details: HTTP {} {}", s.as_u16(), error_text(&body)))),
        }
    }

    async fn packages(
        &self,
        unit: (i64, i64, &str),
        page: u32,
        size: u32,
    ) -> Result<(Vec<Order>, u64), ConnectorError> {
        let url = format!("{}/rest/delivery/v1/shipmentPackages", self.base);
        let query = [
            ("startDate", unit.0.to_string()),
            ("endDate", unit.1.to_string()),
            ("status", unit.2.to_string()),
            ("page", page.to_string()),
            ("size", size.to_string()),
            ("orderByDirection", "ASC".to_string()),
            // Apply the range to the packages' last-modified date.
            ("orderByField", "true".to_string()),
        ];
        let (status, body) = self.send(&self.orders_limit, "orders", self.http.get(url).query(&query)).await?;
        if status != StatusCode::OK {
            return Err(ConnectorError::Fatal(format!("n11 orders: HTTP {} {}", status.as_u16(), error_text(&body))));
        }
        parse_packages(&body).ok_or_else(|| ConnectorError::transient("n11 orders: unreadable page"))
    }

    async fn layout(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Unit>, ConnectorError> {
        let mut cached = self.layout.lock().await;
        if let Some((key, units)) = cached.as_ref()
            && *key == (from_ms, to_ms)
        {
            return Ok(units.clone());
        }
        let mut units = Vec::new();
        let mut b = from_ms;
        while b <= to_ms {
            // Inclusive bounds on both ends: the next range starts a millisecond later.
            let e = (b + ORDERS_RANGE_MS - 1).min(to_ms);
            for status in STATUSES {
                let (_, count) = self.packages((b, e, status), 0, 1).await?;
                let pages = count.div_ceil(u64::from(ORDERS_PAGE_SIZE)).min(u64::from(u32::MAX)) as u32;
                units.push(Unit { begin_ms: b, end_ms: e, status, pages, count });
            }
            b = e + 1;
        }
        *cached = Some(((from_ms, to_ms), units.clone()));
        Ok(units)
    }
}

#[async_trait]
impl Connector for N11 {
    fn max_batch(&self) -> usize {
        MAX_ITEMS
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        if items.len() > MAX_ITEMS {
            return Err(ConnectorError::Fatal(format!("n11 push: {} items, at most {MAX_ITEMS}", items.len())));
        }
        let (skus, codes, refused) = plan_task(items);
        let mut receipt = Receipt { task_id: None, codes: Vec::new(), refused };
        if !skus.is_empty() {
            let url = format!("{}/ms/product/tasks/price-stock-update", self.base);
            let body = json!({ "payload": { "integrator": self.integrator, "skus": skus } });
            let (status, body) = self.send(&self.task_limit, "push", self.http.post(url).json(&body)).await?;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match (status, v.get("status").and_then(Value::as_str)) {
                (StatusCode::OK, Some("REJECT")) => {
                    return Ok(PushOutcome::Rejected {
                        reason: format!("REJECT {}", strings(v.get("reasons")).join("; ")),
                    });
                }
                (StatusCode::OK, _) => match v.get("id").and_then(Value::as_u64) {
                    Some(id) => {
                        receipt.task_id = Some(id);
                        receipt.codes = codes;
                    }
                    None => return Err(ConnectorError::transient("n11 push: 200 without a task id")),
                },
                (StatusCode::NOT_FOUND, _) => {
                    return Err(ConnectorError::Fatal(format!("n11 push: 404 (check {BASE_URL_SETTING})")));
                }
                (s, _) if s.is_client_error() => {
                    return Ok(PushOutcome::Rejected { reason: format!("HTTP {} {}", s.as_u16(), error_text(&body)) });
                }
                (s, _) => return Err(ConnectorError::transient(format!("n11 push: unexpected HTTP {}", s.as_u16()))),
            }
        }
        Ok(PushOutcome::Accepted { receipt: serde_json::to_string(&receipt).expect("receipt serializes") })
    }

    async fn batch_result(&self, receipt: &str) -> Result<BatchStatus, ConnectorError> {
        let receipt: Receipt = serde_json::from_str(receipt)
            .map_err(|e| ConnectorError::Fatal(format!("n11 batch result: unreadable receipt: {e}")))?;
        let mut results: Vec<ItemResult> = Vec::with_capacity(receipt.codes.len() + receipt.refused.len());
        if let Some(task_id) = receipt.task_id {
            let mut by_code: HashMap<String, ItemResult> = HashMap::with_capacity(receipt.codes.len());
            let mut page = 0;
            loop {
                match self.task_page(task_id, page).await? {
                    TaskPage::InQueue => return Ok(BatchStatus::InProgress),
                    TaskPage::Rejected(reasons) => {
                        let why = format!("task rejected: {}", reasons.join("; "));
                        for code in &receipt.codes {
                            by_code.insert(
                                code.clone(),
                                ItemResult { barcode: code.clone(), ok: false, reasons: vec![why.clone()] },
                            );
                        }
                        break;
                    }
                    TaskPage::Processed { results, total_pages } => {
                        for r in results {
                            by_code.insert(r.barcode.clone(), r);
                        }
                        page += 1;
                        if page >= total_pages {
                            break;
                        }
                    }
                }
            }
            for code in &receipt.codes {
                results.push(by_code.remove(code).unwrap_or_else(|| ItemResult {
                    barcode: code.clone(),
                    ok: false,
                    reasons: vec!["n11 processed the task without a result for this SKU".into()],
                }));
            }
        }
        results.extend(receipt.refused.into_iter().map(|(barcode, why)| ItemResult {
            barcode,
            ok: false,
            reasons: vec![why],
        }));
        Ok(BatchStatus::Done(results))
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        let layout = self.layout(from_ms, to_ms).await?;
        let total_pages: u32 = layout.iter().map(|u| u.pages).fold(0, u32::saturating_add);
        let total_orders: u64 = layout.iter().map(|u| u.count).sum();
        let mut skip = page;
        let Some(unit) = layout.iter().find(|u| {
            if skip < u.pages {
                return true;
            }
            skip -= u.pages;
            false
        }) else {
            return Ok(OrdersPage { orders: Vec::new(), total_pages, total_orders });
        };
        let (orders, _) = self.packages((unit.begin_ms, unit.end_ms, unit.status), skip, ORDERS_PAGE_SIZE).await?;
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

    #[test]
    fn test_config_defaults_redaction_and_problems() {
        let get = settings(&[(APP_KEY_SETTING, "k-123"), (APP_SECRET_SETTING, "s-456")]);
        assert!(configured(&get));
        let c = N11Config::from_settings(&get).unwrap();
        assert_eq!(c.base_url.as_str(), "https://api.n11.com/");
        assert_eq!(c.integrator, DEFAULT_INTEGRATOR);
        let debug = format!("{c:?}");
        assert!(!debug.contains("k-123") && !debug.contains("s-456"), "{debug}");
        let err = N11Config::from_settings(&settings(&[(RATE_LIMIT_SETTING, "x"), (BASE_URL_SETTING, "ftp://y")]))
            .unwrap_err();
        for needle in [APP_KEY_SETTING, APP_SECRET_SETTING, RATE_LIMIT_SETTING, BASE_URL_SETTING] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(!configured(&settings(&[(INTEGRATOR_SETTING, "x")])));
    }

    fn item(b: &str, q: Option<u32>, sale: Option<f64>, list: Option<f64>) -> Item {
        let money = |x: Option<f64>| x.map(|x| x.to_string().parse::<Money>().unwrap());
        Item { barcode: b.into(), quantity: q, sale_price: money(sale), list_price: money(list) }
    }

    #[test]
    fn test_plan_refuses_what_n11_refuses_before_sending() {
        let (skus, codes, refused) = plan_task(&[
            item("ok", Some(2), Some(1600.0), Some(2000.0)),
            item("stock", Some(5), None, None),
            item("equal", None, Some(10.5), Some(10.5)),
            item("below", Some(1), Some(20.0), Some(19.99)),
            item("half", None, Some(5.0), None),
            item("cents", None, Some(1.005), Some(2.0)),
            item("huge", Some(1_000_000), None, None),
        ]);
        assert_eq!(codes, vec!["ok", "stock", "equal"]);
        assert_eq!(
            skus[0],
            json!({"stockCode":"ok","quantity":2,"listPrice":2000.0,"salePrice":1600.0,"currencyType":"TL"})
        );
        assert_eq!(skus[1], json!({"stockCode":"stock","quantity":5}));
        let why: HashMap<&str, &str> = refused.iter().map(|(b, w)| (b.as_str(), w.as_str())).collect();
        assert!(why["below"].contains("listPrice ≥ salePrice"), "{why:?}");
        assert!(why["half"].contains("together"));
        assert!(why["cents"].contains("two decimals"));
        assert!(why["huge"].contains("999999"));
        assert_eq!(refused.len(), 4);
    }

    #[test]
    fn test_task_pages() {
        assert_eq!(parse_task_page(br#"{"status":"IN_QUEUE"}"#), Some(TaskPage::InQueue));
        assert_eq!(
            parse_task_page(br#"{"status":"REJECT","reasons":["bad"]}"#),
            Some(TaskPage::Rejected(vec!["bad".into()]))
        );
        let body = br#"{"status":"PROCESSED","skus":{"content":[
            {"itemCode":"a","status":"SUCCESS","reasons":[]},{"itemCode":"b","status":"FAIL","reasons":[]}],"totalPages":1}}"#;
        let Some(TaskPage::Processed { results, total_pages }) = parse_task_page(body) else { panic!() };
        assert_eq!(total_pages, 1);
        assert!(results[0].ok && !results[1].ok && !results[1].reasons.is_empty());
    }

    #[test]
    fn test_packages_become_orders() {
        let body = br#"{"content":[{"id":7,"orderNumber":"N1","shipmentPackageStatus":"Created","lastModifiedDate":1000,
            "lines":[{"stockCode":"S","quantity":2,"price":10.5,"sellerInvoiceAmount":21.0},{"stockCode":"T","quantity":1,"price":3}]}],
            "totalElements":1,"totalPages":1}"#;
        let (orders, total) = parse_packages(body).unwrap();
        assert_eq!(total, 1);
        assert_eq!(orders[0].package_id, "7");
        assert_eq!(orders[0].total, Money::from(24));
        assert_eq!(orders[0].lines.len(), 2);
    }
}
