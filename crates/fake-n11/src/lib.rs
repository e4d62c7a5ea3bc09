//! A local fake of N11's REST seller API, for tests and benchmarks that must not reach the real
//! marketplace. It follows N11's documented contract
//! (<https://magazadestek.n11.com/satis-surecleri/restapi-urun-bilgileri-ve-fiyat-stok-guncelleme-servisi-10173>,
//! <https://developer.n11.com/documentation/n11-marketplace-entegrasyonu/urun-fiyat-stok-guncelleme/>,
//! <https://developer.n11.com/documentation/n11-siparis-entegrasyonu/siparis-listeleme-servisi/>),
//! errors included, and shares no code with the connector.
//!
//! - `POST /ms/product/tasks/price-stock-update`: headers `appkey`/`appsecret` (wrong: 401
//!   `SellerApiUserUnauthorizedException`), body `{"payload":{"integrator","skus":[…]}}` with at
//!   most 1,000 SKUs; answers `{"id","type":"SKU_UPDATE","status":"IN_QUEUE","reasons"}`, or
//!   `"status":"REJECT"` with reasons for a body N11 refuses as a whole.
//! - `POST /ms/product/task-details/page-query` (`{"taskId","pageable":{"page","size"}}`): the
//!   task `IN_QUEUE` for the first polls when configured, then `PROCESSED` with every SKU
//!   `SUCCESS` or `FAIL` (with `reasons`) in `skus.content`. SKUs fail on N11's rules:
//!   `listPrice` below `salePrice`, one price without the other, more than 2 decimals, stock
//!   over 999,999, an unknown stock code.
//! - `GET /rest/delivery/v1/shipmentPackages`: wrong key → 403 `text/plain`
//!   `Authentication failed`; `startDate`/`endDate` epoch ms, a range over 15 days cut to 15
//!   days, `page` from 0, `size` ≤ 100, one `status` per call; a Spring page of packages.
//!   1000 requests/min, then 429.
//! - `GET /_fake/stats`, `POST /_fake/faults`: what was applied, and fault injection.
//!
//! Where N11 documents nothing (the statuses of throttling on product tasks, the reject
//! messages' wording), the choice is marked `UNDOCUMENTED` below.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Documented: at most 1,000 SKUs per task.
pub const MAX_SKUS_PER_TASK: usize = 1000;
/// Documented: stock at most 999,999.
pub const MAX_QUANTITY: u64 = 999_999;
/// Documented: the shipment package listing's largest page.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Documented (current page): a wider range is cut to 15 days.
pub const MAX_RANGE_MS: i64 = 15 * 24 * 3_600_000;
/// Documented package statuses; one per call.
pub const STATUSES: [&str; 7] = ["Created", "Picking", "Shipped", "Delivered", "Cancelled", "UnPacked", "UnSupplied"];

#[derive(Clone)]
pub struct Config {
    pub app_key: String,
    pub app_secret: String,
    /// Task-detail polls answering `IN_QUEUE` before the task is `PROCESSED`.
    pub task_polls_in_queue: u32,
    /// Order requests per minute before 429 (documented: 1000); `None` disables.
    pub orders_rate_limit: Option<u32>,
    /// `Retry-After` seconds of a 429 (UNDOCUMENTED for N11).
    pub retry_after_seconds: u64,
    /// Stock codes starting with this fail as unknown.
    pub failing_code_prefix: String,
    pub latency: Duration,
    /// Keeps every exchange for [`FakeN11::exchanges`].
    pub record_exchanges: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app_key: "fake-n11-appkey".into(),
            app_secret: "fake-n11-appsecret".into(),
            task_polls_in_queue: 0,
            orders_rate_limit: Some(1000),
            retry_after_seconds: 1,
            failing_code_prefix: "FAIL-".into(),
            latency: Duration::ZERO,
            record_exchanges: false,
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Statuses the next price-stock-update calls answer with (429 carries `Retry-After`).
    #[serde(default)]
    pub push: Vec<u16>,
    /// Statuses the next task-detail queries answer with.
    #[serde(default)]
    pub poll: Vec<u16>,
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub tasks: u64,
    pub tasks_rejected: u64,
    pub skus_applied: u64,
    pub skus_failed: u64,
    pub codes_applied_more_than_once: u64,
    pub largest_task: u64,
    pub rejected_auth: u64,
    pub rate_limited: u64,
    pub injected_faults: u64,
    pub task_polls: u64,
    pub order_pages: u64,
}

/// One request and its answer (with [`Config::record_exchanges`]).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request: Vec<u8>,
    pub status: u16,
    pub response: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Product {
    stock: Option<u64>,
    list_price: Option<f64>,
    sale_price: Option<f64>,
    applied: u32,
}

struct Task {
    results: Vec<Value>,
    polls: u32,
}

