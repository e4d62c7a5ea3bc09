//! Ozon's Seller API (<https://docs.ozon.ru/api/seller/>): stock and price push, FBS postings.
//!
//! Every request is a `POST` with a JSON body and the `Client-Id` / `Api-Key` headers. Stocks
//! (`/v2/products/stocks`) and prices (`/v1/product/import/prices`) are answered per item in the
//! same response, so a push ends in [`PushOutcome::Completed`] and nothing is polled.
//!
//! Limits, all respected before Ozon has to refuse:
//! - stocks: at most 100 product-warehouse pairs per call and 80 calls a minute per seller
//!   account; one update of a pair every 30 s (a pair changed more recently holds the push back
//!   until it may go, like a 429 would);
//! - prices: at most 1,000 per call; 10 changes per product per hour (an item over that is
//!   reported failed with the time it may change again, never sent and never dropped silently);
//! - every method without its own limit: 50 requests a second per `Client-Id`;
//! - a 429 pauses the endpoint for its `Retry-After`.
//!
//! The per-product limits are kept in this connector, so per handler process: two instances, or
//! a restart, may together exceed them, and Ozon then answers the item with `TOO_MANY_REQUESTS`
//! or its limit message, which is reported as that item's failure.
//!
//! A push of up to 1,000 items makes one price call and up to ten stock calls. Each answered call
//! is remembered (by its exact body, for [`ANSWER_MEMORY`]) so that a push retried after a later
//! call failed does not send the answered ones again: Ozon has no idempotency key, and a repeat
//! would be refused per item (30 s rule) or use up the price budget.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::answered::{AnsweredCalls, digest};
use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, OrderLine, OrdersPage, PushOutcome};
use crate::rate_limit::{KeyedWindow, RateLimit, RateLimiter};
use crate::request::Item;
use crate::trendyol::{read_capped, retry_after};

pub const BASE_URL_SETTING: &str = meschain_model::settings::OZON_BASE_URL;
pub const CLIENT_ID_SETTING: &str = meschain_model::settings::OZON_CLIENT_ID;
pub const API_KEY_SETTING: &str = meschain_model::settings::OZON_API_KEY;
pub const WAREHOUSE_ID_SETTING: &str = meschain_model::settings::OZON_WAREHOUSE_ID;
pub const CURRENCY_SETTING: &str = meschain_model::settings::OZON_CURRENCY;

pub const DEFAULT_BASE_URL: &str = "https://api-seller.ozon.ru";
/// Documented: at most 100 product-warehouse pairs per stocks call.
pub const MAX_STOCKS_PER_CALL: usize = 100;
/// Documented: at most 1,000 prices per call.
pub const MAX_PRICES_PER_CALL: usize = 1000;
/// Documented: 80 stocks calls a minute per seller account.
pub const STOCKS_RATE: RateLimit = RateLimit { requests: 80, per: Duration::from_secs(60) };
/// Documented default for methods without their own limit: 50 requests a second per Client-Id.
pub const DEFAULT_RATE: RateLimit = RateLimit { requests: 50, per: Duration::from_secs(1) };
/// Documented: each product-warehouse pair at most once per 30 s.
pub const STOCK_PAIR_LIMIT: RateLimit = RateLimit { requests: 1, per: Duration::from_secs(30) };
/// Documented: each product's price at most 10 times an hour.
pub const PRICE_CHANGE_LIMIT: RateLimit = RateLimit { requests: 10, per: Duration::from_secs(3600) };
/// Documented: `STOCK_TOO_BIG` from 1,000,000.
pub const MAX_STOCK: u32 = 999_999;
/// Documented: 1..100 postings per page.
pub const ORDERS_PAGE_SIZE: u32 = 100;
/// Currencies Ozon accepts in `currency_code` (it must be the account's).
pub const CURRENCIES: [&str; 6] = ["RUB", "BYN", "KZT", "EUR", "USD", "CNY"];
/// How long an answered call is remembered, so a retried push does not send it again.
pub const ANSWER_MEMORY: Duration = Duration::from_secs(600);
/// Answered calls remembered at most (about 10 KB each).
const ANSWER_MEMORY_ENTRIES: usize = 512;
const DEFAULT_CONCURRENCY: usize = 4;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Ozon's orders filter spans at most a year.
const MAX_ORDERS_SPAN_MS: i64 = 365 * 24 * 3600 * 1000 - 60_000;

