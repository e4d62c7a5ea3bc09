//! A local fake of Amazon's Selling Partner API, for tests and benchmarks that must not reach
//! the real marketplace. It follows the documented contract (the models and schemas of
//! <https://github.com/amzn/selling-partner-api-models>, the Login with Amazon token guide),
//! errors included, and shares no code with the connector: it is an independent check of it.
//!
//! - `POST /auth/o2/token`: the LWA refresh-token grant (form-encoded); `invalid_client` (401)
//!   and `invalid_grant` (400) in OAuth 2 shape; access tokens `Atza|…` with `expires_in`.
//! - Every SP-API route checks `x-amz-access-token`: unknown or expired → 403 `ErrorList`
//!   `Unauthorized` whose details say which. Each operation has Amazon's documented token
//!   bucket (rate, burst); an empty bucket answers 429 `QuotaExceeded`, with no `Retry-After`.
//! - `POST /feeds/2021-06-30/documents` → 201 `{feedDocumentId, url}`, a presigned URL this
//!   fake serves itself (5 minutes; the upload's `Content-Type` must be the declared one).
//! - `POST /feeds/2021-06-30/feeds` (`JSON_LISTINGS_FEED`) → 202 `{feedId}`. The uploaded
//!   document is processed at once (as Amazon does, whether or not anyone polls): each `PATCH`
//!   message's stock and price are applied or refused with issues.
//! - `GET /feeds/2021-06-30/feeds/{feedId}`: `IN_QUEUE` → `IN_PROGRESS` → `DONE` over
//!   [`Config::feed_polls_in_progress`] polls (or stuck in progress, as a fault), `FATAL` when
//!   the document itself is unusable; `resultFeedDocumentId` once finished.
//! - `GET /feeds/2021-06-30/documents/{id}` → the report's URL (gzip with
//!   `compressionAlgorithm: GZIP` when [`Config::gzip_reports`]).
//! - `GET /orders/2026-01-01/orders` (`searchOrders`): filter by `lastUpdatedAfter/Before`,
//!   `maxResultsPerPage` ≤ 100, `paginationToken` bound to the other parameters.
//! - `/_fake/stats`, `/_fake/faults`, `/_fake/listings`, `/_fake/orders`, `/_fake/expire-tokens`
//!   for tests in any language; [`FakeAmazon::exchanges`] keeps each SP-API request and answer
//!   body so tests can validate them against Amazon's models.
//!
//! Where the documentation is silent (issue codes of the fake's refusals, the wording of the
//! token errors), the choice is marked `UNDOCUMENTED` below.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Documented: at most 25,000 messages per JSON_LISTINGS_FEED.
pub const MAX_FEED_MESSAGES: usize = 25_000;
/// Documented: `maxResultsPerPage` of searchOrders is at most 100.
pub const MAX_ORDERS_PAGE: usize = 100;
/// Documented: presigned document URLs expire after 5 minutes.
pub const DOCUMENT_URL_LIFETIME: Duration = Duration::from_secs(300);
/// The issue code of a refused item (UNDOCUMENTED: the fake's own).
pub const REFUSED_CODE: &str = "99001";
/// The issue code of a patch on a SKU with no listing (UNDOCUMENTED: the fake's own).
pub const NO_LISTING_CODE: &str = "99002";

/// Amazon's documented default token buckets (rate per second, burst).
pub const BUCKETS: [(&str, f64, u32); 5] = [
    ("createFeedDocument", 0.5, 15),
    ("createFeed", 0.0083, 15),
    ("getFeed", 2.0, 15),
    ("getFeedDocument", 0.0222, 10),
    ("searchOrders", 0.0056, 20),
];

/// How the fake behaves; [`Config::default`] is the documented contract.
#[derive(Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub seller_id: String,
    pub marketplace_id: String,
    pub currency: String,
    /// Lifetime of access tokens (documented: 3600 s).
    pub token_lifetime: Duration,
    /// Enforce the documented token buckets.
    pub rate_limits: bool,
    /// getFeed polls that answer `IN_QUEUE`/`IN_PROGRESS` before `DONE`.
    pub feed_polls_in_progress: u32,
    /// Serve processing reports gzip-compressed.
    pub gzip_reports: bool,
    /// Refuse patches of SKUs that have no listing (see [`FakeAmazon::know_listings`]).
    pub require_listings: bool,
    /// SKUs starting with this are refused with an issue.
    pub failing_sku_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_id: "amzn1.application-oa2-client.fake".into(),
            client_secret: "fake-client-secret".into(),
            refresh_token: "Atzr|fake-refresh-token".into(),
            seller_id: "A2FAKESELLER".into(),
            marketplace_id: "A33AVAJ2PDY3EV".into(),
            currency: "TRY".into(),
            token_lifetime: Duration::from_secs(3600),
            rate_limits: true,
            feed_polls_in_progress: 0,
            gzip_reports: false,
            require_listings: false,
            failing_sku_prefix: "FAIL-".into(),
        }
    }
}

