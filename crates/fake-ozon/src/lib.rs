//! A local fake of Ozon's Seller API (<https://docs.ozon.ru/api/seller/>), for tests and
//! benchmarks that must not reach the real marketplace. It follows the documented contract,
//! errors and limits included, and shares no code with the connector: it is an independent
//! check of it.
//!
//! - Every method checks `Client-Id` and `Api-Key` (refused with 401 and Ozon's message;
//!   UNDOCUMENTED: Ozon does not state the status of a bad key).
//! - `POST /v2/products/stocks`: at most 100 pairs (400), 80 calls a minute per account (429 with
//!   `Retry-After` and `Ratelimit-Remaining: 0`), answered per item: `NOT_FOUND_ERROR` for a
//!   product Ozon does not know, `WAREHOUSE_NOT_FOUND`, `STOCK_TOO_BIG` (from 1,000,000),
//!   `TOO_MANY_REQUESTS` for a pair updated less than 30 s ago.
//! - `POST /v1/product/import/prices`: at most 1,000 (400), prices as strings (a number is a 400,
//!   as Ozon's gateway refuses a wrong JSON type), 50 calls a second; per item `NOT_FOUND_ERROR`,
//!   `price_negative`, the documented message once a product's price changed 10 times within an
//!   hour, and (UNDOCUMENTED codes) an `old_price` not above `price` or a currency other than
//!   the account's.
//! - `POST /v4/posting/fbs/list`: `filter.since`/`filter.to` required and at most a year apart,
//!   `limit` 1..100, optional `last_changed_status_date`, pages by an opaque `cursor` with
//!   `has_next`.
//! - `GET /items?total=N`: an `itemsUrl` source generating `N` items on the fly.
//! - `GET /_fake/stats`, `POST /_fake/faults`: what was applied, and fault injection (the next
//!   pushes answer 429 or 5xx, a product refused, products made known), for tests in any language.
//!
//! Products must be known before their stock or price can be set (on Ozon they are created
//! first); [`Config::know_every_product`] makes every product known, for benchmarks and
//! end-to-end runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const MAX_STOCKS_PER_CALL: usize = 100;
pub const MAX_PRICES_PER_CALL: usize = 1000;
pub const MAX_STOCK: u64 = 999_999;
pub const MAX_POSTINGS_PAGE: u64 = 100;
/// The documented item error once a product's price changed 10 times within an hour.
pub const PRICE_LIMIT_MESSAGE: &str = "error limiting: acquire limit per item: items limit: limit exceeded";
pub const BAD_KEY_MESSAGE: &str = "Invalid Api-Key, please check the key and try again";
/// The documented body of a 429.
pub const RATE_LIMIT_MESSAGE: &str = "You have reached request rate limit per second";

/// How the fake behaves; [`Config::default`] is the documented contract.
#[derive(Clone)]
pub struct Config {
    pub client_id: String,
    pub api_key: String,
    pub warehouse_id: i64,
    pub currency: String,
    /// Stocks calls per minute per account (documented 80); `None` disables it.
    pub stocks_per_minute: Option<u32>,
    /// Calls per second of the other methods (documented 50); `None` disables it.
    pub calls_per_second: Option<u32>,
    /// One stock update per product and warehouse within this (documented 30 s).
    pub stock_pair_interval: Duration,
    /// Price changes per product per hour (documented 10).
    pub price_changes_per_hour: u32,
    /// Every product is known (else only those made known).
    pub know_every_product: bool,
    /// The `Retry-After` of a 429 (documented: sent, seconds).
    pub retry_after_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_id: "836".into(),
            api_key: "fake-ozon-api-key".into(),
            warehouse_id: 22_142_605_386_000,
            currency: "RUB".into(),
            stocks_per_minute: Some(80),
            calls_per_second: Some(50),
            stock_pair_interval: Duration::from_secs(30),
            price_changes_per_hour: 10,
            know_every_product: false,
            retry_after_seconds: 1,
        }
    }
}

