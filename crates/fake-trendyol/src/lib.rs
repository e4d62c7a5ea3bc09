//! A local fake of Trendyol's seller API, for tests and benchmarks that must not reach the real
//! marketplace. It follows the contract in `shared/reference/marketplaces.md` §1, errors
//! included, and keeps nothing from the client crate: it is an independent check of it.
//!
//! - `POST /integration/inventory/sellers/{sellerId}/products/price-and-inventory`: Basic auth
//!   (401 `ClientApiAuthenticationException`), the `User-Agent: {sellerId} - {Integrator}` rule
//!   (403), at most 1,000 items (400), the 15-minute identical-request rule (400 with Trendyol's
//!   message), 50 requests per 10 s per endpoint (429), injected 429/5xx; answers
//!   `{"batchRequestId"}`.
//! - `GET /integration/product/sellers/{sellerId}/products/batch-requests/{id}`: per-item
//!   `SUCCESS`/`FAILED` with `failureReasons` (items fail on the documented rules: no value,
//!   stock over 20,000, `listPrice` below `salePrice`, plus barcodes starting with
//!   [`Config::failing_barcode_prefix`]); optionally `IN_PROGRESS` for the first polls.
//! - `GET /integration/order/sellers/{sellerId}/orders`: synthetic shipment packages, paged
//!   (`page` zero-based, `size` ≤ 200), filtered by `startDate`/`endDate` in epoch ms.
//! - `GET /items?total=N&offset=O&limit=L`: an `itemsUrl` source (see the marketplace crate's
//!   README section) generating `N` items on the fly, so a 100,000-item source costs no memory.
//! - `GET /_fake/stats`, `POST /_fake/faults`: what was pushed (every push recorded, every
//!   barcode counted) and fault injection, for tests in any language.
//!
//! Where the documentation is silent (the status of the duplicate rejection, the 429 headers,
//! the 1,000-item error key), the choice is marked `UNDOCUMENTED` below.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Trendyol's documented limit of items in one stock/price request.
pub const MAX_ITEMS_PER_REQUEST: usize = 1000;
/// Trendyol's documented maximum stock of one product.
pub const MAX_QUANTITY: u64 = 20_000;
/// Trendyol's documented maximum page size of the orders endpoint.
pub const MAX_ORDERS_PAGE_SIZE: u32 = 200;
/// Trendyol's message for an identical request within 15 minutes.
pub const DUPLICATE_MESSAGE: &str = "15 dakika boyunca aynı isteği tekrarlı olarak atamazsınız!";

/// How the fake behaves; [`Config::default`] is the documented contract.
#[derive(Clone)]
pub struct Config {
    pub seller_id: String,
    pub api_key: String,
    pub api_secret: String,
    /// Identical stock/price bodies inside this window are rejected (documented: 15 minutes).
    pub duplicate_window: Duration,
    /// Requests per window per endpoint (documented: 50 per 10 s); `None` disables the limit.
    pub rate_limit: Option<(u32, Duration)>,
    /// The `Retry-After` sent with a 429 (UNDOCUMENTED: Trendyol's 429 headers are not).
    pub retry_after_seconds: u64,
    /// Polls of each batch that answer `IN_PROGRESS` before its results are ready.
    pub result_polls_in_progress: u32,
    /// Items whose barcode starts with this fail with a reason in the batch result.
    pub failing_barcode_prefix: String,
    /// How many synthetic orders the orders endpoint serves (one per minute up to now).
    pub orders: u32,
    /// Added before answering every request, to look like a remote service.
    pub latency: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seller_id: "123456".into(),
            api_key: "fake-api-key".into(),
            api_secret: "fake-api-secret".into(),
            duplicate_window: Duration::from_secs(15 * 60),
            rate_limit: Some((50, Duration::from_secs(10))),
            retry_after_seconds: 1,
            result_polls_in_progress: 0,
            failing_barcode_prefix: "FAIL-".into(),
            orders: 0,
            latency: Duration::ZERO,
        }
    }
}

/// Faults a test queues at run time (also through `POST /_fake/faults`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Statuses the next stock/price pushes answer with, in order (429 carries `Retry-After`).
    #[serde(default)]
    pub push: Vec<u16>,
    /// Statuses the next batch-result polls answer with.
    #[serde(default)]
    pub poll: Vec<u16>,
    /// Replaces [`Config::retry_after_seconds`].
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Replaces [`Config::latency`] of pushes, in milliseconds (a slow marketplace).
    #[serde(default)]
    pub push_latency_ms: Option<u64>,
}

