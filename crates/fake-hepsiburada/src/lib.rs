//! A local fake of Hepsiburada's merchant APIs, for tests and benchmarks that must not reach the
//! real marketplace. It follows Hepsiburada's own "Listeleme" OpenAPI
//! (<https://developers.hepsiburada.com/api/v1/public/docs/hepsiburada/listeleme/v1/openapi>) and
//! its OMS order listing, errors included, and shares no code with the connector: it is an
//! independent check of it.
//!
//! - `POST /listings/merchantid/{merchantId}/stock-uploads` and `…/price-uploads`: HTTP Basic
//!   (merchant id : service key, else 401), the required `User-Agent` (the integrator's name,
//!   else 403), a JSON array of `{merchantSku | hepsiburadaSku, availableStock}` /
//!   `{…, price}`; answers `{"id": "<uuid>"}` and applies the valid elements.
//! - `GET …/stock-uploads/id/{id}` and `…/price-uploads/id/{id}`: `{id, status, createdAt,
//!   total, errors[{elementNo, merchantSku, hepsiburadaSku, errors[]}]}` (plus
//!   `priceValidations` for prices); `Processing` for the first polls when configured, then
//!   `Done`. Failed elements appear only in `errors`, by position (`elementNo`).
//! - `GET /orders/merchantid/{merchantId}?offset&limit&begindate&enddate`: paid order lines,
//!   `limit` mandatory and at most 100, dates `yyyy-MM-dd HH:mm` (Turkey time), a range over
//!   24 hours cut to 24 hours as Hepsiburada does; answers `{items, limit, offset, pageCount,
//!   totalCount}`.
//! - Limits: listing (catalog) APIs 100 requests/s, then 403 and a temporary block of the
//!   caller; order APIs 1000 requests/s, then 429 with `X-RateLimit-*` headers.
//! - `GET /_fake/stats`, `POST /_fake/faults`: what was applied and fault injection, for tests in
//!   any language.
//!
//! Where Hepsiburada documents nothing (error bodies and statuses of the listing uploads, the
//! status values, the largest upload, the time zone of order dates), the choice is marked
//! `UNDOCUMENTED` below.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// UNDOCUMENTED: the largest upload. Third-party code claims 4,000 SKUs; the fake refuses more.
pub const MAX_ITEMS_PER_UPLOAD: usize = 4000;
/// Documented: `limit` of the order listing is at most (and by default) 100.
pub const MAX_ORDERS_LIMIT: u32 = 100;
/// Documented: a longer order range is cut to 24 hours from `begindate`.
pub const MAX_ORDERS_RANGE_MS: i64 = 24 * 3_600_000;
/// UNDOCUMENTED: order dates carry no zone; Turkey's (UTC+3 all year) is assumed.
pub const TURKEY_OFFSET_MS: i64 = 3 * 3_600_000;
/// UNDOCUMENTED: the spec does not enumerate `status`; third-party code reads these two.
pub const STATUS_PROCESSING: &str = "Processing";
pub const STATUS_DONE: &str = "Done";

/// How the fake behaves; [`Config::default`] is the documented contract.
#[derive(Clone)]
pub struct Config {
    /// A GUID, as Hepsiburada's merchant ids are.
    pub merchant_id: String,
    /// The 12-character "Servis Anahtarı".
    pub service_key: String,
    /// The integrator user name the `User-Agent` must carry.
    pub integrator: String,
    /// Listing requests per second before 403 and a block (documented: 100); `None` disables.
    pub listing_rate_limit: Option<u32>,
    /// How long a caller over the listing limit stays blocked (UNDOCUMENTED).
    pub block_for: Duration,
    /// Order requests per second before 429 (documented: 1000); `None` disables.
    pub orders_rate_limit: Option<u32>,
    /// Seconds in `X-RateLimit-Reset` of a 429 (UNDOCUMENTED: its unit is not stated).
    pub reset_seconds: u64,
    /// Polls of each upload answering `Processing` before its result is ready.
    pub result_polls_in_progress: u32,
    /// Items whose merchant SKU starts with this fail with a reason.
    pub failing_sku_prefix: String,
    /// Added before answering every upload, to look like a remote service.
    pub latency: Duration,
    /// Keeps every exchange (method, path, bodies) for [`FakeHepsiburada::exchanges`], so a test
    /// can validate both directions against Hepsiburada's OpenAPI.
    pub record_exchanges: bool,
}