/// Faults a test queues at run time (also through `POST /_fake/faults`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Statuses the next createFeedDocument calls answer with (429: `QuotaExceeded`).
    #[serde(default)]
    pub create_document: Vec<u16>,
    /// Statuses the next createFeed calls answer with.
    #[serde(default)]
    pub create_feed: Vec<u16>,
    /// Statuses the next getFeed calls answer with.
    #[serde(default)]
    pub get_feed: Vec<u16>,
    /// Statuses the next searchOrders calls answer with.
    #[serde(default)]
    pub orders: Vec<u16>,
    /// Feeds never leave `IN_PROGRESS`.
    #[serde(default)]
    pub stuck_feeds: bool,
}

impl Faults {
    fn create_document(&mut self) -> &mut Vec<u16> {
        &mut self.create_document
    }
    fn create_feed(&mut self) -> &mut Vec<u16> {
        &mut self.create_feed
    }
    fn get_feed(&mut self) -> &mut Vec<u16> {
        &mut self.get_feed
    }
    fn orders(&mut self) -> &mut Vec<u16> {
        &mut self.orders
    }
}

/// What the fake has seen, for assertions.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub tokens_issued: u64,
    pub rejected_token_requests: u64,
    pub rejected_access_tokens: u64,
    pub expired_access_tokens: u64,
    pub documents_created: u64,
    pub uploads: u64,
    pub feeds: u64,
    pub messages: u64,
    pub messages_applied: u64,
    pub messages_invalid: u64,
    pub largest_feed: u64,
    pub distinct_skus: u64,
    pub skus_applied_more_than_once: u64,
    pub feed_polls: u64,
    pub report_downloads: u64,
    pub order_pages: u64,
    pub throttled: u64,
    pub injected_faults: u64,
}

/// One SP-API request and its answer, for contract validation in tests.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The operation's name in Amazon's model (`createFeed`, `getFeed`, ...), or `feedDocument`
    /// for an upload, `processingReport` for a report download.
    pub operation: &'static str,
    pub status: u16,
    pub request: Option<Value>,
    pub response: Option<Value>,
}

#[derive(Default, Clone, Debug)]
struct Listing {
    stock: Option<u64>,
    price: Option<f64>,
    applied: u32,
}

struct Document {
    content_type: String,
    signature: String,
    created: Instant,
    body: Option<Vec<u8>>,
    /// A report: served compressed?
    gzip: bool,
}

struct Feed {
    created_ms: u64,
    polls: u32,
    /// `DONE` or `FATAL` once processed; the report document.
    outcome: &'static str,
    report_id: String,
}

#[derive(Clone)]
struct FakeOrder {
    id: String,
    updated_ms: i64,
    sku: String,
    quantity: u32,
    unit_cents: u64,
}

#[derive(Default)]
struct Ledger {
    stats: Stats,
    tokens: HashMap<String, Instant>,
    documents: HashMap<String, Document>,
    feeds: HashMap<String, Feed>,
    listings: HashMap<String, Listing>,
    known: HashSet<String>,
    refused: HashMap<String, String>,
    orders: Vec<FakeOrder>,
    buckets: HashMap<&'static str, (f64, Instant)>,
    faults: Faults,
    exchanges: Vec<Exchange>,
    next_feed: u64,
}

struct Shared {
    config: Config,
    addr: SocketAddr,
    ledger: Mutex<Ledger>,
}

/// A running fake; stop it with [`FakeAmazon::shutdown`].
pub struct FakeAmazon {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// Serves the fake on `listener` (bind it to `127.0.0.1:0`).
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<FakeAmazon> {
    let addr = listener.local_addr()?;
    let ledger = Ledger { next_feed: 50_000_000_000, ..Ledger::default() };
    let shared = Arc::new(Shared { config, addr, ledger: Mutex::new(ledger) });
    let (stop, mut stopped) = watch::channel(false);
    let app = router(shared.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "fake amazon server stopped");
        }
    });
    Ok(FakeAmazon { addr, shared, stop, server })
}