/// Ozon's settings. `Debug` never shows the API key.
#[derive(Clone)]
pub struct OzonConfig {
    pub base_url: url::Url,
    pub client_id: String,
    pub api_key: String,
    pub warehouse_id: i64,
    pub currency: String,
    pub concurrency: usize,
}

impl fmt::Debug for OzonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OzonConfig")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .field("api_key", &"<redacted>")
            .field("warehouse_id", &self.warehouse_id)
            .field("currency", &self.currency)
            .finish()
    }
}

/// Whether any Ozon credential is set (then Ozon is meant to run live).
pub fn configured(get: &dyn Fn(&str) -> Option<String>) -> bool {
    [CLIENT_ID_SETTING, API_KEY_SETTING].iter().any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

impl OzonConfig {
    /// Reads the `OZON_*` settings; every problem is reported at once, by name.
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
        let client_id = get(CLIENT_ID_SETTING).unwrap_or_default();
        if client_id.is_empty() || client_id.len() > 20 || !client_id.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(format!("{CLIENT_ID_SETTING} must be the numeric Client-Id"));
        }
        let api_key = get(API_KEY_SETTING).unwrap_or_default();
        if api_key.is_empty() {
            problems.push(format!("{API_KEY_SETTING} is required"));
        } else if HeaderValue::from_str(&api_key).is_err() {
            problems.push(format!("{API_KEY_SETTING} holds characters a header cannot carry"));
        }
        let warehouse_id = match get(WAREHOUSE_ID_SETTING).map(|s| s.parse::<i64>()) {
            Some(Ok(id)) if id > 0 => id,
            _ => {
                problems
                    .push(format!("{WAREHOUSE_ID_SETTING} must be the numeric warehouse id (from /v1/warehouse/list)"));
                0
            }
        };
        let currency = get(CURRENCY_SETTING).unwrap_or_else(|| "RUB".into()).to_ascii_uppercase();
        if !CURRENCIES.contains(&currency.as_str()) {
            problems.push(format!("{CURRENCY_SETTING} must be one of {}", CURRENCIES.join(", ")));
        }
        match base_url {
            Some(base_url) if problems.is_empty() => Ok(OzonConfig {
                base_url,
                client_id,
                api_key,
                warehouse_id,
                currency,
                concurrency: DEFAULT_CONCURRENCY,
            }),
            _ => Err(format!("ozon connector: {}", problems.join("; "))),
        }
    }
}

/// One item's fate in one call: `Ok` or the reasons it failed.
type Fate = Result<(), Vec<String>>;

/// The live Ozon connector.
pub struct Ozon {
    http: reqwest::Client,
    base: String,
    headers: HeaderMap,
    warehouse_id: i64,
    currency: String,
    concurrency: usize,
    stocks_limit: RateLimiter,
    prices_limit: RateLimiter,
    orders_limit: RateLimiter,
    stock_pairs: Mutex<KeyedWindow>,
    price_changes: Mutex<KeyedWindow>,
    answered: Mutex<AnsweredCalls<Arc<HashMap<String, Fate>>>>,
    /// The cursor that reads page `n` of an orders window, per window (only the latest kept).
    cursors: Mutex<HashMap<(i64, i64, u32), String>>,
}