/// One request and its answer, as recorded with [`Config::record_exchanges`].
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// The path as matched, e.g. `/listings/merchantid/{merchant}/stock-uploads`.
    pub route: String,
    pub headers: HeaderMap,
    pub request: Vec<u8>,
    pub status: u16,
    pub response: Vec<u8>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            merchant_id: "5e2f3c4d-1a2b-4c3d-8e9f-0a1b2c3d4e5f".into(),
            service_key: "Fk7Srv9Key12".into(),
            integrator: "meschain_dev".into(),
            listing_rate_limit: Some(100),
            block_for: Duration::from_secs(10),
            orders_rate_limit: Some(1000),
            reset_seconds: 1,
            result_polls_in_progress: 0,
            failing_sku_prefix: "FAIL-".into(),
            latency: Duration::ZERO,
            record_exchanges: false,
        }
    }
}

/// Faults a test queues at run time (also through `POST /_fake/faults`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Statuses the next stock/price uploads answer with, in order (429 carries `X-RateLimit-*`;
    /// 200 lets that upload through).
    #[serde(default)]
    pub push: Vec<u16>,
    /// Statuses the next upload-result reads answer with.
    #[serde(default)]
    pub poll: Vec<u16>,
    /// Statuses the next order pages answer with.
    #[serde(default)]
    pub orders: Vec<u16>,
    /// Replaces [`Config::reset_seconds`].
    #[serde(default)]
    pub reset_seconds: Option<u64>,
}

/// What the fake has seen, for assertions.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub stock_uploads: u64,
    pub price_uploads: u64,
    /// Elements applied (valid elements of accepted uploads).
    pub items_applied: u64,
    pub items_refused: u64,
    /// Skus applied by more than one upload of the same kind.
    pub skus_applied_more_than_once: u64,
    pub largest_upload: u64,
    pub rejected_auth: u64,
    pub rejected_user_agent: u64,
    pub rejected_body: u64,
    pub rate_limited: u64,
    pub blocked: u64,
    pub injected_faults: u64,
    pub result_polls: u64,
    pub order_pages: u64,
}

#[derive(Debug, Clone, Default)]
struct Listing {
    stock: Option<u64>,
    price: Option<f64>,
    stock_applied: u32,
    price_applied: u32,
}

struct Upload {
    kind: Kind,
    created_at: String,
    total: usize,
    errors: Vec<Value>,
    polls: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stock,
    Price,
}

struct FakeOrder {
    line_id: String,
    order_number: String,
    order_date_ms: i64,
    sku: String,
    quantity: u32,
    /// Kuruş, so totals stay exact.
    unit_minor: u64,
}

#[derive(Default)]
struct Ledger {
    stats: Stats,
    listings: HashMap<String, Listing>,
    refused: HashSet<String>,
    uploads: HashMap<String, Upload>,
    orders: Vec<FakeOrder>,
    windows: HashMap<&'static str, VecDeque<Instant>>,
    blocked_until: Option<Instant>,
    faults: Faults,
    exchanges: Vec<Exchange>,
}

struct Shared {
    config: Config,
    ledger: Mutex<Ledger>,
}

/// A running fake; stop it with [`FakeHepsiburada::shutdown`].
pub struct FakeHepsiburada {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// Serves the fake on `listener` (bind it to `127.0.0.1:0`).
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<FakeHepsiburada> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared { config, ledger: Mutex::new(Ledger::default()) });
    let (stop, mut stopped) = watch::channel(false);
    let app = router(shared.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "fake hepsiburada server stopped");
        }
    });
    Ok(FakeHepsiburada { addr, shared, stop, server })
}