/// Faults a test queues at run time (also through `POST /_fake/faults`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Statuses the next stocks/prices calls answer with, in order (429 carries `Retry-After`;
    /// 0 lets that call through).
    #[serde(default)]
    pub push: Vec<u16>,
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Products refused per item (`NOT_FOUND_ERROR`-like with a reason).
    #[serde(default)]
    pub refuse: Vec<String>,
    /// Products made known.
    #[serde(default)]
    pub know: Vec<String>,
}

/// What the fake has seen, for assertions.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub stock_calls: u64,
    pub price_calls: u64,
    pub items_applied: u64,
    pub items_failed: u64,
    pub largest_stock_call: u64,
    pub largest_price_call: u64,
    pub rejected_auth: u64,
    pub rejected_too_many_items: u64,
    pub rate_limited: u64,
    pub pair_limited: u64,
    pub price_limited: u64,
    pub injected_faults: u64,
    pub posting_pages: u64,
    /// Products whose update was applied more than once.
    pub applied_more_than_once: u64,
}

/// One request and its answer, kept (the first [`EXCHANGES_KEPT`]) so tests can check both
/// against Ozon's OpenAPI.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub path: String,
    pub request: Value,
    pub status: u16,
    pub response: Value,
}

pub const EXCHANGES_KEPT: usize = 200;

#[derive(Clone)]
struct Posting {
    changed_ms: i64,
    number: u32,
}

#[derive(Default)]
struct Ledger {
    stats: Stats,
    faults: Faults,
    known: HashSet<String>,
    refused: HashSet<String>,
    applied: HashMap<String, u32>,
    stock: HashMap<String, u64>,
    pair_updated: HashMap<String, Instant>,
    price_changes: HashMap<String, VecDeque<Instant>>,
    windows: HashMap<&'static str, VecDeque<Instant>>,
    postings: Vec<Posting>,
    exchanges: Vec<Exchange>,
}

struct Shared {
    config: Config,
    ledger: Mutex<Ledger>,
}

/// A running fake; stop it with [`FakeOzon::shutdown`].
pub struct FakeOzon {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// Serves the fake on `listener` (bind it to `127.0.0.1:0`).
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<FakeOzon> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared { config, ledger: Mutex::new(Ledger::default()) });
    let (stop, mut stopped) = watch::channel(false);
    let app = Router::new()
        .route("/v2/products/stocks", post(stocks))
        .route("/v1/product/import/prices", post(prices))
        .route("/v4/posting/fbs/list", post(postings))
        .route("/items", get(items_source))
        .route("/_fake/stats", get(stats))
        .route("/_fake/faults", post(set_faults))
        .with_state(shared.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "fake ozon server stopped");
        }
    });
    Ok(FakeOzon { addr, shared, stop, server })
}