impl Ozon {
    pub fn new(config: OzonConfig, http: reqwest::Client) -> Self {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(&config.api_key).expect("checked in from_settings");
        key.set_sensitive(true);
        headers.insert(HeaderName::from_static("api-key"), key);
        headers.insert(
            HeaderName::from_static("client-id"),
            HeaderValue::from_str(&config.client_id).expect("digits are a valid header value"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ozon {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            headers,
            warehouse_id: config.warehouse_id,
            currency: config.currency,
            concurrency: config.concurrency,
            stocks_limit: RateLimiter::new(STOCKS_RATE),
            prices_limit: RateLimiter::new(DEFAULT_RATE),
            orders_limit: RateLimiter::new(DEFAULT_RATE),
            stock_pairs: Mutex::new(KeyedWindow::new(STOCK_PAIR_LIMIT)),
            price_changes: Mutex::new(KeyedWindow::new(PRICE_CHANGE_LIMIT)),
            answered: Mutex::new(AnsweredCalls::new(ANSWER_MEMORY, ANSWER_MEMORY_ENTRIES)),
            cursors: Mutex::new(HashMap::new()),
        }
    }

    /// Posts `body` to `path` under `limiter`: the status and body of an answer Ozon gave
    /// (2xx or a 4xx other than auth), or the transient/fatal error.
    async fn post(
        &self,
        limiter: &RateLimiter,
        what: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        limiter.acquire().await;
        let request = self.http.post(format!("{}{path}", self.base)).headers(self.headers.clone()).body(body);
        let response = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timed out" } else { "failed" };
            ConnectorError::transient(format!("ozon {what} {kind}: {e}"))
        })?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = read_capped(response).await.map_err(|e| ConnectorError::transient(format!("ozon {what}: {e}")))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limiter.pause_for(retry_after.unwrap_or(Duration::from_secs(1))).await;
            return Err(ConnectorError::Transient {
                reason: format!("ozon {what}: 429 {}", error_text(&body)),
                retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            });
        }
        if status.is_server_error() {
            return Err(ConnectorError::Transient {
                reason: format!("ozon {what}: HTTP {} {}", status.as_u16(), error_text(&body)),
                retry_after,
            });
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ConnectorError::Fatal(format!(
                "ozon {what}: HTTP {} {} (check {CLIENT_ID_SETTING} and {API_KEY_SETTING})",
                status.as_u16(),
                error_text(&body)
            ))),
            StatusCode::NOT_FOUND => {
                Err(ConnectorError::Fatal(format!("ozon {what}: 404 {} (check {BASE_URL_SETTING})", error_text(&body))))
            }
            _ => Ok((status, body)),
        }
    }

    /// Sends one call of `keys` (already within the per-product limits) unless an identical one
    /// was answered recently; the fate of each key.
    async fn call(
        &self,
        what: &str,
        path: &str,
        limiter: &RateLimiter,
        body: Value,
        keys: &[String],
        key_of: fn(&Value) -> String,
    ) -> Result<(Arc<HashMap<String, Fate>>, bool), ConnectorError> {
        let body = serde_json::to_vec(&body).expect("json serializes");
        let body_digest = digest(&body);
        if let Some(fates) = self.answered.lock().unwrap().get(&body_digest, Instant::now()) {
            return Ok((fates, false));
        }
        let (status, answer) = self.post(limiter, what, path, body).await?;
        let fates = if status.is_success() {
            parse_item_results(&answer, keys, key_of)
        } else {
            // A 400/409 refuses the whole call: each of its items failed with Ozon's reason.
            let reason = format!("ozon refused the {what} call: HTTP {} {}", status.as_u16(), error_text(&answer));
            keys.iter().map(|k| (k.clone(), Err(vec![reason.clone()]))).collect()
        };
        let fates = Arc::new(fates);
        self.answered.lock().unwrap().put(body_digest, Instant::now(), fates.clone());
        Ok((fates, true))
    }

    async fn push_prices(
        &self,
        prices: &[(String, &Item)],
        fates: &mut HashMap<String, Vec<String>>,
    ) -> Result<(), ConnectorError> {
        if prices.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut send = Vec::with_capacity(prices.len());
        {
            let window = self.price_changes.lock().unwrap();
            for (barcode, item) in prices {
                match window.check(barcode, now) {
                    Ok(()) => send.push((barcode.clone(), *item)),
                    Err(wait) => fates.entry(barcode.clone()).or_default().push(format!(
                        "price not sent: Ozon allows {} price changes per product per hour; this product may change again in {} s",
                        PRICE_CHANGE_LIMIT.requests,
                        wait.as_secs().max(1)
                    )),
                }
            }
        }
        if send.is_empty() {
            return Ok(());
        }
        let body =
            json!({ "prices": send.iter().map(|(b, item)| price_entry(b, item, &self.currency)).collect::<Vec<_>>() });
        let keys: Vec<String> = send.iter().map(|(b, _)| b.clone()).collect();
        let (answer, sent) = self
            .call("prices", "/v1/product/import/prices", &self.prices_limit, body, &keys, |v| text(v, "offer_id"))
            .await?;
        if sent {
            // Counted once Ozon answered (a 5xx or a timeout changed nothing), whatever each item's fate.
            let mut window = self.price_changes.lock().unwrap();
            let now = Instant::now();
            for k in &keys {
                window.record(k, now);
            }
        }
        merge(fates, &keys, &answer, "price");
        Ok(())
    }

    async fn push_stocks(
        &self,
        stocks: &[(String, u32)],
        fates: &mut HashMap<String, Vec<String>>,
    ) -> Result<(), ConnectorError> {
        for chunk in stocks.chunks(MAX_STOCKS_PER_CALL) {
            let body = json!({ "stocks": chunk.iter().map(|(b, q)| json!({ "offer_id": b, "stock": q, "warehouse_id": self.warehouse_id })).collect::<Vec<_>>() });
            let keys: Vec<String> = chunk.iter().map(|(b, _)| b.clone()).collect();
            let bytes = serde_json::to_vec(&body).expect("json serializes");
            let now = Instant::now();
            if self.answered.lock().unwrap().get(&digest(&bytes), now).is_none() {
                let pairs = self.stock_pairs.lock().unwrap();
                let wait = keys.iter().filter_map(|k| pairs.check(&pair_key(k, self.warehouse_id), now).err()).max();
                if let Some(wait) = wait {
                    return Err(ConnectorError::Transient {
                        reason: format!(
                            "ozon stocks: a product in this batch had its stock on warehouse {} set less than 30 s ago (Ozon allows one update per product and warehouse every 30 s)",
                            self.warehouse_id
                        ),
                        retry_after: Some(wait),
                    });
                }
            }
            let (answer, sent) = self
                .call("stocks", "/v2/products/stocks", &self.stocks_limit, body, &keys, |v| text(v, "offer_id"))
                .await?;
            if sent {
                // Recorded once Ozon answered: a call that failed changed no stock.
                let mut pairs = self.stock_pairs.lock().unwrap();
                let now = Instant::now();
                for k in &keys {
                    pairs.record(&pair_key(k, self.warehouse_id), now);
                }
            }
            merge(fates, &keys, &answer, "stock");
        }
        Ok(())
    }

    async fn orders_page(
        &self,
        from_ms: i64,
        to_ms: i64,
        cursor: &str,
    ) -> Result<(Vec<Order>, String, bool), ConnectorError> {
        let since = to_ms.saturating_sub(MAX_ORDERS_SPAN_MS).min(from_ms);
        let body = json!({
            "cursor": cursor,
            "filter": {
                "since": rfc3339(since),
                "to": rfc3339(to_ms + 999),
                "last_changed_status_date": { "from": rfc3339(from_ms), "to": rfc3339(to_ms + 999) },
            },
            "limit": ORDERS_PAGE_SIZE,
            "sort_dir": "ASC",
            "with": { "analytics_data": false, "financial_data": false, "barcodes": false, "legal_info": false },
        });
        let body = serde_json::to_vec(&body).expect("json serializes");
        let (status, answer) = self.post(&self.orders_limit, "orders", "/v4/posting/fbs/list", body).await?;
        if !status.is_success() {
            return Err(ConnectorError::Fatal(format!(
                "ozon orders: HTTP {} {}",
                status.as_u16(),
                error_text(&answer)
            )));
        }
        parse_postings(&answer).ok_or_else(|| ConnectorError::transient("ozon orders: unreadable page"))
    }
}