impl FakeHepsiburada {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `HEPSIBURADA_BASE_URL` (listing) and `HEPSIBURADA_ORDERS_BASE_URL` (OMS) should be:
    /// one server plays both hosts.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.lock().unwrap().stats.clone()
    }

    /// How many accepted uploads changed this SKU (stock and price uploads alike).
    pub fn times_applied(&self, sku: &str) -> u32 {
        let ledger = self.shared.ledger.lock().unwrap();
        ledger.listings.get(sku).map_or(0, |l| l.stock_applied + l.price_applied)
    }

    pub fn stock(&self, sku: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().listings.get(sku).and_then(|l| l.stock)
    }

    pub fn price(&self, sku: &str) -> Option<f64> {
        self.shared.ledger.lock().unwrap().listings.get(sku).and_then(|l| l.price)
    }

    /// Hepsiburada refuses updates of this SKU (as for a listing that does not exist).
    pub fn refuse(&self, sku: &str) {
        self.shared.ledger.lock().unwrap().refused.insert(sku.to_string());
    }

    pub fn inject(&self, faults: Faults) {
        self.shared.ledger.lock().unwrap().faults = faults;
    }

    /// Adds `n` paid order lines dated evenly within `[from_ms, to_ms]`.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        let first = ledger.orders.len() as u64;
        for i in 0..n {
            let at = if n <= 1 { from_ms } else { from_ms + (to_ms - from_ms) * i64::from(i) / i64::from(n - 1) };
            let k = first + u64::from(i);
            ledger.orders.push(FakeOrder {
                line_id: uuid::Uuid::new_v4().to_string(),
                order_number: format!("HB{}", 40_000_000 + k),
                order_date_ms: at,
                sku: format!("SKU-{:07}", k % 1000),
                quantity: 1 + (k % 3) as u32,
                unit_minor: 10_000 + (k % 50) * 100 + 50,
            });
        }
    }

    /// Every exchange so far (empty unless [`Config::record_exchanges`]).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.ledger.lock().unwrap().exchanges.clone()
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/listings/merchantid/{merchant}/stock-uploads", post(stock_upload))
        .route("/listings/merchantid/{merchant}/price-uploads", post(price_upload))
        .route("/listings/merchantid/{merchant}/stock-uploads/id/{id}", get(stock_result))
        .route("/listings/merchantid/{merchant}/price-uploads/id/{id}", get(price_result))
        .route("/orders/merchantid/{merchant}", get(orders))
        .route("/_fake/stats", get(stats))
        .route("/_fake/faults", post(set_faults))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

/// Largest body kept by the recorder (an upload of 4,000 elements is about 300 KB).
const MAX_RECORDED_BODY: usize = 4 * 1024 * 1024;

async fn record(
    State(shared): State<Arc<Shared>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = matched.map(|m| m.as_str().to_string()).unwrap_or_default();
    if !shared.config.record_exchanges || route.starts_with("/_fake") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(request_body) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let (method, headers) = (parts.method.to_string(), parts.headers.clone());
    let response =
        next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(request_body.clone()))).await;
    let (parts, body) = response.into_parts();
    let response_body = axum::body::to_bytes(body, MAX_RECORDED_BODY).await.unwrap_or_default();
    shared.ledger.lock().unwrap().exchanges.push(Exchange {
        method,
        route,
        headers,
        request: request_body.to_vec(),
        status: parts.status.as_u16(),
        response: response_body.to_vec(),
    });
    Response::from_parts(parts, axum::body::Body::from(response_body))
}

/// Error bodies are plain strings, as Hepsiburada's OMS spec declares them (`schema: string`);
/// the listing spec declares none (UNDOCUMENTED), so the same shape is used there.
fn text(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_string()).into_response()
}