impl FakeOzon {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `OZON_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.lock().unwrap().stats.clone()
    }

    /// Replaces the queued faults (products refused or known are added, not replaced).
    pub fn inject(&self, faults: Faults) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        apply_faults(&mut ledger, faults);
    }

    /// The next `n` stocks/prices calls answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        ledger.faults.push.extend(std::iter::repeat_n(429, n as usize));
        ledger.faults.retry_after_seconds = Some(u64::from(retry_after_secs));
    }

    /// The next `n` stocks/prices calls answer 500.
    pub fn fail_pushes(&self, n: u32) {
        self.shared.ledger.lock().unwrap().faults.push.extend(std::iter::repeat_n(500, n as usize));
    }

    pub fn refuse_item(&self, offer_id: &str) {
        self.shared.ledger.lock().unwrap().refused.insert(offer_id.to_string());
    }

    pub fn know_items(&self, offer_ids: &[String]) {
        self.shared.ledger.lock().unwrap().known.extend(offer_ids.iter().cloned());
    }

    /// How many times an update (stock or price) of this product was applied.
    pub fn times_applied(&self, offer_id: &str) -> u32 {
        self.shared.ledger.lock().unwrap().applied.get(offer_id).copied().unwrap_or(0)
    }

    pub fn stock(&self, offer_id: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().stock.get(offer_id).copied()
    }

    /// Adds `n` FBS postings whose status last changed evenly within `[from_ms, to_ms]`.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        let start = ledger.postings.len() as u32;
        let span = (to_ms - from_ms).max(0);
        for i in 0..n {
            let changed_ms = from_ms + if n > 1 { span * i64::from(i) / i64::from(n - 1) } else { 0 };
            ledger.postings.push(Posting { changed_ms, number: start + i });
        }
    }

    /// Requests and answers seen (the first [`EXCHANGES_KEPT`]).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.ledger.lock().unwrap().exchanges.clone()
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

fn apply_faults(ledger: &mut Ledger, faults: Faults) {
    ledger.known.extend(faults.know.iter().cloned());
    ledger.refused.extend(faults.refuse.iter().cloned());
    ledger.faults = Faults { know: Vec::new(), refuse: Vec::new(), ..faults };
}

/// Ozon's error body (`rpcStatus`).
fn rpc_status(status: StatusCode, code: i32, message: &str) -> (StatusCode, Value) {
    (status, json!({ "code": code, "message": message, "details": [] }))
}

fn respond(ledger: &mut Ledger, path: &str, request: &Value, (status, body): (StatusCode, Value)) -> Response {
    if ledger.exchanges.len() < EXCHANGES_KEPT {
        ledger.exchanges.push(Exchange {
            path: path.to_string(),
            request: request.clone(),
            status: status.as_u16(),
            response: body.clone(),
        });
    }
    (status, Json(body)).into_response()
}

fn too_many(retry_after: u64) -> Response {
    let mut r =
        (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "code": 8, "message": RATE_LIMIT_MESSAGE }))).into_response();
    r.headers_mut().insert("retry-after", HeaderValue::from(retry_after));
    r.headers_mut().insert("ratelimit-remaining", HeaderValue::from(0));
    r
}

/// Auth first, as Ozon does: a missing or wrong key is refused before anything else.
fn refuse_caller(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let c = &shared.config;
    let client = headers.get("client-id").and_then(|v| v.to_str().ok());
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    if client == Some(c.client_id.as_str()) && key == Some(c.api_key.as_str()) {
        return None;
    }
    shared.ledger.lock().unwrap().stats.rejected_auth += 1;
    let message = if client.is_none() { "Client-Id is required" } else { BAD_KEY_MESSAGE };
    Some((StatusCode::UNAUTHORIZED, Json(json!({ "code": 16, "message": message, "details": [] }))).into_response())
}

/// A sliding window per endpoint: at most `limit` calls per `per`.
fn over_limit(ledger: &mut Ledger, endpoint: &'static str, limit: Option<u32>, per: Duration) -> bool {
    let Some(limit) = limit else { return false };
    let now = Instant::now();
    let q = ledger.windows.entry(endpoint).or_default();
    while q.front().is_some_and(|t| now.duration_since(*t) >= per) {
        q.pop_front();
    }
    if q.len() as u32 >= limit {
        ledger.stats.rate_limited += 1;
        return true;
    }
    q.push_back(now);
    false
}

/// Rate limit and queued faults of a push; `Some` is the answer to give instead.
fn push_gate(shared: &Shared, ledger: &mut Ledger, endpoint: &'static str) -> Option<Response> {
    let retry_after = ledger.faults.retry_after_seconds.unwrap_or(shared.config.retry_after_seconds);
    let (limit, per) = if endpoint == "stocks" {
        (shared.config.stocks_per_minute, Duration::from_secs(60))
    } else {
        (shared.config.calls_per_second, Duration::from_secs(1))
    };
    if over_limit(ledger, endpoint, limit, per) {
        return Some(too_many(retry_after));
    }
    if !ledger.faults.push.is_empty() {
        let status = ledger.faults.push.remove(0);
        if status == 0 {
            return None;
        }
        ledger.stats.injected_faults += 1;
        if status == 429 {
            return Some(too_many(retry_after));
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some((status, Json(json!({ "code": 13, "message": "internal error", "details": [] }))).into_response());
    }
    None
}

fn parse_body(body: &[u8]) -> Result<Value, (StatusCode, Value)> {
    serde_json::from_slice(body)
        .map_err(|e| rpc_status(StatusCode::BAD_REQUEST, 3, &format!("invalid request body: {e}")))
}

fn item_error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

fn applied(ledger: &mut Ledger, offer_id: &str) {
    let n = ledger.applied.entry(offer_id.to_string()).or_insert(0);
    *n += 1;
    if *n == 2 {
        ledger.stats.applied_more_than_once += 1;
    }
    ledger.stats.items_applied += 1;
}

async fn stocks(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = refuse_caller(&shared, &headers) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    let ledger = &mut *ledger;
    if let Some(r) = push_gate(&shared, ledger, "stocks") {
        return r;
    }
    let path = "/v2/products/stocks";
    let request = match parse_body(&body) {
        Ok(v) => v,
        Err(answer) => return respond(ledger, path, &Value::Null, answer),
    };
    let Some(items) = request.get("stocks").and_then(Value::as_array) else {
        return respond(ledger, path, &request, rpc_status(StatusCode::BAD_REQUEST, 3, "stocks is required"));
    };
    if items.is_empty() || items.len() > MAX_STOCKS_PER_CALL {
        ledger.stats.rejected_too_many_items += u64::from(items.len() > MAX_STOCKS_PER_CALL);
        let answer = rpc_status(StatusCode::BAD_REQUEST, 3, "stocks: from 1 to 100 items");
        return respond(ledger, path, &request, answer);
    }
    ledger.stats.stock_calls += 1;
    ledger.stats.largest_stock_call = ledger.stats.largest_stock_call.max(items.len() as u64);
    let now = Instant::now();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let offer_id = item.get("offer_id").and_then(Value::as_str).unwrap_or("").to_string();
        let warehouse_id = item.get("warehouse_id").and_then(Value::as_i64).unwrap_or(0);
        let stock = item.get("stock").and_then(Value::as_u64);
        let pair = format!("{offer_id}/{warehouse_id}");
        let error = if offer_id.is_empty() {
            Some(item_error("offer_id_not_found", "offer_id or product_id is required"))
        } else if !(shared.config.know_every_product || ledger.known.contains(&offer_id))
            || ledger.refused.contains(&offer_id)
        {
            Some(item_error("NOT_FOUND_ERROR", "Product not found"))
        } else if warehouse_id != shared.config.warehouse_id {
            Some(item_error("WAREHOUSE_NOT_FOUND", "Warehouse not found"))
        } else if stock.is_none() {
            Some(item_error("INVALID_STOCK", "stock must be a non-negative integer"))
        } else if stock.is_some_and(|s| s > MAX_STOCK) {
            Some(item_error("STOCK_TOO_BIG", "Stock is too big"))
        } else if ledger
            .pair_updated
            .get(&pair)
            .is_some_and(|t| now.duration_since(*t) < shared.config.stock_pair_interval)
        {
            ledger.stats.pair_limited += 1;
            Some(item_error(
                "TOO_MANY_REQUESTS",
                "Too many requests for this product on this warehouse, try again in 30 seconds",
            ))
        } else {
            None
        };
        let updated = error.is_none();
        if updated {
            ledger.pair_updated.insert(pair, now);
            ledger.stock.insert(offer_id.clone(), stock.unwrap_or(0));
            applied(ledger, &offer_id);
        } else {
            ledger.stats.items_failed += 1;
        }
        results.push(json!({
            "offer_id": offer_id,
            "product_id": 0,
            "warehouse_id": warehouse_id,
            "updated": updated,
            "errors": error.into_iter().collect::<Vec<_>>(),
        }));
    }
    respond(ledger, path, &request, (StatusCode::OK, json!({ "result": results })))
}

/// A decimal price string: digits with an optional fraction, optionally negative.
fn price_value(v: Option<&Value>) -> Result<Option<f64>, String> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let valid = !digits.is_empty()
                && digits.split('.').count() <= 2
                && digits.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if valid { Ok(s.parse().ok()) } else { Err(format!("{s:?} is not a decimal string")) }
        }
        Some(other) => Err(format!("prices are strings, got {other}")),
    }
}

async fn prices(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = refuse_caller(&shared, &headers) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    let ledger = &mut *ledger;
    if let Some(r) = push_gate(&shared, ledger, "prices") {
        return r;
    }
    let path = "/v1/product/import/prices";
    let request = match parse_body(&body) {
        Ok(v) => v,
        Err(answer) => return respond(ledger, path, &Value::Null, answer),
    };
    let Some(items) = request.get("prices").and_then(Value::as_array) else {
        return respond(ledger, path, &request, rpc_status(StatusCode::BAD_REQUEST, 3, "prices is required"));
    };
    if items.is_empty() || items.len() > MAX_PRICES_PER_CALL {
        ledger.stats.rejected_too_many_items += u64::from(items.len() > MAX_PRICES_PER_CALL);
        return respond(ledger, path, &request, rpc_status(StatusCode::BAD_REQUEST, 3, "prices: from 1 to 1000 items"));
    }
    // A wrong JSON type is refused by Ozon's gateway for the whole call.
    for item in items {
        for field in ["price", "old_price", "min_price"] {
            if let Err(e) = price_value(item.get(field)) {
                return respond(
                    ledger,
                    path,
                    &request,
                    rpc_status(StatusCode::BAD_REQUEST, 3, &format!("{field}: {e}")),
                );
            }
        }
    }
    ledger.stats.price_calls += 1;
    ledger.stats.largest_price_call = ledger.stats.largest_price_call.max(items.len() as u64);
    let now = Instant::now();
    let hour = Duration::from_secs(3600);
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let offer_id = item.get("offer_id").and_then(Value::as_str).unwrap_or("").to_string();
        let price = price_value(item.get("price")).unwrap_or(None);
        let old_price = price_value(item.get("old_price")).unwrap_or(None);
        let currency = item.get("currency_code").and_then(Value::as_str).unwrap_or("RUB");
        let changes = ledger.price_changes.entry(offer_id.clone()).or_default();
        while changes.front().is_some_and(|t| now.duration_since(*t) >= hour) {
            changes.pop_front();
        }
        let over_hourly = changes.len() as u32 >= shared.config.price_changes_per_hour;
        let error = if offer_id.is_empty() {
            Some(item_error("NOT_FOUND_ERROR", "offer_id or product_id is required"))
        } else if !(shared.config.know_every_product || ledger.known.contains(&offer_id))
            || ledger.refused.contains(&offer_id)
        {
            Some(item_error("NOT_FOUND_ERROR", "Product not found"))
        } else if price.is_some_and(|p| p < 0.0) {
            Some(item_error("price_negative", "Price is negative"))
        } else if currency != shared.config.currency {
            // UNDOCUMENTED code: Ozon documents only that the currency must be the account's.
            Some(item_error("CURRENCY_MISMATCH", "currency_code must be the account's currency"))
        } else if matches!((price, old_price), (Some(p), Some(o)) if o != 0.0 && o <= p) {
            // UNDOCUMENTED code: Ozon documents only that old_price must be greater than price.
            Some(item_error("OLD_PRICE_NOT_GREATER", "old_price must be greater than price"))
        } else if over_hourly {
            Some(item_error("TOO_MANY_REQUESTS", PRICE_LIMIT_MESSAGE))
        } else {
            None
        };
        // Ozon counts every change it was asked for against the hourly budget.
        if error.is_none() || over_hourly {
            if over_hourly {
                ledger.stats.price_limited += 1;
            } else {
                ledger.price_changes.entry(offer_id.clone()).or_default().push_back(now);
            }
        }
        let updated = error.is_none();
        if updated {
            applied(ledger, &offer_id);
        } else {
            ledger.stats.items_failed += 1;
        }
        results.push(json!({ "offer_id": offer_id, "product_id": 0, "updated": updated, "errors": error.into_iter().collect::<Vec<_>>() }));
    }
    respond(ledger, path, &request, (StatusCode::OK, json!({ "result": results })))
}

fn parse_time(v: Option<&Value>) -> Option<i64> {
    let s = v?.as_str()?;
    OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// RFC 3339 with milliseconds, as Ozon's posting timestamps carry them.
fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn posting(p: &Posting) -> Value {
    let quantity = 1 + p.number % 3;
    let price = format!("{}.50", 100 + p.number % 50);
    json!({
        "posting_number": format!("{}-0001-1", 70_000_000 + p.number),
        "order_id": 900_000_000u64 + u64::from(p.number),
        "order_number": format!("{}-0001", 70_000_000 + p.number),
        "status": "awaiting_packaging",
        "substatus": "posting_created",
        "in_process_at": rfc3339(p.changed_ms),
        "products": [{
            "offer_id": format!("SKU-{:07}", p.number % 1000),
            "sku": 1_000_000 + u64::from(p.number % 1000),
            "name": "Fake product",
            "quantity": quantity,
            "price": { "amount": price, "currency": "RUB" },
        }],
    })
}

async fn postings(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = refuse_caller(&shared, &headers) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    let ledger = &mut *ledger;
    if over_limit(ledger, "postings", shared.config.calls_per_second, Duration::from_secs(1)) {
        return too_many(shared.config.retry_after_seconds);
    }
    let path = "/v4/posting/fbs/list";
    let request = match parse_body(&body) {
        Ok(v) => v,
        Err(answer) => return respond(ledger, path, &Value::Null, answer),
    };
    let filter = request.get("filter");
    let since = parse_time(filter.and_then(|f| f.get("since")));
    let to = parse_time(filter.and_then(|f| f.get("to")));
    let limit = request.get("limit").and_then(Value::as_u64).unwrap_or(0);
    let (since, to) = match (since, to) {
        (Some(s), Some(t)) if s <= t && t - s <= 366 * 24 * 3600 * 1000 => (s, t),
        (Some(_), Some(_)) => {
            return respond(
                ledger,
                path,
                &request,
                rpc_status(StatusCode::BAD_REQUEST, 3, "filter: the period must not exceed one year"),
            );
        }
        _ => {
            return respond(
                ledger,
                path,
                &request,
                rpc_status(StatusCode::BAD_REQUEST, 3, "filter.since and filter.to are required"),
            );
        }
    };
    if !(1..=MAX_POSTINGS_PAGE).contains(&limit) {
        return respond(ledger, path, &request, rpc_status(StatusCode::BAD_REQUEST, 3, "limit must be from 1 to 100"));
    }
    let changed = filter.and_then(|f| f.get("last_changed_status_date"));
    let changed_from = parse_time(changed.and_then(|c| c.get("from"))).unwrap_or(i64::MIN);
    let changed_to = parse_time(changed.and_then(|c| c.get("to"))).unwrap_or(i64::MAX);
    let offset = match request.get("cursor").and_then(Value::as_str).unwrap_or("") {
        "" => 0,
        c => match base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
        {
            Some(o) => o,
            None => return respond(ledger, path, &request, rpc_status(StatusCode::BAD_REQUEST, 3, "invalid cursor")),
        },
    };
    ledger.stats.posting_pages += 1;
    let matching: Vec<&Posting> = ledger
        .postings
        .iter()
        .filter(|p| {
            p.changed_ms >= since && p.changed_ms <= to && p.changed_ms >= changed_from && p.changed_ms <= changed_to
        })
        .collect();
    let page: Vec<Value> = matching.iter().skip(offset).take(limit as usize).map(|p| posting(p)).collect();
    let next = offset + page.len();
    let has_next = next < matching.len();
    let cursor = if has_next {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{next}"))
    } else {
        String::new()
    };
    let answer = json!({ "cursor": cursor, "has_next": has_next, "postings": page });
    respond(ledger, path, &request, (StatusCode::OK, answer))
}

#[derive(Deserialize)]
struct ItemsQuery {
    total: u64,
    offset: Option<u64>,
    limit: Option<u64>,
    /// `prices` for price-only items (default: stock and prices).
    kind: Option<String>,
}

async fn items_source(Query(q): Query<ItemsQuery>) -> Response {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let end = offset.saturating_add(limit).min(q.total);
    let prices_only = q.kind.as_deref() == Some("prices");
    let items: Vec<Value> = (offset..end)
        .map(|i| {
            let mut item = json!({ "barcode": format!("BC-{i:08}"), "salePrice": 10 + i % 90, "listPrice": 120 });
            if !prices_only {
                item["quantity"] = json!(i % 500);
            }
            item
        })
        .collect();
    Json(json!({ "items": items, "total": q.total })).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.ledger.lock().unwrap().stats.clone())
}

async fn set_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> StatusCode {
    apply_faults(&mut shared.ledger.lock().unwrap(), faults);
    StatusCode::NO_CONTENT
}