fn pair_key(offer_id: &str, warehouse_id: i64) -> String {
    format!("{offer_id}\u{1f}{warehouse_id}")
}

fn text(v: &Value, field: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or("").to_string()
}

/// One price entry: `price` is the sale price, `old_price` the crossed-out list price (`"0"`
/// removes it when list and sale are equal). Decimal strings, as Ozon requires.
fn price_entry(barcode: &str, item: &Item, currency: &str) -> Value {
    let mut entry = json!({ "offer_id": barcode, "currency_code": currency });
    if let Some(sale) = &item.sale_price {
        entry["price"] = Value::String(sale.to_string());
    }
    if let Some(list) = &item.list_price {
        let crossed_out = item.sale_price.as_ref().is_none_or(|sale| list > sale);
        entry["old_price"] = Value::String(if crossed_out { list.to_string() } else { "0".into() });
    }
    entry
}

/// Adds `answer`'s fates of `keys` to `fates` (an item with no failure gets an empty entry).
fn merge(fates: &mut HashMap<String, Vec<String>>, keys: &[String], answer: &HashMap<String, Fate>, what: &str) {
    for k in keys {
        let reasons = fates.entry(k.clone()).or_default();
        match answer.get(k) {
            Some(Ok(())) => {}
            Some(Err(r)) => reasons.extend(r.iter().map(|r| format!("{what}: {r}"))),
            None => reasons.push(format!("{what}: Ozon's answer did not mention this item")),
        }
    }
}