/// Basic auth first (401), then the integrator `User-Agent` (403), then the path's merchant
/// (403). UNDOCUMENTED: the statuses of the last two.
fn refuse_caller(shared: &Shared, headers: &HeaderMap, merchant: &str) -> Option<Response> {
    let c = &shared.config;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.merchant_id, c.service_key))
    );
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        shared.ledger.lock().unwrap().stats.rejected_auth += 1;
        return Some(text(StatusCode::UNAUTHORIZED, "Unauthorized: merchant id or service key is wrong"));
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ua != c.integrator {
        shared.ledger.lock().unwrap().stats.rejected_user_agent += 1;
        return Some(text(StatusCode::FORBIDDEN, "User-Agent must be the integrator's user name"));
    }
    if !merchant.eq_ignore_ascii_case(&c.merchant_id) {
        return Some(text(StatusCode::FORBIDDEN, "merchant id does not match the credentials"));
    }
    None
}

/// Sliding one-second window of `endpoint`; `true` when this request is over `limit`.
fn over_limit(ledger: &mut Ledger, endpoint: &'static str, limit: u32) -> bool {
    let now = Instant::now();
    let q = ledger.windows.entry(endpoint).or_default();
    while q.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
        q.pop_front();
    }
    if q.len() as u32 >= limit {
        return true;
    }
    q.push_back(now);
    false
}

/// The catalog limit: over 100 requests/s is answered 403 and the caller blocked for a while.
fn listing_gate(shared: &Shared, ledger: &mut Ledger) -> Option<Response> {
    let now = Instant::now();
    if ledger.blocked_until.is_some_and(|until| now < until) {
        ledger.stats.blocked += 1;
        return Some(text(StatusCode::FORBIDDEN, "Too many requests: this IP address is blocked"));
    }
    let limit = shared.config.listing_rate_limit?;
    if over_limit(ledger, "listing", limit) {
        ledger.stats.rate_limited += 1;
        ledger.blocked_until = Some(now + shared.config.block_for);
        return Some(text(StatusCode::FORBIDDEN, "Too many requests: this IP address is blocked"));
    }
    None
}

fn too_many(limit: u32, reset: u64) -> Response {
    let mut r = text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(0));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    r
}

fn injected(shared: &Shared, ledger: &mut Ledger, status: u16, limit: u32) -> Response {
    ledger.stats.injected_faults += 1;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return too_many(limit, ledger.faults.reset_seconds.unwrap_or(shared.config.reset_seconds));
    }
    text(status, "injected fault")
}

fn sku_of(element: &Value) -> (Option<&str>, Option<&str>) {
    let s = |k: &str| element.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    (s("merchantSku"), s("hepsiburadaSku"))
}

/// Why Hepsiburada would refuse one element, or `None`.
fn element_error(shared: &Shared, ledger: &Ledger, kind: Kind, element: &Value) -> Option<String> {
    if !element.is_object() {
        return Some("element must be an object".into());
    }
    let (merchant_sku, hb_sku) = sku_of(element);
    let Some(sku) = merchant_sku.or(hb_sku) else {
        return Some("merchantSku veya hepsiburadaSku zorunludur".into());
    };
    if ledger.refused.contains(sku) || sku.starts_with(&shared.config.failing_sku_prefix) {
        return Some(format!("Listing bulunamadı: {sku}"));
    }
    match kind {
        Kind::Stock => match element.get("availableStock").and_then(Value::as_i64) {
            Some(q) if (0..=i64::from(i32::MAX)).contains(&q) => None,
            _ => Some("availableStock must be a non-negative integer".into()),
        },
        Kind::Price => match element.get("price").and_then(Value::as_f64) {
            Some(p) if p > 0.0 && p.is_finite() => None,
            _ => Some("price must be a positive number".into()),
        },
    }
}