impl FakeAmazon {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `AMAZON_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `AMAZON_TOKEN_URL` should be.
    pub fn token_url(&self) -> String {
        format!("http://{}/auth/o2/token", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.lock().unwrap().stats.clone()
    }

    pub fn inject(&self, faults: Faults) {
        self.shared.ledger.lock().unwrap().faults = faults;
    }

    /// Adds to the queued faults (`inject` replaces them).
    pub fn with_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.shared.ledger.lock().unwrap().faults);
    }

    /// Every SP-API exchange so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.ledger.lock().unwrap().exchanges.clone()
    }

    /// Every access token issued so far expires now.
    pub fn expire_tokens(&self) {
        expire_all(&self.shared);
    }

    /// These SKUs have listings (with [`Config::require_listings`], others are refused).
    pub fn know_listings(&self, skus: &[String]) {
        self.shared.ledger.lock().unwrap().known.extend(skus.iter().cloned());
    }

    /// Patches of this SKU are refused with `reason`.
    pub fn refuse(&self, sku: &str, reason: &str) {
        self.shared.ledger.lock().unwrap().refused.insert(sku.to_string(), reason.to_string());
    }

    /// How many messages updated this SKU.
    pub fn times_applied(&self, sku: &str) -> u32 {
        self.shared.ledger.lock().unwrap().listings.get(sku).map_or(0, |l| l.applied)
    }

    pub fn stock(&self, sku: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().listings.get(sku).and_then(|l| l.stock)
    }

    pub fn price(&self, sku: &str) -> Option<f64> {
        self.shared.ledger.lock().unwrap().listings.get(sku).and_then(|l| l.price)
    }

    /// `n` orders last updated evenly within `[from_ms, to_ms]`.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        add_orders(&self.shared, n, from_ms, to_ms);
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/auth/o2/token", post(token))
        .route("/feeds/2021-06-30/documents", post(create_document))
        .route("/feeds/2021-06-30/documents/{id}", get(get_document))
        .route("/feeds/2021-06-30/feeds", post(create_feed))
        .route("/feeds/2021-06-30/feeds/{id}", get(get_feed))
        .route("/orders/2026-01-01/orders", get(search_orders))
        .route("/_s3/{id}", get(download).put(upload))
        .route("/_fake/stats", get(stats))
        .route("/_fake/faults", post(set_faults))
        .route("/_fake/listings", post(set_listings))
        .route("/_fake/orders", post(post_orders))
        .route("/_fake/expire-tokens", post(post_expire))
        .with_state(shared)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn parse_iso(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Amazon's `ErrorList`.
fn error_list(status: StatusCode, code: &str, message: &str, details: Option<&str>) -> (StatusCode, Value) {
    let mut e = json!({ "code": code, "message": message });
    if let Some(d) = details {
        e["details"] = json!(d);
    }
    (status, json!({ "errors": [e] }))
}

fn record(shared: &Shared, operation: &'static str, request: Option<Value>, answer: (StatusCode, Value)) -> Response {
    let (status, body) = answer;
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.exchanges.push(Exchange { operation, status: status.as_u16(), request, response: Some(body.clone()) });
    drop(ledger);
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert("x-amzn-requestid", uuid::Uuid::new_v4().to_string().parse().expect("uuid header"));
    r
}

/// The access token check every SP-API operation makes.
fn refuse_token(shared: &Shared, headers: &HeaderMap) -> Option<(StatusCode, Value)> {
    let token = headers.get("x-amz-access-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut ledger = shared.ledger.lock().unwrap();
    match ledger.tokens.get(token) {
        Some(expires) if Instant::now() < *expires => None,
        Some(_) => {
            ledger.stats.expired_access_tokens += 1;
            Some(error_list(
                StatusCode::FORBIDDEN,
                "Unauthorized",
                "Access to requested resource is denied.",
                Some("The access token you provided has expired."),
            ))
        }
        None => {
            ledger.stats.rejected_access_tokens += 1;
            Some(error_list(
                StatusCode::FORBIDDEN,
                "Unauthorized",
                "Access to requested resource is denied.",
                Some("The access token you provided is revoked, malformed or invalid."),
            ))
        }
    }
}

/// The operation's token bucket, then any injected fault.
fn throttle_or_fault(
    shared: &Shared,
    ledger: &mut Ledger,
    operation: &'static str,
    fault: Option<fn(&mut Faults) -> &mut Vec<u16>>,
) -> Option<(StatusCode, Value)> {
    if shared.config.rate_limits
        && let Some(&(_, rate, burst)) = BUCKETS.iter().find(|(op, _, _)| *op == operation)
    {
        let now = Instant::now();
        let (tokens, at) = ledger.buckets.entry(operation).or_insert((f64::from(burst), now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(f64::from(burst));
        *at = now;
        if *tokens < 1.0 {
            ledger.stats.throttled += 1;
            return Some(quota_exceeded());
        }
        *tokens -= 1.0;
    }
    let queue = fault?(&mut ledger.faults);
    if queue.is_empty() {
        return None;
    }
    let status = queue.remove(0);
    ledger.stats.injected_faults += 1;
    Some(match status {
        429 => quota_exceeded(),
        503 => {
            error_list(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "Service temporarily unavailable.", None)
        }
        s => error_list(
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "InternalFailure",
            "We encountered an internal error. Please try again.",
            None,
        ),
    })
}

fn quota_exceeded() -> (StatusCode, Value) {
    error_list(
        StatusCode::TOO_MANY_REQUESTS,
        "QuotaExceeded",
        "You exceeded your quota for the requested resource.",
        Some(""),
    )
}

async fn token(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let form: HashMap<String, String> = url_decode(&body);
    let c = &shared.config;
    let refuse = |status: StatusCode, error: &str, description: &str| {
        shared.ledger.lock().unwrap().stats.rejected_token_requests += 1;
        (status, Json(json!({ "error": error, "error_description": description }))).into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported.",
        );
    }
    if form.get("client_id") != Some(&c.client_id) || form.get("client_secret") != Some(&c.client_secret) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
    }
    if form.get("refresh_token") != Some(&c.refresh_token) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    }
    let access = format!("Atza|{}", uuid::Uuid::new_v4().simple());
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.tokens.insert(access.clone(), Instant::now() + c.token_lifetime);
    ledger.stats.tokens_issued += 1;
    Json(json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": c.token_lifetime.as_secs(),
        "refresh_token": c.refresh_token,
    }))
    .into_response()
}

fn url_decode(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((percent_decode(k), percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

fn presigned(shared: &Shared, id: &str, signature: &str) -> String {
    format!("http://{}/_s3/{id}?X-Amz-Expires=300&X-Amz-Signature={signature}", shared.addr)
}

async fn create_document(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let request = parse_json(&body);
    if let Some(r) = refuse_token(&shared, &headers) {
        return record(&shared, "createFeedDocument", request, r);
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = throttle_or_fault(&shared, &mut ledger, "createFeedDocument", Some(Faults::create_document)) {
        drop(ledger);
        return record(&shared, "createFeedDocument", request, r);
    }
    let content_type = request.as_ref().and_then(|v| v.get("contentType")).and_then(Value::as_str).unwrap_or("");
    if content_type.is_empty() {
        drop(ledger);
        let r = error_list(StatusCode::BAD_REQUEST, "InvalidInput", "contentType is required.", None);
        return record(&shared, "createFeedDocument", request, r);
    }
    let id = format!("amzn1.tortuga.4.eu.{}", uuid::Uuid::new_v4());
    let signature = uuid::Uuid::new_v4().simple().to_string();
    let url = presigned(&shared, &id, &signature);
    ledger.documents.insert(
        id.clone(),
        Document {
            content_type: content_type.to_string(),
            signature,
            created: Instant::now(),
            body: None,
            gzip: false,
        },
    );
    ledger.stats.documents_created += 1;
    drop(ledger);
    record(&shared, "createFeedDocument", request, (StatusCode::CREATED, json!({ "feedDocumentId": id, "url": url })))
}

/// S3's answer to a refused presigned request (XML, as S3 answers).
fn s3_error(status: StatusCode, code: &str) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code></Error>");
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

#[derive(Deserialize)]
struct Presigned {
    #[serde(rename = "X-Amz-Signature")]
    signature: Option<String>,
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<Presigned>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut ledger = shared.ledger.lock().unwrap();
    let Some(doc) = ledger.documents.get_mut(&id) else { return s3_error(StatusCode::NOT_FOUND, "NoSuchKey") };
    if q.signature.as_deref() != Some(doc.signature.as_str()) {
        return s3_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
    }
    if doc.created.elapsed() > DOCUMENT_URL_LIFETIME {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied");
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type != doc.content_type {
        // The Content-Type is part of what the URL was signed for.
        return s3_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
    }
    doc.body = Some(body.to_vec());
    ledger.stats.uploads += 1;
    let request = parse_json(&body);
    ledger.exchanges.push(Exchange { operation: "feedDocument", status: 200, request, response: None });
    StatusCode::OK.into_response()
}

async fn download(State(shared): State<Arc<Shared>>, Path(id): Path<String>, Query(q): Query<Presigned>) -> Response {
    let mut ledger = shared.ledger.lock().unwrap();
    let Some(doc) = ledger.documents.get(&id) else { return s3_error(StatusCode::NOT_FOUND, "NoSuchKey") };
    if q.signature.as_deref() != Some(doc.signature.as_str()) {
        return s3_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
    }
    let Some(body) = doc.body.clone() else { return s3_error(StatusCode::NOT_FOUND, "NoSuchKey") };
    let gzip = doc.gzip;
    ledger.stats.report_downloads += 1;
    let response = if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(&body);
        e.finish().unwrap_or_default()
    } else {
        body.clone()
    };
    ledger.exchanges.push(Exchange {
        operation: "processingReport",
        status: 200,
        request: None,
        response: parse_json(&body),
    });
    (StatusCode::OK, response).into_response()
}

async fn create_feed(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let request = parse_json(&body);
    if let Some(r) = refuse_token(&shared, &headers) {
        return record(&shared, "createFeed", request, r);
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = throttle_or_fault(&shared, &mut ledger, "createFeed", Some(Faults::create_feed)) {
        drop(ledger);
        return record(&shared, "createFeed", request, r);
    }
    let spec = request.clone().unwrap_or(Value::Null);
    let invalid = |ledger: std::sync::MutexGuard<'_, Ledger>, message: &str| {
        drop(ledger);
        record(
            &shared,
            "createFeed",
            request.clone(),
            error_list(StatusCode::BAD_REQUEST, "InvalidInput", message, None),
        )
    };
    if spec.get("feedType").and_then(Value::as_str) != Some("JSON_LISTINGS_FEED") {
        return invalid(ledger, "Invalid feedType: this fake models JSON_LISTINGS_FEED.");
    }
    let marketplaces: Vec<&str> =
        spec.get("marketplaceIds").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if marketplaces.is_empty() || marketplaces.len() > 25 {
        return invalid(ledger, "marketplaceIds must have 1 to 25 entries.");
    }
    if marketplaces.iter().any(|m| *m != shared.config.marketplace_id) {
        return invalid(ledger, "Invalid marketplaceIds: the seller does not sell in that marketplace.");
    }
    let Some(doc_id) = spec.get("inputFeedDocumentId").and_then(Value::as_str) else {
        return invalid(ledger, "inputFeedDocumentId is required.");
    };
    let Some(input) = ledger.documents.get(doc_id).and_then(|d| d.body.clone()) else {
        return invalid(ledger, "Invalid inputFeedDocumentId: no document was uploaded for it.");
    };
    ledger.next_feed += 1;
    let feed_id = ledger.next_feed.to_string();
    let report = process(&shared, &mut ledger, &feed_id, &input);
    let outcome = if report.1 { "FATAL" } else { "DONE" };
    let report_id = format!("amzn1.tortuga.4.eu.{}", uuid::Uuid::new_v4());
    let signature = uuid::Uuid::new_v4().simple().to_string();
    let body = serde_json::to_vec(&report.0).expect("report serializes");
    ledger.documents.insert(
        report_id.clone(),
        Document {
            content_type: "application/json".into(),
            signature,
            created: Instant::now(),
            body: Some(body),
            gzip: shared.config.gzip_reports,
        },
    );
    ledger.feeds.insert(feed_id.clone(), Feed { created_ms: now_ms(), polls: 0, outcome, report_id });
    ledger.stats.feeds += 1;
    drop(ledger);
    record(&shared, "createFeed", request, (StatusCode::ACCEPTED, json!({ "feedId": feed_id })))
}

/// Processes a feed document: applies each valid message, returns the report and whether
/// the document as a whole was unusable (`FATAL`).
fn process(shared: &Shared, ledger: &mut Ledger, feed_id: &str, input: &[u8]) -> (Value, bool) {
    let c = &shared.config;
    let fatal = |message: &str| {
        let report = json!({
            "header": { "sellerId": c.seller_id, "version": "2.0", "feedId": feed_id },
            "issues": [{ "code": "4000001", "severity": "ERROR", "message": message }],
            "summary": { "errors": 1, "warnings": 0, "messagesProcessed": 0, "messagesAccepted": 0, "messagesInvalid": 0 },
        });
        (report, true)
    };
    let Some(doc) = parse_json(input) else { return fatal("The feed document is not valid JSON.") };
    let header = doc.get("header").cloned().unwrap_or(Value::Null);
    if header.get("sellerId").and_then(Value::as_str) != Some(c.seller_id.as_str()) {
        return fatal("header.sellerId does not match the selling partner that submitted the feed.");
    }
    if header.get("version").and_then(Value::as_str) != Some("2.0") {
        return fatal("header.version must be \"2.0\".");
    }
    let Some(messages) = doc.get("messages").and_then(Value::as_array) else {
        return fatal("messages is required.");
    };
    if messages.is_empty() || messages.len() > MAX_FEED_MESSAGES {
        return fatal("messages must have 1 to 25000 entries.");
    }
    let report_items = header.get("report").and_then(|r| r.get("includedData")).is_some();
    let mut issues = Vec::new();
    let mut items = Vec::new();
    let mut seen_ids = HashSet::new();
    let (mut accepted, mut invalid) = (0u64, 0u64);
    for m in messages {
        let id = m.get("messageId").and_then(Value::as_u64).filter(|id| (1..=2_147_483_647).contains(id));
        let sku = m.get("sku").and_then(Value::as_str).unwrap_or("");
        let refusal = match id {
            None => Some(("4000002", "messageId must be an integer from 1 to 2147483647.".to_string())),
            Some(id) if !seen_ids.insert(id) => {
                Some(("4000003", format!("messageId {id} is not unique in this feed.")))
            }
            Some(_) => check_message(shared, ledger, m, sku),
        };
        ledger.stats.messages += 1;
        match refusal {
            Some((code, message)) => {
                invalid += 1;
                let mut issue = json!({ "code": code, "severity": "ERROR", "message": message });
                if let Some(id) = id {
                    issue["messageId"] = json!(id);
                }
                if !sku.is_empty() {
                    issue["sku"] = json!(sku);
                }
                issues.push(issue);
            }
            None => {
                accepted += 1;
                apply(ledger, m, sku);
                if report_items {
                    items.push(json!({ "sku": sku, "issues": [] }));
                }
            }
        }
    }
    ledger.stats.messages_applied += accepted;
    ledger.stats.messages_invalid += invalid;
    ledger.stats.largest_feed = ledger.stats.largest_feed.max(messages.len() as u64);
    let mut out_header = json!({ "sellerId": c.seller_id, "version": "2.0", "feedId": feed_id });
    if let Some(r) = header.get("report") {
        out_header["report"] = r.clone();
    }
    let mut report = json!({
        "header": out_header,
        "issues": issues,
        "summary": {
            "errors": invalid,
            "warnings": 0,
            "messagesProcessed": messages.len(),
            "messagesAccepted": accepted,
            "messagesInvalid": invalid,
        },
    });
    if report_items {
        report["items"] = Value::Array(items);
    }
    (report, false)
}

/// Why Amazon would refuse one message, or `None`.
fn check_message(shared: &Shared, ledger: &Ledger, m: &Value, sku: &str) -> Option<(&'static str, String)> {
    let c = &shared.config;
    if sku.is_empty() {
        return Some(("4000004", "sku is required.".into()));
    }
    if m.get("operationType").and_then(Value::as_str) != Some("PATCH") {
        return Some(("4000005", "This fake models operationType PATCH only.".into()));
    }
    if m.get("productType").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some(("4000006", "productType is required for PATCH.".into()));
    }
    let Some(patches) = m.get("patches").and_then(Value::as_array).filter(|p| !p.is_empty()) else {
        return Some(("4000007", "patches must have at least one operation.".into()));
    };
    if let Some(reason) = ledger.refused.get(sku) {
        return Some((REFUSED_CODE, reason.clone()));
    }
    if sku.starts_with(&c.failing_sku_prefix) {
        return Some((REFUSED_CODE, format!("The SKU '{sku}' is suppressed and cannot be updated.")));
    }
    if c.require_listings && !ledger.known.contains(sku) {
        return Some((NO_LISTING_CODE, format!("No listing exists for SKU '{sku}'; PATCH needs an existing listing.")));
    }
    for p in patches {
        if !matches!(p.get("op").and_then(Value::as_str), Some("add" | "replace" | "merge" | "delete")) {
            return Some(("4000008", "op must be add, replace, merge or delete.".into()));
        }
        let value = p.get("value").and_then(Value::as_array).and_then(|v| v.first());
        match p.get("path").and_then(Value::as_str) {
            Some("/attributes/fulfillment_availability") => {
                if value.and_then(|v| v.get("quantity")).and_then(Value::as_u64).is_none() {
                    return Some((
                        "90220",
                        "'fulfillment_availability.quantity' must be a non-negative integer.".into(),
                    ));
                }
            }
            Some("/attributes/purchasable_offer") => {
                let Some(v) = value else {
                    return Some(("99022", "'purchasable_offer' needs one value.".into()));
                };
                if v.get("marketplace_id").and_then(Value::as_str) != Some(c.marketplace_id.as_str()) {
                    return Some(("90244", "'purchasable_offer.marketplace_id' is not the feed's marketplace.".into()));
                }
                if v.get("currency").and_then(Value::as_str) != Some(c.currency.as_str()) {
                    return Some(("90244", format!("'purchasable_offer.currency' must be {}.", c.currency)));
                }
                let price = v.pointer("/our_price/0/schedule/0/value_with_tax").and_then(Value::as_f64);
                if price.is_none_or(|p| p <= 0.0) {
                    return Some(("99022", "'purchasable_offer.our_price' must have a positive value.".into()));
                }
            }
            Some("/attributes/list_price") => {
                if value.and_then(|v| v.get("value_with_tax")).and_then(Value::as_f64).is_none_or(|p| p <= 0.0) {
                    return Some(("99022", "'list_price.value_with_tax' must be positive.".into()));
                }
            }
            _ => {
                return Some((
                    "90000",
                    "This fake models fulfillment_availability, purchasable_offer and list_price.".into(),
                ));
            }
        }
    }
    None
}

fn apply(ledger: &mut Ledger, m: &Value, sku: &str) {
    let mut listing = ledger.listings.remove(sku).unwrap_or_default();
    if listing.applied == 0 {
        ledger.stats.distinct_skus += 1;
    } else if listing.applied == 1 {
        ledger.stats.skus_applied_more_than_once += 1;
    }
    listing.applied += 1;
    for p in m.get("patches").and_then(Value::as_array).into_iter().flatten() {
        match p.get("path").and_then(Value::as_str) {
            Some("/attributes/fulfillment_availability") => {
                listing.stock = p.pointer("/value/0/quantity").and_then(Value::as_u64);
            }
            Some("/attributes/purchasable_offer") => {
                listing.price = p.pointer("/value/0/our_price/0/schedule/0/value_with_tax").and_then(Value::as_f64);
            }
            _ => {}
        }
    }
    ledger.listings.insert(sku.to_string(), listing);
}

async fn get_feed(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_token(&shared, &headers) {
        return record(&shared, "getFeed", None, r);
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = throttle_or_fault(&shared, &mut ledger, "getFeed", Some(Faults::get_feed)) {
        drop(ledger);
        return record(&shared, "getFeed", None, r);
    }
    ledger.stats.feed_polls += 1;
    let stuck = ledger.faults.stuck_feeds;
    let Some(feed) = ledger.feeds.get_mut(&id) else {
        drop(ledger);
        return record(
            &shared,
            "getFeed",
            None,
            error_list(StatusCode::NOT_FOUND, "NotFound", "The requested feed was not found.", None),
        );
    };
    feed.polls += 1;
    let c = &shared.config;
    let mut answer = json!({
        "feedId": id,
        "feedType": "JSON_LISTINGS_FEED",
        "marketplaceIds": [c.marketplace_id],
        "createdTime": iso(feed.created_ms as i64),
    });
    if stuck || feed.polls <= c.feed_polls_in_progress {
        let state = if feed.polls == 1 && !stuck { "IN_QUEUE" } else { "IN_PROGRESS" };
        answer["processingStatus"] = json!(state);
        if state == "IN_PROGRESS" {
            answer["processingStartTime"] = json!(iso(feed.created_ms as i64));
        }
    } else {
        answer["processingStatus"] = json!(feed.outcome);
        answer["processingStartTime"] = json!(iso(feed.created_ms as i64));
        answer["processingEndTime"] = json!(iso(now_ms() as i64));
        answer["resultFeedDocumentId"] = json!(feed.report_id);
    }
    drop(ledger);
    record(&shared, "getFeed", None, (StatusCode::OK, answer))
}

async fn get_document(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_token(&shared, &headers) {
        return record(&shared, "getFeedDocument", None, r);
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = throttle_or_fault(&shared, &mut ledger, "getFeedDocument", None) {
        drop(ledger);
        return record(&shared, "getFeedDocument", None, r);
    }
    let Some(doc) = ledger.documents.get_mut(&id) else {
        drop(ledger);
        return record(
            &shared,
            "getFeedDocument",
            None,
            error_list(StatusCode::NOT_FOUND, "NotFound", "The requested feed document was not found.", None),
        );
    };
    // A new URL each time, valid for 5 minutes.
    doc.created = Instant::now();
    let gzip = doc.gzip;
    let url = presigned(&shared, &id, &doc.signature);
    drop(ledger);
    let mut answer = json!({ "feedDocumentId": id, "url": url });
    if gzip {
        answer["compressionAlgorithm"] = json!("GZIP");
    }
    record(&shared, "getFeedDocument", None, (StatusCode::OK, answer))
}

/// A pagination token: the next offset, bound to the query it continues.
fn pagination_token(offset: usize, key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{offset}:{key}"))
}

async fn search_orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = refuse_token(&shared, &headers) {
        return record(&shared, "searchOrders", None, r);
    }
    let mut ledger = shared.ledger.lock().unwrap();
    if let Some(r) = throttle_or_fault(&shared, &mut ledger, "searchOrders", Some(Faults::orders)) {
        drop(ledger);
        return record(&shared, "searchOrders", None, r);
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let bad = |ledger: std::sync::MutexGuard<'_, Ledger>, message: &str| {
        drop(ledger);
        record(&shared, "searchOrders", None, error_list(StatusCode::BAD_REQUEST, "InvalidInput", message, None))
    };
    if param("createdAfter").is_some() == param("lastUpdatedAfter").is_some() {
        return bad(ledger, "Exactly one of createdAfter and lastUpdatedAfter is required.");
    }
    let by_created = param("createdAfter").is_some();
    let after = param(if by_created { "createdAfter" } else { "lastUpdatedAfter" }).and_then(parse_iso);
    let before = param(if by_created { "createdBefore" } else { "lastUpdatedBefore" }).map(parse_iso);
    let (Some(after), Some(before)) = (after, before.unwrap_or(Some(i64::MAX))) else {
        return bad(ledger, "Dates must be ISO 8601.");
    };
    let size = match param("maxResultsPerPage").map(str::parse::<usize>) {
        None => MAX_ORDERS_PAGE,
        Some(Ok(n)) if (1..=MAX_ORDERS_PAGE).contains(&n) => n,
        _ => return bad(ledger, "maxResultsPerPage must be between 1 and 100."),
    };
    // Everything but the page size, what to include and the token must repeat unchanged.
    let mut key_parts: Vec<String> = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "maxResultsPerPage" | "includedData" | "paginationToken"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    key_parts.sort();
    let key = format!(
        "{:x}",
        key_parts.join("&").bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
    );
    let offset = match param("paginationToken") {
        None => 0,
        Some(t) => {
            let decoded =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok().and_then(|b| String::from_utf8(b).ok());
            match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((o, k)) if k == key => match o.parse::<usize>() {
                    Ok(o) => o,
                    Err(_) => return bad(ledger, "Invalid paginationToken."),
                },
                _ => return bad(ledger, "Invalid paginationToken: the other parameters must be repeated unchanged."),
            }
        }
    };
    ledger.stats.order_pages += 1;
    let include_proceeds = query.iter().any(|(k, v)| k == "includedData" && v.split(',').any(|d| d == "PROCEEDS"));
    let mut matching: Vec<FakeOrder> =
        ledger.orders.iter().filter(|o| o.updated_ms >= after && o.updated_ms <= before).cloned().collect();
    drop(ledger);
    matching.sort_by(|a, b| (a.updated_ms, &a.id).cmp(&(b.updated_ms, &b.id)));
    let c = &shared.config;
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|o| {
            let unit = format!("{}.{:02}", o.unit_cents / 100, o.unit_cents % 100);
            let total_cents = o.unit_cents * u64::from(o.quantity);
            let total = format!("{}.{:02}", total_cents / 100, total_cents % 100);
            let mut order = json!({
                "orderId": o.id,
                "createdTime": iso(o.updated_ms - 60_000),
                "lastUpdatedTime": iso(o.updated_ms),
                "salesChannel": { "channelName": "AMAZON", "marketplaceId": c.marketplace_id },
                "fulfillment": { "fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT" },
                "orderItems": [{
                    "orderItemId": format!("{}-1", o.id),
                    "quantityOrdered": o.quantity,
                    "product": { "sellerSku": o.sku, "price": { "unitPrice": { "amount": unit, "currencyCode": c.currency } } },
                }],
            });
            if include_proceeds {
                order["proceeds"] = json!({ "grandTotal": { "amount": total, "currencyCode": c.currency } });
            }
            order
        })
        .collect();
    let mut answer = json!({ "orders": page });
    if offset + size < matching.len() {
        answer["pagination"] = json!({ "nextToken": pagination_token(offset + size, &key) });
    }
    if before != i64::MAX {
        answer[if by_created { "createdBefore" } else { "lastUpdatedBefore" }] = json!(iso(before));
    }
    record(&shared, "searchOrders", None, (StatusCode::OK, answer))
}

fn add_orders(shared: &Shared, n: u32, from_ms: i64, to_ms: i64) {
    let mut ledger = shared.ledger.lock().unwrap();
    let start = ledger.orders.len();
    let span = (to_ms - from_ms).max(0);
    for i in 0..n {
        let updated_ms = if n <= 1 { from_ms } else { from_ms + span * i64::from(i) / i64::from(n - 1) };
        let k = start + i as usize;
        ledger.orders.push(FakeOrder {
            id: format!("171-{:07}-{:07}", k / 1000, k),
            updated_ms,
            sku: format!("SKU-{:05}", k % 1000),
            quantity: 1 + (k % 3) as u32,
            unit_cents: 10_000 + (k % 50) as u64 * 100 + 50,
        });
    }
}

fn expire_all(shared: &Shared) {
    let mut ledger = shared.ledger.lock().unwrap();
    let now = Instant::now();
    for expires in ledger.tokens.values_mut() {
        *expires = now;
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.ledger.lock().unwrap().stats.clone())
}

async fn set_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> StatusCode {
    shared.ledger.lock().unwrap().faults = faults;
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListingsBody {
    #[serde(default)]
    known: Vec<String>,
    /// SKU → reason.
    #[serde(default)]
    refuse: HashMap<String, String>,
}

async fn set_listings(State(shared): State<Arc<Shared>>, Json(body): Json<ListingsBody>) -> StatusCode {
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.known.extend(body.known);
    ledger.refused.extend(body.refuse);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrdersBody {
    count: u32,
    from_ms: i64,
    to_ms: i64,
}

async fn post_orders(State(shared): State<Arc<Shared>>, Json(body): Json<OrdersBody>) -> StatusCode {
    if body.count > 1_000_000 || body.to_ms < body.from_ms {
        return StatusCode::BAD_REQUEST;
    }
    add_orders(&shared, body.count, body.from_ms, body.to_ms);
    StatusCode::NO_CONTENT
}

async fn post_expire(State(shared): State<Arc<Shared>>) -> StatusCode {
    expire_all(&shared);
    StatusCode::NO_CONTENT
}