/// One accepted stock/price request.
#[derive(Debug, Clone)]
pub struct Push {
    pub batch_request_id: String,
    pub items: usize,
    pub first_barcode: String,
    pub last_barcode: String,
}

/// What the fake has seen, for assertions.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Accepted stock/price requests.
    pub pushes: u64,
    /// Items in accepted requests.
    pub items_pushed: u64,
    pub distinct_barcodes: u64,
    /// Barcodes accepted in more than one request.
    pub barcodes_pushed_more_than_once: u64,
    pub largest_batch: u64,
    pub rejected_auth: u64,
    pub rejected_user_agent: u64,
    pub rejected_too_many_items: u64,
    pub rejected_duplicate: u64,
    pub rate_limited: u64,
    pub injected_faults: u64,
    pub result_polls: u64,
    pub order_pages: u64,
    pub items_source_pages: u64,
}

struct Pending {
    items: Vec<Value>,
    polls: u32,
}

#[derive(Default)]
struct Ledger {
    stats: Stats,
    pushes: Vec<Push>,
    barcodes: HashMap<String, u32>,
    recent_bodies: HashMap<[u8; 32], Instant>,
    batches: HashMap<String, Pending>,
    windows: HashMap<&'static str, VecDeque<Instant>>,
    faults: Faults,
    /// Barcodes refused per item at run time (see [`FakeTrendyol::refuse`]).
    refused: HashSet<String>,
    /// The stock of each barcode, as the last accepted valid item set it.
    stock: HashMap<String, u64>,
    /// Last-modified times (epoch ms) of the synthetic orders, oldest first; order `i` is built
    /// from its index.
    orders: Vec<i64>,
}

struct Shared {
    config: Config,
    ledger: Mutex<Ledger>,
}

/// A running fake; stop it with [`FakeTrendyol::shutdown`].
pub struct FakeTrendyol {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// Serves the fake on `listener` (bind it to `127.0.0.1:0`).
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<FakeTrendyol> {
    let addr = listener.local_addr()?;
    // The configured orders: one a minute, the last one at the server's start.
    let end = now_ms();
    let orders = (0..config.orders).map(|i| end - i64::from(config.orders - 1 - i) * 60_000).collect();
    let shared = Arc::new(Shared { config, ledger: Mutex::new(Ledger { orders, ..Ledger::default() }) });
    let (stop, mut stopped) = watch::channel(false);
    let app = router(shared.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "fake trendyol server stopped");
        }
    });
    Ok(FakeTrendyol { addr, shared, stop, server })
}