async fn stock_upload(
    State(shared): State<Arc<Shared>>,
    Path(merchant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    upload(shared, Kind::Stock, merchant, headers, body).await
}

async fn price_upload(
    State(shared): State<Arc<Shared>>,
    Path(merchant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    upload(shared, Kind::Price, merchant, headers, body).await
}

async fn upload(
    shared: Arc<Shared>,
    kind: Kind,
    merchant: String,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    if let Some(r) = listing_gate(&shared, &mut shared.ledger.lock().unwrap()) {
        return r;
    }
    if let Some(r) = refuse_caller(&shared, &headers, &merchant) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if !ledger.faults.push.is_empty() {
        // A queued 200 lets that upload through (to fail a later one of the same push).
        let status = ledger.faults.push.remove(0);
        if status != 200 {
            return injected(&shared, &mut ledger, status, shared.config.listing_rate_limit.unwrap_or(100));
        }
    }
    // UNDOCUMENTED: the status of a body that is not the documented array (400 assumed).
    let elements = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(a)) => a,
        Ok(_) => {
            ledger.stats.rejected_body += 1;
            return text(StatusCode::BAD_REQUEST, "the body must be a JSON array");
        }
        Err(e) => {
            ledger.stats.rejected_body += 1;
            return text(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}"));
        }
    };
    if elements.is_empty() || elements.len() > MAX_ITEMS_PER_UPLOAD {
        ledger.stats.rejected_body += 1;
        return text(StatusCode::BAD_REQUEST, &format!("an upload carries 1 to {MAX_ITEMS_PER_UPLOAD} elements"));
    }
    let mut errors = Vec::new();
    for (no, element) in elements.iter().enumerate() {
        if let Some(reason) = element_error(&shared, &ledger, kind, element) {
            ledger.stats.items_refused += 1;
            let (merchant_sku, hb_sku) = sku_of(element);
            errors.push(json!({
                "elementNo": no,
                "merchantSku": merchant_sku,
                "hepsiburadaSku": hb_sku,
                "errors": [reason],
            }));
            continue;
        }
        let (merchant_sku, hb_sku) = sku_of(element);
        let sku = merchant_sku.or(hb_sku).unwrap_or_default().to_string();
        let listing = ledger.listings.entry(sku).or_default();
        let applied = match kind {
            Kind::Stock => {
                listing.stock = element.get("availableStock").and_then(Value::as_u64);
                listing.stock_applied += 1;
                listing.stock_applied
            }
            Kind::Price => {
                listing.price = element.get("price").and_then(Value::as_f64);
                listing.price_applied += 1;
                listing.price_applied
            }
        };
        ledger.stats.items_applied += 1;
        if applied == 2 {
            ledger.stats.skus_applied_more_than_once += 1;
        }
    }
    match kind {
        Kind::Stock => ledger.stats.stock_uploads += 1,
        Kind::Price => ledger.stats.price_uploads += 1,
    }
    ledger.stats.largest_upload = ledger.stats.largest_upload.max(elements.len() as u64);
    let id = uuid::Uuid::new_v4().to_string();
    let created_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    ledger.uploads.insert(id.clone(), Upload { kind, created_at, total: elements.len(), errors, polls: 0 });
    Json(json!({ "id": id })).into_response()
}