struct Package {
    id: u64,
    order_number: String,
    status: &'static str,
    last_modified: i64,
    code: String,
    quantity: u32,
    unit_minor: u64,
}

#[derive(Default)]
struct Ledger {
    stats: Stats,
    products: HashMap<String, Product>,
    refused: HashSet<String>,
    tasks: HashMap<u64, Task>,
    next_task: u64,
    packages: Vec<Package>,
    orders_window: VecDeque<Instant>,
    faults: Faults,
    exchanges: Vec<Exchange>,
}

struct Shared {
    config: Config,
    ledger: Mutex<Ledger>,
}

pub struct FakeN11 {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<FakeN11> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared { config, ledger: Mutex::new(Ledger { next_task: 1000, ..Ledger::default() }) });
    let (stop, mut stopped) = watch::channel(false);
    let app = router(shared.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "fake n11 server stopped");
        }
    });
    Ok(FakeN11 { addr, shared, stop, server })
}

impl FakeN11 {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `N11_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.lock().unwrap().stats.clone()
    }

    pub fn times_applied(&self, code: &str) -> u32 {
        self.shared.ledger.lock().unwrap().products.get(code).map_or(0, |p| p.applied)
    }

    pub fn stock(&self, code: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().products.get(code).and_then(|p| p.stock)
    }

    /// `(listPrice, salePrice)` as last applied.
    pub fn prices(&self, code: &str) -> (Option<f64>, Option<f64>) {
        let ledger = self.shared.ledger.lock().unwrap();
        ledger.products.get(code).map_or((None, None), |p| (p.list_price, p.sale_price))
    }

    pub fn refuse(&self, code: &str) {
        self.shared.ledger.lock().unwrap().refused.insert(code.to_string());
    }

    pub fn inject(&self, faults: Faults) {
        self.shared.ledger.lock().unwrap().faults = faults;
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.ledger.lock().unwrap().exchanges.clone()
    }

    /// Adds `n` packages last modified evenly within `[from_ms, to_ms]`, spread over the statuses.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        let first = ledger.packages.len() as u64;
        for i in 0..n {
            let at = if n <= 1 { from_ms } else { from_ms + (to_ms - from_ms) * i64::from(i) / i64::from(n - 1) };
            let k = first + u64::from(i);
            ledger.packages.push(Package {
                id: 70_000_000 + k,
                order_number: format!("N11{}", 200_000_000 + k),
                status: STATUSES[(k % 4) as usize],
                last_modified: at,
                code: format!("SKU-{:07}", k % 1000),
                quantity: 1 + (k % 3) as u32,
                unit_minor: 5_000 + (k % 40) * 100 + 25,
            });
        }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ms/product/tasks/price-stock-update", post(price_stock_update))
        .route("/ms/product/task-details/page-query", post(task_details))
        .route("/rest/delivery/v1/shipmentPackages", get(packages))
        .route("/_fake/stats", get(stats))
        .route("/_fake/faults", post(set_faults))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

const MAX_RECORDED_BODY: usize = 4 * 1024 * 1024;

async fn record(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_string();
    if !shared.config.record_exchanges || path.starts_with("/_fake") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(request_body) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let method = parts.method.to_string();
    let response =
        next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(request_body.clone()))).await;
    let (parts, body) = response.into_parts();
    let response_body = axum::body::to_bytes(body, MAX_RECORDED_BODY).await.unwrap_or_default();
    shared.ledger.lock().unwrap().exchanges.push(Exchange {
        method,
        path,
        request: request_body.to_vec(),
        status: parts.status.as_u16(),
        response: response_body.to_vec(),
    });
    Response::from_parts(parts, axum::body::Body::from(response_body))
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let ok = h("appkey") == Some(shared.config.app_key.as_str())
        && h("appsecret") == Some(shared.config.app_secret.as_str());
    if !ok {
        shared.ledger.lock().unwrap().stats.rejected_auth += 1;
    }
    ok
}

/// The documented answer of `/ms/…` to a wrong key.
fn unauthorized_ms() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "@type": "SellerApiUserUnauthorizedException", "message": "Apide doğrulama işlemi başarısız oldu." })),
    )
        .into_response()
}

fn too_many(retry_after: u64) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "message": "Too Many Requests" }))).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

fn injected(shared: &Shared, ledger: &mut Ledger, status: u16) -> Response {
    ledger.stats.injected_faults += 1;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return too_many(ledger.faults.retry_after_seconds.unwrap_or(shared.config.retry_after_seconds));
    }
    (status, Json(json!({ "message": "injected fault" }))).into_response()
}

fn reject(reasons: Vec<String>) -> Response {
    Json(json!({ "id": Value::Null, "type": "SKU_UPDATE", "status": "REJECT", "reasons": reasons })).into_response()
}

/// Whether a price has at most two decimals (N11 wants `1600.00`-style amounts).
fn two_decimals(v: &Value) -> bool {
    let text = v.to_string();
    text.split_once('.').is_none_or(|(_, frac)| frac.len() <= 2)
}

/// Why N11 fails one SKU, or `None`.
fn sku_failure(shared: &Shared, ledger: &Ledger, sku: &Value) -> Option<String> {
    let Some(code) = sku.get("stockCode").and_then(Value::as_str).filter(|c| !c.is_empty()) else {
        return Some("stockCode zorunludur".into());
    };
    if ledger.refused.contains(code) || code.starts_with(&shared.config.failing_code_prefix) {
        return Some(format!("Ürün bulunamadı: {code}"));
    }
    let list = sku.get("listPrice");
    let sale = sku.get("salePrice");
    let quantity = sku.get("quantity");
    if list.is_none() && sale.is_none() && quantity.is_none() {
        return Some("quantity veya listPrice ve salePrice gönderilmelidir".into());
    }
    if let Some(q) = quantity {
        match q.as_u64() {
            Some(q) if q <= MAX_QUANTITY => {}
            _ => return Some("quantity 0 ile 999999 arasında olmalıdır".into()),
        }
    }
    match (list, sale) {
        (None, None) => None,
        (Some(l), Some(s)) => {
            let (Some(lv), Some(sv)) = (l.as_f64(), s.as_f64()) else {
                return Some("listPrice ve salePrice sayı olmalıdır".into());
            };
            if !two_decimals(l) || !two_decimals(s) {
                return Some("fiyatlar en fazla 2 ondalık basamak içerebilir".into());
            }
            if lv <= 0.0 || sv <= 0.0 {
                return Some("fiyatlar sıfırdan büyük olmalıdır".into());
            }
            if lv < sv {
                return Some("listPrice, salePrice değerinden küçük olamaz".into());
            }
            None
        }
        _ => Some("listPrice ve salePrice birlikte gönderilmelidir".into()),
    }
}

async fn price_stock_update(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    if !authorized(&shared, &headers) {
        return unauthorized_ms();
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if !ledger.faults.push.is_empty() {
        let status = ledger.faults.push.remove(0);
        return injected(&shared, &mut ledger, status);
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        ledger.stats.tasks_rejected += 1;
        return (StatusCode::BAD_REQUEST, Json(json!({ "message": "invalid JSON" }))).into_response();
    };
    let integrator = v.pointer("/payload/integrator").and_then(Value::as_str).unwrap_or("");
    let skus = v.pointer("/payload/skus").and_then(Value::as_array);
    let mut reasons = Vec::new();
    if integrator.trim().is_empty() {
        reasons.push("integrator alanı zorunludur".to_string());
    }
    match skus {
        None => reasons.push("skus alanı zorunludur".into()),
        Some(s) if s.is_empty() => reasons.push("skus boş olamaz".into()),
        Some(s) if s.len() > MAX_SKUS_PER_TASK => reasons.push("en fazla 1000 sku gönderilebilir".into()),
        Some(_) => {}
    }
    if !reasons.is_empty() {
        ledger.stats.tasks_rejected += 1;
        return reject(reasons);
    }
    let skus = skus.expect("checked").clone();
    let mut results = Vec::with_capacity(skus.len());
    for sku in &skus {
        let code = sku.get("stockCode").and_then(Value::as_str).unwrap_or("").to_string();
        match sku_failure(&shared, &ledger, sku) {
            Some(reason) => {
                ledger.stats.skus_failed += 1;
                results.push(json!({ "itemCode": code, "status": "FAIL", "reasons": [reason], "sku": sku }));
            }
            None => {
                let p = ledger.products.entry(code.clone()).or_default();
                if let Some(q) = sku.get("quantity").and_then(Value::as_u64) {
                    p.stock = Some(q);
                }
                if let (Some(l), Some(s)) =
                    (sku.get("listPrice").and_then(Value::as_f64), sku.get("salePrice").and_then(Value::as_f64))
                {
                    p.list_price = Some(l);
                    p.sale_price = Some(s);
                }
                p.applied += 1;
                let again = p.applied == 2;
                ledger.stats.skus_applied += 1;
                if again {
                    ledger.stats.codes_applied_more_than_once += 1;
                }
                results.push(json!({ "itemCode": code, "status": "SUCCESS", "reasons": [], "sku": sku }));
            }
        }
    }
    ledger.stats.tasks += 1;
    ledger.stats.largest_task = ledger.stats.largest_task.max(skus.len() as u64);
    ledger.next_task += 1;
    let id = ledger.next_task;
    ledger.tasks.insert(id, Task { results, polls: 0 });
    Json(json!({
        "id": id,
        "type": "SKU_UPDATE",
        "status": "IN_QUEUE",
        "reasons": [format!("{} sku işlenmeye alındı.", skus.len())],
    }))
    .into_response()
}

async fn task_details(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&shared, &headers) {
        return unauthorized_ms();
    }
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.stats.task_polls += 1;
    if !ledger.faults.poll.is_empty() {
        let status = ledger.faults.poll.remove(0);
        return injected(&shared, &mut ledger, status);
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(task_id) = v.get("taskId").and_then(Value::as_u64) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "message": "taskId zorunludur" }))).into_response();
    };
    let page = v.pointer("/pageable/page").and_then(Value::as_u64).unwrap_or(0) as usize;
    let size = v.pointer("/pageable/size").and_then(Value::as_u64).unwrap_or(20).clamp(1, 1000) as usize;
    let in_queue = shared.config.task_polls_in_queue;
    let Some(task) = ledger.tasks.get_mut(&task_id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "message": "task bulunamadı" }))).into_response();
    };
    task.polls += 1;
    if task.polls <= in_queue {
        return Json(json!({ "taskId": task_id, "status": "IN_QUEUE", "skus": { "content": [], "totalElements": 0, "totalPages": 0, "number": page, "size": size } }))
            .into_response();
    }
    let total = task.results.len();
    let content: Vec<Value> = task.results.iter().skip(page * size).take(size).cloned().collect();
    Json(json!({
        "taskId": task_id,
        "status": "PROCESSED",
        "skus": { "content": content, "totalElements": total, "totalPages": total.div_ceil(size), "number": page, "size": size },
    }))
    .into_response()
}

async fn packages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&shared, &headers) {
        // The documented answer of `/rest/…` to a wrong key: 403, plain text.
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain")], "Authentication failed")
            .into_response();
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(limit) = shared.config.orders_rate_limit {
        let now = Instant::now();
        while ledger.orders_window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            ledger.orders_window.pop_front();
        }
        if ledger.orders_window.len() as u32 >= limit {
            ledger.stats.rate_limited += 1;
            return too_many(shared.config.retry_after_seconds);
        }
        ledger.orders_window.push_back(now);
    }
    let num = |k: &str| q.get(k).map(|s| s.parse::<i64>().map_err(|_| ()));
    let bad = |m: &str| (StatusCode::BAD_REQUEST, Json(json!({ "message": m }))).into_response();
    let (start, end) = match (num("startDate"), num("endDate")) {
        (Some(Ok(s)), Some(Ok(e))) => (s, e.min(s + MAX_RANGE_MS)),
        (None, None) => (i64::MIN, i64::MAX),
        _ => return bad("startDate and endDate are epoch milliseconds, given together"),
    };
    let page = match num("page") {
        None => 0,
        Some(Ok(p)) if p >= 0 => p as usize,
        _ => return bad("page must be a non-negative integer"),
    };
    let size = match num("size") {
        None => 20,
        Some(Ok(s)) if (1..=i64::from(MAX_PAGE_SIZE)).contains(&s) => s as usize,
        _ => return bad("size must be between 1 and 100"),
    };
    let status = match q.get("status") {
        None => None,
        Some(s) => match STATUSES.iter().find(|x| **x == s.as_str()) {
            Some(x) => Some(*x),
            None => {
                return bad(
                    "status must be one of Created, Picking, Shipped, Delivered, Cancelled, UnPacked, UnSupplied",
                );
            }
        },
    };
    ledger.stats.order_pages += 1;
    let descending = q.get("orderByDirection").is_some_and(|d| d.eq_ignore_ascii_case("DESC"));
    let mut matching: Vec<&Package> = ledger
        .packages
        .iter()
        .filter(|p| p.last_modified >= start && p.last_modified <= end && status.is_none_or(|s| s == p.status))
        .collect();
    matching.sort_by_key(|p| (p.last_modified, p.id));
    if descending {
        matching.reverse();
    }
    let total = matching.len();
    let content: Vec<Value> = matching
        .iter()
        .skip(page * size)
        .take(size)
        .map(|p| {
            let line_total = p.unit_minor * u64::from(p.quantity);
            json!({
                "id": p.id,
                "orderNumber": p.order_number,
                "shipmentPackageStatus": p.status,
                "lastModifiedDate": p.last_modified,
                "lines": [{
                    "orderLineId": p.id * 10,
                    "stockCode": p.code,
                    "quantity": p.quantity,
                    "price": p.unit_minor as f64 / 100.0,
                    "sellerInvoiceAmount": line_total as f64 / 100.0,
                }],
            })
        })
        .collect();
    Json(json!({
        "content": content,
        "totalElements": total,
        "totalPages": total.div_ceil(size),
        "number": page,
        "size": size,
    }))
    .into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.ledger.lock().unwrap().stats.clone())
}

async fn set_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> StatusCode {
    shared.ledger.lock().unwrap().faults = faults;
    StatusCode::NO_CONTENT
}