impl FakeTrendyol {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `TRENDYOL_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}/integration", self.addr)
    }

    /// An `itemsUrl` serving `total` generated items.
    pub fn items_url(&self, total: u64) -> String {
        format!("http://{}/items?total={total}", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.lock().unwrap().stats.clone()
    }

    /// Every accepted push, in arrival order.
    pub fn pushes(&self) -> Vec<Push> {
        self.shared.ledger.lock().unwrap().pushes.clone()
    }

    /// How many accepted requests carried `barcode`.
    pub fn times_pushed(&self, barcode: &str) -> u32 {
        self.shared.ledger.lock().unwrap().barcodes.get(barcode).copied().unwrap_or(0)
    }

    /// Refuses every later item with this barcode (a product Trendyol does not know).
    pub fn refuse(&self, barcode: &str) {
        self.shared.ledger.lock().unwrap().refused.insert(barcode.to_string());
    }

    /// The stock the last accepted, valid item of `barcode` set.
    pub fn stock(&self, barcode: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().stock.get(barcode).copied()
    }

    /// Adds `n` synthetic orders last modified evenly across `[from_ms, to_ms]`.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        let step = if n > 1 { (to_ms - from_ms) / i64::from(n - 1) } else { 0 };
        let mut ledger = self.shared.ledger.lock().unwrap();
        ledger.orders.extend((0..n).map(|i| from_ms + step * i64::from(i)));
        ledger.orders.sort_unstable();
    }

    pub fn inject(&self, faults: Faults) {
        self.shared.ledger.lock().unwrap().faults = faults;
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/integration/inventory/sellers/{seller}/products/price-and-inventory", post(push))
        .route("/integration/product/sellers/{seller}/products/batch-requests/{id}", get(batch_result))
        .route("/integration/order/sellers/{seller}/orders", get(orders))
        .route("/items", get(items_source))
        .route("/_fake/stats", get(stats))
        .route("/_fake/faults", post(set_faults))
        .with_state(shared)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn errors(status: StatusCode, key: &str, message: &str) -> Response {
    (status, Json(json!({ "timestamp": now_ms(), "errors": [{ "key": key, "message": message, "errorCode": status.as_u16().to_string() }] })))
        .into_response()
}

/// Auth and `User-Agent`, in the documented order: bad credentials 401, then a missing or
/// malformed `User-Agent` 403, then a path seller that is not the caller's 403. `Some` is the
/// refusal to answer with.
fn refuse_caller(shared: &Shared, headers: &HeaderMap, seller: &str) -> Option<Response> {
    let c = &shared.config;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.api_key, c.api_secret))
    );
    let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorized {
        shared.ledger.lock().unwrap().stats.rejected_auth += 1;
        return Some(
            (StatusCode::UNAUTHORIZED, Json(json!({ "exception": "ClientApiAuthenticationException" })))
                .into_response(),
        );
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let integrator = ua.strip_prefix(&format!("{} - ", c.seller_id));
    let ua_ok = integrator
        .is_some_and(|name| (1..=30).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !ua_ok {
        shared.ledger.lock().unwrap().stats.rejected_user_agent += 1;
        return Some(errors(
            StatusCode::FORBIDDEN,
            "user.agent.invalid",
            "User-Agent must be '{sellerId} - {IntegratorName}'",
        ));
    }
    if seller != c.seller_id {
        return Some(errors(StatusCode::FORBIDDEN, "seller.forbidden", "seller does not match the credentials"));
    }
    None
}

/// The documented 50 requests per 10 s per endpoint, as a sliding window.
fn rate_limited(shared: &Shared, ledger: &mut Ledger, endpoint: &'static str) -> Option<Response> {
    let (limit, window) = shared.config.rate_limit?;
    let now = Instant::now();
    let q = ledger.windows.entry(endpoint).or_default();
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
    if q.len() as u32 >= limit {
        let retry_after = ledger.faults.retry_after_seconds.unwrap_or(shared.config.retry_after_seconds);
        ledger.stats.rate_limited += 1;
        return Some(too_many(retry_after));
    }
    q.push_back(now);
    None
}

fn too_many(retry_after: u64) -> Response {
    let mut r = errors(StatusCode::TOO_MANY_REQUESTS, "too.many.requests", "too.many.requests");
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

fn injected(shared: &Shared, ledger: &mut Ledger, status: u16) -> Response {
    ledger.stats.injected_faults += 1;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return too_many(ledger.faults.retry_after_seconds.unwrap_or(shared.config.retry_after_seconds));
    }
    (status, Json(json!({ "exception": "TrendyolSystemException", "errors": [{ "key": "generic.exception", "message": "injected fault" }] })))
        .into_response()
}

async fn push(
    State(shared): State<Arc<Shared>>,
    Path(seller): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let latency = shared.ledger.lock().unwrap().faults.push_latency_ms.map(Duration::from_millis);
    let latency = latency.unwrap_or(shared.config.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(r) = refuse_caller(&shared, &headers, &seller) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = rate_limited(&shared, &mut ledger, "price-and-inventory") {
        return r;
    }
    if !ledger.faults.push.is_empty() {
        let status = ledger.faults.push.remove(0);
        return injected(&shared, &mut ledger, status);
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return errors(StatusCode::BAD_REQUEST, "invalid.body", &format!("invalid JSON: {e}")),
    };
    let Some(items) = parsed.get("items").and_then(Value::as_array) else {
        return errors(StatusCode::BAD_REQUEST, "items.required", "items is required");
    };
    if items.is_empty() {
        return errors(StatusCode::BAD_REQUEST, "items.required", "items is empty");
    }
    if items.len() > MAX_ITEMS_PER_REQUEST {
        // UNDOCUMENTED: the key and status of this rejection.
        ledger.stats.rejected_too_many_items += 1;
        return errors(StatusCode::BAD_REQUEST, "items.size", "at most 1000 items per request");
    }
    // Identical requests are blocked for the window; any changed value makes a new request.
    let digest: [u8; 32] = Sha256::digest(&body).into();
    let now = Instant::now();
    let window = shared.config.duplicate_window;
    ledger.recent_bodies.retain(|_, at| now.duration_since(*at) < window);
    if ledger.recent_bodies.contains_key(&digest) {
        // UNDOCUMENTED: the status (400 assumed, the documented status for business errors).
        ledger.stats.rejected_duplicate += 1;
        return errors(StatusCode::BAD_REQUEST, "request.duplicate", DUPLICATE_MESSAGE);
    }
    ledger.recent_bodies.insert(digest, now);

    let id = format!("{}-{}", uuid::Uuid::new_v4(), now_ms());
    let barcode = |v: &Value| v.get("barcode").and_then(Value::as_str).unwrap_or("").to_string();
    for item in items {
        let count = ledger.barcodes.entry(barcode(item)).or_insert(0);
        *count += 1;
        if *count == 2 {
            ledger.stats.barcodes_pushed_more_than_once += 1;
        } else if *count == 1 {
            ledger.stats.distinct_barcodes += 1;
        }
    }
    let record = Push {
        batch_request_id: id.clone(),
        items: items.len(),
        first_barcode: barcode(&items[0]),
        last_barcode: barcode(&items[items.len() - 1]),
    };
    for item in items {
        if item_failure(&shared.config, &ledger.refused, item).is_none()
            && let Some(q) = item.get("quantity").and_then(Value::as_u64)
        {
            ledger.stock.insert(barcode(item), q);
        }
    }
    ledger.stats.pushes += 1;
    ledger.stats.items_pushed += items.len() as u64;
    ledger.stats.largest_batch = ledger.stats.largest_batch.max(items.len() as u64);
    ledger.pushes.push(record);
    let items = items.clone();
    ledger.batches.insert(id.clone(), Pending { items, polls: 0 });
    (StatusCode::OK, Json(json!({ "batchRequestId": id }))).into_response()
}

/// Why Trendyol would refuse one item, or `None`.
fn item_failure(config: &Config, refused: &HashSet<String>, item: &Value) -> Option<String> {
    let barcode = item.get("barcode").and_then(Value::as_str).unwrap_or("");
    if barcode.is_empty() {
        return Some("barcode is required".into());
    }
    if barcode.starts_with(&config.failing_barcode_prefix) || refused.contains(barcode) {
        return Some(format!("Ürün bulunamadı: {barcode}"));
    }
    let quantity = item.get("quantity");
    let sale = item.get("salePrice").and_then(Value::as_f64);
    let list = item.get("listPrice").and_then(Value::as_f64);
    if quantity.is_none() && sale.is_none() && list.is_none() {
        return Some("quantity, salePrice or listPrice is required".into());
    }
    if let Some(q) = quantity {
        match q.as_u64() {
            Some(q) if q <= MAX_QUANTITY => {}
            _ => return Some("quantity must be between 0 and 20000".into()),
        }
    }
    if let (Some(s), Some(l)) = (sale, list)
        && l < s
    {
        return Some("listPrice cannot be lower than salePrice".into());
    }
    None
}

async fn batch_result(
    State(shared): State<Arc<Shared>>,
    Path((seller, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_caller(&shared, &headers, &seller) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = rate_limited(&shared, &mut ledger, "batch-requests") {
        return r;
    }
    ledger.stats.result_polls += 1;
    if !ledger.faults.poll.is_empty() {
        let status = ledger.faults.poll.remove(0);
        return injected(&shared, &mut ledger, status);
    }
    let in_progress_polls = shared.config.result_polls_in_progress;
    // Split the guard's borrow: the batch is updated while the refused set is read.
    let ledger = &mut *ledger;
    let Some(batch) = ledger.batches.get_mut(&id) else {
        return errors(StatusCode::NOT_FOUND, "batch.request.not.found", "batch request not found");
    };
    batch.polls += 1;
    let ready = batch.polls > in_progress_polls;
    let mut failed = 0;
    let refused = &ledger.refused;
    let results: Vec<Value> = batch
        .items
        .iter()
        .map(|item| {
            if !ready {
                return json!({ "requestItem": item, "status": "IN_PROGRESS", "failureReasons": [] });
            }
            match item_failure(&shared.config, refused, item) {
                Some(reason) => {
                    failed += 1;
                    json!({ "requestItem": item, "status": "FAILED", "failureReasons": [reason] })
                }
                None => json!({ "requestItem": item, "status": "SUCCESS", "failureReasons": [] }),
            }
        })
        .collect();
    // Stock/price batches carry no batch-level status: each item's status is the answer.
    Json(json!({
        "batchRequestId": id,
        "items": results,
        "itemCount": batch.items.len(),
        "failedItemCount": failed,
        "creationDate": now_ms(),
        "lastModification": now_ms(),
        "sourceType": "API",
        "batchRequestType": "ProductInventoryUpdate",
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrdersQuery {
    start_date: Option<i64>,
    end_date: Option<i64>,
    page: Option<u32>,
    size: Option<u32>,
}

/// Synthetic order `i`, last modified at `modified`.
fn order(i: u32, modified: i64) -> Value {
    let quantity = 1 + i % 3;
    let unit = 100.0 + f64::from(i % 50) + 0.5;
    let total = unit * f64::from(quantity);
    json!({
        "shipmentPackageId": 3_000_000 + u64::from(i),
        "orderNumber": format!("TY{}", 10_000_000 + i),
        "packageGrossAmount": total,
        "packageSellerDiscount": 0.0,
        "packageTyDiscount": 0.0,
        "packageTotalDiscount": 0.0,
        "packageTotalPrice": total,
        "currencyCode": "TRY",
        "status": "Created",
        "lastModifiedDate": modified,
        "lines": [{
            "lineId": 5_000_000 + u64::from(i),
            "barcode": format!("SKU-{:07}", i % 1000),
            "stockCode": format!("SKU-{:07}", i % 1000),
            "quantity": quantity,
            "lineUnitPrice": unit,
            "lineGrossAmount": total,
            "lineTotalDiscount": 0.0,
            "vatRate": 20,
            "currencyCode": "TRY",
        }],
    })
}

async fn orders(
    State(shared): State<Arc<Shared>>,
    Path(seller): Path<String>,
    headers: HeaderMap,
    Query(q): Query<OrdersQuery>,
) -> Response {
    if let Some(r) = refuse_caller(&shared, &headers, &seller) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = rate_limited(&shared, &mut ledger, "orders") {
        return r;
    }
    let size = q.size.unwrap_or(50);
    if size == 0 || size > MAX_ORDERS_PAGE_SIZE {
        return errors(StatusCode::BAD_REQUEST, "size.invalid", "size must be between 1 and 200");
    }
    ledger.stats.order_pages += 1;
    let start = q.start_date.unwrap_or(i64::MIN);
    let end = q.end_date.unwrap_or(i64::MAX);
    let matching: Vec<(u32, i64)> = (0u32..)
        .zip(ledger.orders.iter().copied())
        .filter(|&(_, modified)| modified >= start && modified <= end)
        .collect();
    drop(ledger);
    let page = q.page.unwrap_or(0);
    let total = matching.len() as u64;
    let content: Vec<Value> =
        matching.iter().skip(page as usize * size as usize).take(size as usize).map(|&(i, at)| order(i, at)).collect();
    Json(json!({
        "totalElements": total,
        "totalPages": total.div_ceil(u64::from(size)),
        "page": page,
        "size": size,
        "content": content,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ItemsQuery {
    total: u64,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// Largest page the items source answers, whatever `limit` asks for.
const ITEMS_SOURCE_MAX_PAGE: u64 = 1000;

async fn items_source(State(shared): State<Arc<Shared>>, Query(q): Query<ItemsQuery>) -> Response {
    shared.ledger.lock().unwrap().stats.items_source_pages += 1;
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(ITEMS_SOURCE_MAX_PAGE).clamp(1, ITEMS_SOURCE_MAX_PAGE);
    let end = offset.saturating_add(limit).min(q.total);
    let items: Vec<Value> = (offset..end)
        .map(|i| json!({ "barcode": format!("BC-{i:08}"), "quantity": i % 500, "salePrice": 10.0 + (i % 90) as f64, "listPrice": 120.0 }))
        .collect();
    Json(json!({ "items": items, "total": q.total })).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.ledger.lock().unwrap().stats.clone())
}

async fn set_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> StatusCode {
    shared.ledger.lock().unwrap().faults = faults;
    StatusCode::NO_CONTENT
}