async fn stock_result(
    State(shared): State<Arc<Shared>>,
    Path((merchant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    result(shared, Kind::Stock, merchant, id, headers)
}

async fn price_result(
    State(shared): State<Arc<Shared>>,
    Path((merchant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    result(shared, Kind::Price, merchant, id, headers)
}

fn result(shared: Arc<Shared>, kind: Kind, merchant: String, id: String, headers: HeaderMap) -> Response {
    if let Some(r) = listing_gate(&shared, &mut shared.ledger.lock().unwrap()) {
        return r;
    }
    if let Some(r) = refuse_caller(&shared, &headers, &merchant) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.stats.result_polls += 1;
    if !ledger.faults.poll.is_empty() {
        let status = ledger.faults.poll.remove(0);
        return injected(&shared, &mut ledger, status, shared.config.listing_rate_limit.unwrap_or(100));
    }
    let in_progress_polls = shared.config.result_polls_in_progress;
    // UNDOCUMENTED: an unknown id's answer (404 assumed).
    let Some(upload) = ledger.uploads.get_mut(&id).filter(|u| u.kind == kind) else {
        return text(StatusCode::NOT_FOUND, "upload not found");
    };
    upload.polls += 1;
    let ready = upload.polls > in_progress_polls;
    let mut body = json!({
        "id": id,
        "status": if ready { STATUS_DONE } else { STATUS_PROCESSING },
        "createdAt": upload.created_at,
        "total": upload.total,
        "errors": if ready { Value::Array(upload.errors.clone()) } else { json!([]) },
    });
    if kind == Kind::Price {
        body["priceValidations"] = json!([]);
    }
    Json(body).into_response()
}

/// `yyyy-MM-dd HH:mm` in Turkey time → epoch ms.
pub fn parse_hb_date(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let local = time::PrimitiveDateTime::parse(s.trim(), format).ok()?;
    Some((local.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64 - TURKEY_OFFSET_MS)
}

fn format_local(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::UtcOffset::from_hms(3, 0, 0).expect("valid offset"));
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn money(minor: u64) -> Value {
    json!({ "amount": minor as f64 / 100.0, "currency": "TRY" })
}

async fn orders(
    State(shared): State<Arc<Shared>>,
    Path(merchant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refuse_caller(&shared, &headers, &merchant) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    let limit_per_s = shared.config.orders_rate_limit.unwrap_or(1000);
    if shared.config.orders_rate_limit.is_some() && over_limit(&mut ledger, "orders", limit_per_s) {
        ledger.stats.rate_limited += 1;
        return too_many(limit_per_s, ledger.faults.reset_seconds.unwrap_or(shared.config.reset_seconds));
    }
    if !ledger.faults.orders.is_empty() {
        let status = ledger.faults.orders.remove(0);
        return injected(&shared, &mut ledger, status, limit_per_s);
    }
    // Documented since 15 Aug 2023: `limit` and `offset` are mandatory.
    let (Some(limit), Some(offset)) = (q.get("limit"), q.get("offset")) else {
        return text(StatusCode::BAD_REQUEST, "limit and offset are required");
    };
    let (Ok(limit), Ok(offset)) = (limit.parse::<u32>(), offset.parse::<u64>()) else {
        return text(StatusCode::BAD_REQUEST, "limit and offset must be non-negative integers");
    };
    if limit == 0 || limit > MAX_ORDERS_LIMIT {
        return text(StatusCode::BAD_REQUEST, "limit must be between 1 and 100");
    }
    let parse = |k: &str| q.get(k).map(|s| parse_hb_date(s).ok_or(()));
    let (begin, end) = match (parse("begindate"), parse("enddate")) {
        (Some(Err(())), _) | (_, Some(Err(()))) => {
            return text(StatusCode::BAD_REQUEST, "begindate and enddate are yyyy-MM-dd HH:mm");
        }
        (Some(Ok(b)), Some(Ok(e))) => (b, e.min(b + MAX_ORDERS_RANGE_MS)),
        // Documented: a longer range ignores enddate and uses begindate + 24 h.
        (Some(Ok(b)), None) => (b, b + MAX_ORDERS_RANGE_MS),
        (None, Some(Ok(e))) => (i64::MIN, e),
        (None, None) => (i64::MIN, i64::MAX),
    };
    ledger.stats.order_pages += 1;
    let mut matching: Vec<&FakeOrder> =
        ledger.orders.iter().filter(|o| o.order_date_ms >= begin && o.order_date_ms < end).collect();
    matching.sort_by_key(|o| o.order_date_ms);
    let total = matching.len() as u64;
    let items: Vec<Value> = matching
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|o| {
            json!({
                "id": o.line_id,
                "orderId": o.line_id,
                "orderNumber": o.order_number,
                "orderDate": format_local(o.order_date_ms),
                "lastStatusUpdateDate": format_local(o.order_date_ms),
                "merchantSKU": o.sku,
                "sku": format!("HBV{}", o.sku),
                "quantity": o.quantity,
                "unitPrice": money(o.unit_minor),
                "totalPrice": money(o.unit_minor * u64::from(o.quantity)),
                "status": "Open",
            })
        })
        .collect();
    Json(json!({
        "items": items,
        "limit": limit,
        "offset": offset,
        "pageCount": total.div_ceil(u64::from(limit)),
        "totalCount": total,
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