/// Per-item results of a stocks or prices answer (`result[]` with `updated` and `errors[]`).
/// An answer that cannot be read fails every item with that reason: the call may have applied,
/// so it is not retried.
fn parse_item_results(body: &[u8], keys: &[String], key_of: fn(&Value) -> String) -> HashMap<String, Fate> {
    let results =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("result").and_then(Value::as_array).cloned());
    let Some(results) = results else {
        let reason = "Ozon answered 200 with a body that is not its documented result".to_string();
        return keys.iter().map(|k| (k.clone(), Err(vec![reason.clone()]))).collect();
    };
    let mut fates = HashMap::with_capacity(results.len());
    for r in &results {
        let errors: Vec<String> = r
            .get("errors")
            .and_then(Value::as_array)
            .map(|e| {
                e.iter()
                    .map(|e| {
                        let code = e.get("code").and_then(Value::as_str).unwrap_or("");
                        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                        match (code.is_empty(), message.is_empty()) {
                            (false, false) => format!("{code}: {message}"),
                            (false, true) => code.to_string(),
                            _ => message.to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let updated = r.get("updated").and_then(Value::as_bool).unwrap_or(false);
        let fate = if updated && errors.is_empty() {
            Ok(())
        } else if errors.is_empty() {
            Err(vec!["not updated (Ozon gave no reason)".to_string()])
        } else {
            Err(errors)
        };
        fates.insert(key_of(r), fate);
    }
    fates
}

/// Whole seconds (Ozon's documented `YYYY-MM-DDThh:mm:ssZ`), rounded down: callers add 999 ms to
/// an end so that it still covers its last second.
fn rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

/// A money amount from a JSON string or number (exact: parsed from its text).
pub(crate) fn money<T: std::str::FromStr + Default>(v: Option<&Value>) -> T {
    match v {
        Some(Value::String(s)) => s.trim().parse().unwrap_or_default(),
        Some(Value::Number(n)) => n.to_string().parse().unwrap_or_default(),
        _ => T::default(),
    }
}

/// Σ unit price × quantity, in the order model's money type.
pub(crate) fn sum_of_lines<T>(lines: impl Iterator<Item = (T, u32)>) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T> + From<u32>,
{
    lines.fold(T::default(), |sum, (unit, quantity)| sum + unit * T::from(quantity))
}

/// One page of `/v4/posting/fbs/list`: postings as orders, the next cursor, whether there is more.
pub fn parse_postings(body: &[u8]) -> Option<(Vec<Order>, String, bool)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let postings = v.get("postings")?.as_array()?;
    let mut orders = Vec::with_capacity(postings.len());
    for p in postings {
        let products = p.get("products").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let mut currency = String::new();
        let lines: Vec<OrderLine> = products
            .iter()
            .map(|l| {
                // `price` is `{amount, currency}` in v4 and was a plain string before.
                let (unit_price, c) = match l.get("price") {
                    Some(Value::Object(o)) => (money(o.get("amount")), o.get("currency").and_then(Value::as_str)),
                    other => (money(other), l.get("currency_code").and_then(Value::as_str)),
                };
                if currency.is_empty() {
                    currency = c.unwrap_or("").to_string();
                }
                OrderLine {
                    barcode: text(l, "offer_id"),
                    quantity: l.get("quantity").and_then(Value::as_u64).unwrap_or(1).min(u64::from(u32::MAX)) as u32,
                    unit_price,
                }
            })
            .collect();
        let total = sum_of_lines(lines.iter().map(|l| (l.unit_price, l.quantity)));
        let at = |field: &str| {
            p.get(field)
                .and_then(Value::as_str)
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        };
        orders.push(Order {
            package_id: text(p, "posting_number"),
            order_number: p
                .get("order_number")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| p.get("order_id").map(Value::to_string).unwrap_or_default()),
            status: text(p, "status"),
            total,
            currency: if currency.is_empty() { "RUB".into() } else { currency },
            last_modified: at("in_process_at").unwrap_or(0),
            lines,
        });
    }
    let cursor = v.get("cursor").and_then(Value::as_str).unwrap_or("").to_string();
    let has_next = v.get("has_next").and_then(Value::as_bool).unwrap_or(false) && !cursor.is_empty();
    Some((orders, cursor, has_next))
}

/// A short description of an error body: Ozon's `rpcStatus` (`code` number or string, `message`).
pub fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let cut = body.len().min(200);
        return String::from_utf8_lossy(&body[..cut]).into_owned();
    };
    let message = v.get("message").and_then(Value::as_str).unwrap_or("");
    let mut text = match v.get("code") {
        Some(Value::Number(n)) => format!("code {n}: {message}"),
        Some(Value::String(s)) if !s.is_empty() => format!("{s}: {message}"),
        _ => message.to_string(),
    };
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

#[async_trait]
impl Connector for Ozon {
    fn max_batch(&self) -> usize {
        MAX_PRICES_PER_CALL
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        if items.len() > MAX_PRICES_PER_CALL {
            return Err(ConnectorError::Fatal(format!(
                "ozon push: {} items, at most {MAX_PRICES_PER_CALL}",
                items.len()
            )));
        }
        // The last change of a product in the batch wins: sending both would break the 30 s rule
        // or spend the price budget on a value that is replaced at once.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            last.insert(item.barcode.as_str(), i);
        }
        let mut stocks = Vec::new();
        let mut prices = Vec::new();
        let mut fates: HashMap<String, Vec<String>> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if last.get(item.barcode.as_str()) != Some(&i) {
                continue;
            }
            let mut anything = false;
            if let Some(q) = item.quantity {
                anything = true;
                if q > MAX_STOCK {
                    fates
                        .entry(item.barcode.clone())
                        .or_default()
                        .push(format!("stock: STOCK_TOO_BIG: at most {MAX_STOCK}"));
                } else {
                    stocks.push((item.barcode.clone(), q));
                }
            }
            if item.sale_price.is_some() || item.list_price.is_some() {
                anything = true;
                prices.push((item.barcode.clone(), item));
            }
            if !anything {
                fates.entry(item.barcode.clone()).or_default().push("nothing to update: no quantity or price".into());
            }
        }
        self.push_prices(&prices, &mut fates).await?;
        self.push_stocks(&stocks, &mut fates).await?;
        let results = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut reasons = fates.get(&item.barcode).cloned().unwrap_or_default();
                if last.get(item.barcode.as_str()) != Some(&i) {
                    reasons.push("superseded by a later change of the same product in this batch".into());
                    return ItemResult { barcode: item.barcode.clone(), ok: false, reasons };
                }
                ItemResult { barcode: item.barcode.clone(), ok: reasons.is_empty(), reasons }
            })
            .collect();
        Ok(PushOutcome::Completed(results))
    }

    async fn batch_result(&self, _receipt: &str) -> Result<BatchStatus, ConnectorError> {
        Err(ConnectorError::Fatal("ozon answers every item with the push itself: there is no batch to poll".into()))
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        let known = self.cursors.lock().unwrap().get(&(from_ms, to_ms, page)).cloned();
        // A page whose cursor this process never saw (a restart mid-import) is reached by
        // walking from the first page.
        let (mut at, mut cursor) = match known {
            Some(c) => (page, c),
            None => (0, String::new()),
        };
        loop {
            let (orders, next, has_next) = self.orders_page(from_ms, to_ms, &cursor).await?;
            if has_next {
                let mut cursors = self.cursors.lock().unwrap();
                cursors.retain(|(f, t, _), _| (*f, *t) == (from_ms, to_ms));
                cursors.insert((from_ms, to_ms, at + 1), next.clone());
            }
            if at == page || !has_next {
                let pages = if at == page && has_next { page + 2 } else { at + 1 };
                let orders = if at == page { orders } else { Vec::new() };
                let seen = u64::from(page) * u64::from(ORDERS_PAGE_SIZE) + orders.len() as u64;
                return Ok(OrdersPage { orders, total_pages: pages, total_orders: seen });
            }
            at += 1;
            cursor = next;
        }
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
    fn test_config_defaults_and_redaction() {
        let get = settings(&[
            (CLIENT_ID_SETTING, "836"),
            (API_KEY_SETTING, "k-s3cret"),
            (WAREHOUSE_ID_SETTING, "22142605386000"),
        ]);
        let c = OzonConfig::from_settings(&get).unwrap();
        assert_eq!(c.base_url.as_str(), "https://api-seller.ozon.ru/");
        assert_eq!(c.currency, "RUB");
        assert!(!format!("{c:?}").contains("k-s3cret"));
        assert!(configured(&get));
        assert!(!configured(&settings(&[(WAREHOUSE_ID_SETTING, "1")])));
    }

    #[test]
    fn test_config_reports_every_problem_by_name() {
        let get = settings(&[(CLIENT_ID_SETTING, "abc"), (CURRENCY_SETTING, "TRY"), (BASE_URL_SETTING, "ftp://x")]);
        let err = OzonConfig::from_settings(&get).unwrap_err();
        for needle in [CLIENT_ID_SETTING, API_KEY_SETTING, WAREHOUSE_ID_SETTING, CURRENCY_SETTING, BASE_URL_SETTING] {
            assert!(err.contains(needle), "{needle} missing: {err}");
        }
    }

    #[test]
    fn test_item_results_read_per_item() {
        let keys: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let body = br#"{"result":[{"offer_id":"a","updated":true,"errors":[]},
            {"offer_id":"b","updated":false,"errors":[{"code":"TOO_MANY_REQUESTS","message":"wait"}]}]}"#;
        let fates = parse_item_results(body, &keys, |v| text(v, "offer_id"));
        assert_eq!(fates["a"], Ok(()));
        assert_eq!(fates["b"], Err(vec!["TOO_MANY_REQUESTS: wait".to_string()]));
        let mut merged = HashMap::new();
        merge(&mut merged, &keys, &fates, "stock");
        assert_eq!(merged["c"], vec!["stock: Ozon's answer did not mention this item".to_string()]);
        let unreadable = parse_item_results(b"<html>", &keys, |v| text(v, "offer_id"));
        assert!(unreadable.values().all(|f| f.is_err()));
    }

    #[test]
    fn test_error_text_code_number_or_string() {
        assert_eq!(
            error_text(br#"{"code":8,"message":"You have reached request rate limit per second"}"#),
            "code 8: You have reached request rate limit per second"
        );
        assert_eq!(error_text(br#"{"code":"NOT_FOUND","message":"x"}"#), "NOT_FOUND: x");
        assert_eq!(error_text(b"Circle is open"), "Circle is open");
    }

    #[test]
    fn test_postings_page() {
        let body =
            br#"{"cursor":"c2","has_next":true,"postings":[{"posting_number":"P-1","order_id":7,"order_number":"O-1",
            "status":"awaiting_packaging","in_process_at":"2026-11-01T10:00:00Z",
            "products":[{"offer_id":"A","quantity":2,"price":{"amount":"10.50","currency":"RUB"}}]}]}"#;
        let (orders, cursor, more) = parse_postings(body).unwrap();
        assert_eq!((cursor.as_str(), more), ("c2", true));
        assert_eq!(orders[0].package_id, "P-1");
        assert_eq!(orders[0].lines[0].quantity, 2);
        assert_eq!(orders[0].total.to_string().parse::<f64>().unwrap(), 21.0);
        assert_eq!(orders[0].last_modified, 1_793_527_200_000);
        let (_, _, more) = parse_postings(br#"{"cursor":"","has_next":false,"postings":[]}"#).unwrap();
        assert!(!more);
    }
}
