//! A local fake of eBay's Sell APIs, for tests and benchmarks that must not reach the real
//! marketplace. It follows the documented contract, errors and limits included, and shares no
//! code with the connector: it is an independent check of it.
//!
//! - `POST /identity/v1/oauth2/token`: the refresh-token grant
//!   (<https://developer.ebay.com/api-docs/static/oauth-refresh-token-request.html>): Basic
//!   client credentials (`invalid_client`, 401), the refresh token (`invalid_grant`, 400), scopes
//!   within those granted (`invalid_scope`, 400); a 2-hour user token.
//! - Every API call needs a live token: an unknown or expired one gets 401 errorId 1001.
//! - `GET /sell/inventory/v1/offer?sku=`: the SKU's offers (404 when it has none).
//! - `POST /sell/inventory/v1/bulk_update_price_quantity`: at most 25 elements (400), each
//!   offer id must belong to its SKU, prices as decimal strings, quantities not negative; answered
//!   per element (200, or 207 when one failed); a listing revised 250 times within a day is
//!   refused (UNDOCUMENTED: the error eBay gives then).
//! - `GET /sell/fulfillment/v1/order`: `filter=lastmodifieddate:[from..to]`, `limit` ≤ 200,
//!   `offset`, with the documented 400 errorIds for a bad filter, limit or offset.
//! - 429 answers carry errorId 2001 (eBay's documented body) and a `Retry-After` (UNDOCUMENTED:
//!   eBay does not say whether it sends one).
//! - `GET /items?total=N`, `GET /_fake/stats`, `POST /_fake/faults` as in the other fakes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const MAX_ELEMENTS_PER_CALL: usize = 25;
pub const MAX_ORDERS_PAGE: u64 = 200;
pub const SCOPE_INVENTORY: &str = "https://api.ebay.com/oauth/api_scope/sell.inventory";
pub const SCOPE_FULFILLMENT: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";

/// How the fake behaves; [`Config::default`] is the documented contract.
#[derive(Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub marketplace_id: String,
    pub currency: String,
    /// Lifetime of user tokens (documented: 2 hours).
    pub token_lifetime: Duration,
    /// Revisions per listing per day (documented: 250).
    pub daily_revisions: u32,
    /// Every SKU has one published offer (else only SKUs made known).
    pub know_every_product: bool,
    /// The `Retry-After` of a 429.
    pub retry_after_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_id: "MesChain-fake-PRD-0000".into(),
            client_secret: "PRD-fake-client-secret".into(),
            refresh_token: "v^1.1#i^1#fake-refresh-token".into(),
            marketplace_id: "EBAY_US".into(),
            currency: "USD".into(),
            token_lifetime: Duration::from_secs(7200),
            daily_revisions: 250,
            know_every_product: false,
            retry_after_seconds: 1,
        }
    }
}

/// Faults a test queues at run time (also through `POST /_fake/faults`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Statuses the next bulk calls answer with, in order (429 carries errorId 2001; 0 lets
    /// that call through).
    #[serde(default)]
    pub push: Vec<u16>,
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// SKUs whose updates are refused per element.
    #[serde(default)]
    pub refuse: Vec<String>,
    /// SKUs given a published offer.
    #[serde(default)]
    pub know: Vec<String>,
    /// Every token issued so far expires now.
    #[serde(default)]
    pub expire_tokens: bool,
}

/// What the fake has seen, for assertions.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub tokens_issued: u64,
    pub token_refusals: u64,
    pub rejected_tokens: u64,
    pub offer_lookups: u64,
    pub bulk_calls: u64,
    pub largest_bulk_call: u64,
    pub elements_applied: u64,
    pub elements_failed: u64,
    pub revision_limited: u64,
    pub rejected_too_many_elements: u64,
    pub injected_faults: u64,
    pub order_pages: u64,
    pub applied_more_than_once: u64,
}

/// One request and its answer (the first [`EXCHANGES_KEPT`]), for checks against eBay's OpenAPI.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: &'static str,
    pub path: String,
    pub request: Value,
    pub status: u16,
    pub response: Value,
}

pub const EXCHANGES_KEPT: usize = 200;

#[derive(Default)]
struct Ledger {
    stats: Stats,
    faults: Faults,
    tokens: HashMap<String, Instant>,
    known: HashSet<String>,
    refused: HashSet<String>,
    applied: HashMap<String, u32>,
    stock: HashMap<String, u64>,
    revisions: HashMap<String, VecDeque<Instant>>,
    orders: Vec<i64>,
    exchanges: Vec<Exchange>,
}

struct Shared {
    config: Config,
    ledger: Mutex<Ledger>,
}

/// A running fake; stop it with [`FakeEbay::shutdown`].
pub struct FakeEbay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// Serves the fake on `listener` (bind it to `127.0.0.1:0`).
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<FakeEbay> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared { config, ledger: Mutex::new(Ledger::default()) });
    let (stop, mut stopped) = watch::channel(false);
    let app = Router::new()
        .route("/identity/v1/oauth2/token", post(token))
        .route("/sell/inventory/v1/offer", get(offers))
        .route("/sell/inventory/v1/bulk_update_price_quantity", post(bulk))
        .route("/sell/fulfillment/v1/order", get(orders))
        .route("/items", get(items_source))
        .route("/_fake/stats", get(stats))
        .route("/_fake/faults", post(set_faults))
        .with_state(shared.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "fake ebay server stopped");
        }
    });
    Ok(FakeEbay { addr, shared, stop, server })
}

impl FakeEbay {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `EBAY_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.lock().unwrap().stats.clone()
    }

    pub fn inject(&self, faults: Faults) {
        apply_faults(&mut self.shared.ledger.lock().unwrap(), faults);
    }

    /// The next `n` bulk calls answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        ledger.faults.push.extend(std::iter::repeat_n(429, n as usize));
        ledger.faults.retry_after_seconds = Some(u64::from(retry_after_secs));
    }

    /// The next `n` bulk calls answer 500 (errorId 25001).
    pub fn fail_pushes(&self, n: u32) {
        self.shared.ledger.lock().unwrap().faults.push.extend(std::iter::repeat_n(500, n as usize));
    }

    pub fn refuse_item(&self, sku: &str) {
        self.shared.ledger.lock().unwrap().refused.insert(sku.to_string());
    }

    /// Gives each SKU a published offer.
    pub fn know_items(&self, skus: &[String]) {
        self.shared.ledger.lock().unwrap().known.extend(skus.iter().cloned());
    }

    /// Every token issued so far expires now (the next call with one gets 401 errorId 1001).
    pub fn expire_tokens(&self) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap_or_else(Instant::now);
        ledger.tokens.values_mut().for_each(|t| *t = past);
    }

    pub fn times_applied(&self, sku: &str) -> u32 {
        self.shared.ledger.lock().unwrap().applied.get(sku).copied().unwrap_or(0)
    }

    pub fn stock(&self, sku: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().stock.get(sku).copied()
    }

    /// Adds `n` orders last modified evenly within `[from_ms, to_ms]`.
    pub fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        let mut ledger = self.shared.ledger.lock().unwrap();
        let span = (to_ms - from_ms).max(0);
        for i in 0..n {
            ledger.orders.push(from_ms + if n > 1 { span * i64::from(i) / i64::from(n - 1) } else { 0 });
        }
    }

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
    if faults.expire_tokens {
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap_or_else(Instant::now);
        ledger.tokens.values_mut().for_each(|t| *t = past);
    }
    ledger.faults = Faults { know: Vec::new(), refuse: Vec::new(), expire_tokens: false, ..faults };
}

/// eBay's `Error` object.
fn error(id: u32, domain: &str, category: &str, message: &str) -> Value {
    json!({ "errorId": id, "domain": domain, "category": category, "message": message })
}

fn errors(status: StatusCode, id: u32, domain: &str, category: &str, message: &str) -> (StatusCode, Value) {
    (status, json!({ "errors": [error(id, domain, category, message)] }))
}

fn record(
    ledger: &mut Ledger,
    method: &'static str,
    path: &str,
    request: Value,
    (status, body): (StatusCode, Value),
) -> Response {
    if ledger.exchanges.len() < EXCHANGES_KEPT {
        ledger.exchanges.push(Exchange {
            method,
            path: path.into(),
            request,
            status: status.as_u16(),
            response: body.clone(),
        });
    }
    (status, Json(body)).into_response()
}

fn too_many(retry_after: u64) -> Response {
    let body = json!({ "errors": [{ "errorId": 2001, "domain": "ACCESS", "category": "REQUEST", "message": "Too many requests.", "longMessage": "The request limit has been reached for the resource." }] });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// The caller's token must be one issued here and still live.
fn refuse_token(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let mut ledger = shared.ledger.lock().unwrap();
    let live = token.and_then(|t| ledger.tokens.get(t)).is_some_and(|exp| Instant::now() < *exp);
    if live {
        return None;
    }
    ledger.stats.rejected_tokens += 1;
    let body = json!({ "errors": [{ "errorId": 1001, "domain": "OAuth", "category": "REQUEST", "message": "Invalid access token", "longMessage": "Invalid access token. Check the value of the Authorization HTTP request header." }] });
    Some((StatusCode::UNAUTHORIZED, Json(body)).into_response())
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({ "error": code, "error_description": description }))).into_response()
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let c = &shared.config;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.client_id, c.client_secret))
    );
    let refuse = |status, code, description| {
        shared.ledger.lock().unwrap().stats.token_refusals += 1;
        oauth_error(status, code, description)
    };
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "request is missing a required parameter or malformed",
        );
    }
    let form: HashMap<String, String> = url_decode(&body);
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant type in request is not supported by the authorization server",
        );
    }
    if form.get("refresh_token") != Some(&c.refresh_token) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the provided authorization refresh token is invalid or was issued to another client",
        );
    }
    let granted =
        [SCOPE_INVENTORY, SCOPE_FULFILLMENT, "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly"];
    if let Some(scope) = form.get("scope")
        && !scope.split(' ').filter(|s| !s.is_empty()).all(|s| granted.contains(&s))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client",
        );
    }
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.stats.tokens_issued += 1;
    let access = format!("v^1.1#i^1#fake#{}#{}", ledger.stats.tokens_issued, now_ms());
    ledger.tokens.insert(access.clone(), Instant::now() + c.token_lifetime);
    Json(json!({ "access_token": access, "expires_in": c.token_lifetime.as_secs(), "token_type": "User Access Token" }))
        .into_response()
}

fn url_decode(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// The offer id eBay would have given this SKU (stable, so lookups repeat).
fn offer_id(sku: &str) -> String {
    let h = sku.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{}", 1_000_000_000 + h % 9_000_000_000)
}

fn knows(shared: &Shared, ledger: &Ledger, sku: &str) -> bool {
    shared.config.know_every_product || ledger.known.contains(sku)
}

#[derive(Deserialize)]
struct OffersQuery {
    sku: Option<String>,
    marketplace_id: Option<String>,
}

async fn offers(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(q): Query<OffersQuery>) -> Response {
    if let Some(r) = refuse_token(&shared, &headers) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    ledger.stats.offer_lookups += 1;
    let path = "/sell/inventory/v1/offer";
    let request = json!({ "sku": q.sku, "marketplace_id": q.marketplace_id });
    let Some(sku) = q.sku.filter(|s| !s.is_empty() && s.len() <= 50) else {
        let answer = errors(StatusCode::BAD_REQUEST, 25709, "API_INVENTORY", "REQUEST", "Invalid value for sku.");
        return record(&mut ledger, "GET", path, request, answer);
    };
    let marketplace = shared.config.marketplace_id.clone();
    if !knows(&shared, &ledger, &sku) || q.marketplace_id.as_deref().is_some_and(|m| m != marketplace) {
        // The spec declares a bare 404; the body is eBay's usual error shape (UNDOCUMENTED id).
        let answer = errors(StatusCode::NOT_FOUND, 25713, "API_INVENTORY", "REQUEST", "This Offer is not available.");
        return record(&mut ledger, "GET", path, request, answer);
    }
    let offer = json!({
        "offerId": offer_id(&sku),
        "sku": sku,
        "marketplaceId": marketplace,
        "format": "FIXED_PRICE",
        "status": "PUBLISHED",
        "availableQuantity": ledger.stock.get(&sku).copied().unwrap_or(0),
        "listing": { "listingId": format!("11{}", offer_id(&sku)), "listingStatus": "ACTIVE" },
    });
    let answer = json!({ "href": format!("{path}?sku={sku}"), "limit": 100, "size": 1, "total": 1, "offers": [offer] });
    record(&mut ledger, "GET", path, request, (StatusCode::OK, answer))
}

fn decimal_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let mut parts = s.split('.');
        let whole = parts.next().unwrap_or("");
        let frac = parts.next();
        parts.next().is_none()
            && !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && frac.is_none_or(|f| !f.is_empty() && f.len() <= 2 && f.bytes().all(|b| b.is_ascii_digit()))
    })
}

async fn bulk(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = refuse_token(&shared, &headers) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    let ledger = &mut *ledger;
    let path = "/sell/inventory/v1/bulk_update_price_quantity";
    if !ledger.faults.push.is_empty() {
        let status = ledger.faults.push.remove(0);
        ledger.stats.injected_faults += u64::from(status != 0);
        let retry_after = ledger.faults.retry_after_seconds.unwrap_or(shared.config.retry_after_seconds);
        if status == 429 {
            return too_many(retry_after);
        }
        if status != 0 {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (s, b) = errors(status, 25001, "API_INVENTORY", "APPLICATION", "A system error has occurred.");
            return (s, Json(b)).into_response();
        }
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) if is_json => v,
        _ => {
            let answer = errors(
                StatusCode::BAD_REQUEST,
                25002,
                "API_INVENTORY",
                "REQUEST",
                "Any User error. The request is not JSON with Content-Type application/json.",
            );
            return record(ledger, "POST", path, Value::Null, answer);
        }
    };
    let Some(elements) = request.get("requests").and_then(Value::as_array).cloned() else {
        let answer = errors(StatusCode::BAD_REQUEST, 25709, "API_INVENTORY", "REQUEST", "Invalid value for requests.");
        return record(ledger, "POST", path, request, answer);
    };
    if elements.is_empty() || elements.len() > MAX_ELEMENTS_PER_CALL {
        // UNDOCUMENTED: what eBay answers to a 26th element; refused as an invalid value here.
        ledger.stats.rejected_too_many_elements += u64::from(elements.len() > MAX_ELEMENTS_PER_CALL);
        let answer = errors(
            StatusCode::BAD_REQUEST,
            25709,
            "API_INVENTORY",
            "REQUEST",
            "Invalid value for requests. Up to 25 inventory items.",
        );
        return record(ledger, "POST", path, request, answer);
    }
    ledger.stats.bulk_calls += 1;
    ledger.stats.largest_bulk_call = ledger.stats.largest_bulk_call.max(elements.len() as u64);
    let now = Instant::now();
    let day = Duration::from_secs(24 * 3600);
    let mut responses = Vec::new();
    let mut all_ok = true;
    for element in &elements {
        let sku = element.get("sku").and_then(Value::as_str).unwrap_or("").to_string();
        let quantity = element.pointer("/shipToLocationAvailability/quantity");
        let offers = element.get("offers").and_then(Value::as_array).cloned().unwrap_or_default();
        let revisions = ledger.revisions.entry(sku.clone()).or_default();
        while revisions.front().is_some_and(|t| now.duration_since(*t) >= day) {
            revisions.pop_front();
        }
        let over_daily = revisions.len() as u32 >= shared.config.daily_revisions;
        let mut problem: Option<(u16, Value)> = None;
        if sku.is_empty() || !knows(&shared, ledger, &sku) {
            problem = Some((404, error(25702, "API_INVENTORY", "REQUEST", "SKU could not be found.")));
        } else if ledger.refused.contains(&sku) {
            problem =
                Some((400, error(25002, "API_INVENTORY", "REQUEST", "Any User error. The listing cannot be revised.")));
        } else if quantity.is_some_and(|q| q.as_i64().is_none_or(|q| q < 0)) {
            problem = Some((
                400,
                error(25709, "API_INVENTORY", "REQUEST", "Invalid value for shipToLocationAvailability.quantity."),
            ));
        } else if over_daily {
            // UNDOCUMENTED: the errorId of the 251st revision in a day.
            ledger.stats.revision_limited += 1;
            problem = Some((
                400,
                error(
                    25002,
                    "API_INVENTORY",
                    "REQUEST",
                    "Any User error. The listing reached its 250 revisions for today.",
                ),
            ));
        } else {
            for offer in &offers {
                let id = offer.get("offerId").and_then(Value::as_str).unwrap_or("");
                if id != offer_id(&sku) {
                    problem = Some((400, error(25713, "API_INVENTORY", "REQUEST", "This Offer is not available.")));
                } else if offer
                    .get("price")
                    .is_some_and(|p| !decimal_string(&p["value"]) || p["currency"] != shared.config.currency.as_str())
                {
                    problem = Some((400, error(25709, "API_INVENTORY", "REQUEST", "Invalid value for price.")));
                } else if offer.get("availableQuantity").is_some_and(|q| q.as_i64().is_none_or(|q| q < 0)) {
                    problem =
                        Some((400, error(25709, "API_INVENTORY", "REQUEST", "Invalid value for availableQuantity.")));
                }
            }
        }
        let ids: Vec<Option<String>> = if offers.is_empty() {
            vec![None]
        } else {
            offers.iter().map(|o| o.get("offerId").and_then(Value::as_str).map(str::to_string)).collect()
        };
        match problem {
            Some((status, e)) => {
                all_ok = false;
                ledger.stats.elements_failed += 1;
                for id in ids {
                    responses.push(json!({ "statusCode": status, "sku": sku, "offerId": id, "errors": [e.clone()], "warnings": [] }));
                }
            }
            None => {
                ledger.revisions.entry(sku.clone()).or_default().push_back(now);
                if let Some(q) = quantity.and_then(Value::as_u64) {
                    ledger.stock.insert(sku.clone(), q);
                }
                let n = ledger.applied.entry(sku.clone()).or_insert(0);
                *n += 1;
                if *n == 2 {
                    ledger.stats.applied_more_than_once += 1;
                }
                ledger.stats.elements_applied += 1;
                for id in ids {
                    let mut r = json!({ "statusCode": 200, "sku": sku, "errors": [], "warnings": [] });
                    if let Some(id) = id {
                        r["offerId"] = json!(id);
                    }
                    responses.push(r);
                }
            }
        }
    }
    for r in &mut responses {
        if r["offerId"].is_null()
            && let Some(o) = r.as_object_mut()
        {
            o.remove("offerId");
        }
    }
    let status = if all_ok { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    record(ledger, "POST", path, request, (status, json!({ "responses": responses })))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn ebay_time(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[derive(Deserialize)]
struct OrdersQuery {
    filter: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn fulfillment_error(id: u32, message: &str) -> (StatusCode, Value) {
    errors(StatusCode::BAD_REQUEST, id, "API_FULFILLMENT", "REQUEST", message)
}

/// `lastmodifieddate:[from..to]` (or `creationdate`) out of a filter; the documented errorIds.
fn date_range(filter: &str) -> Result<(i64, i64), (StatusCode, Value)> {
    let mut range = None;
    for part in filter.split(',') {
        let Some((name, value)) = part.split_once(':') else {
            return Err(fulfillment_error(30700, "Invalid filter name."));
        };
        match name.trim() {
            "lastmodifieddate" | "creationdate" => range = Some(value.trim().to_string()),
            "orderfulfillmentstatus" => {}
            _ => return Err(fulfillment_error(30700, "Invalid filter name.")),
        }
    }
    let Some(range) = range else { return Ok((i64::MIN, i64::MAX)) };
    let inner = range
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| fulfillment_error(30800, "Invalid filter value."))?;
    let (from, to) = inner.split_once("..").ok_or_else(|| fulfillment_error(30800, "Invalid filter value."))?;
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    if from.is_empty() {
        return Err(fulfillment_error(30820, "Start date is missing."));
    }
    let from = parse(from).map_err(|_| fulfillment_error(30810, "Invalid date format."))?;
    let to = if to.is_empty() {
        now_ms()
    } else {
        parse(to).map_err(|_| fulfillment_error(30810, "Invalid date format."))?
    };
    if from > to {
        return Err(fulfillment_error(30840, "Start date is after end date."));
    }
    if to > now_ms() + 60_000 {
        return Err(fulfillment_error(30850, "Dates in the future are not allowed."));
    }
    Ok((from, to))
}

fn order(i: usize, modified_ms: i64, currency: &str) -> Value {
    let quantity = 1 + i % 3;
    let cents = (10_050 + 100 * (i % 50)) * quantity;
    let cost = format!("{}.{:02}", cents / 100, cents % 100);
    json!({
        "orderId": format!("04-{:05}-{:05}", 10_000 + i / 100_000, i % 100_000),
        "legacyOrderId": format!("1100{i:08}"),
        "creationDate": ebay_time(modified_ms - 60_000),
        "lastModifiedDate": ebay_time(modified_ms),
        "orderFulfillmentStatus": "NOT_STARTED",
        "orderPaymentStatus": "PAID",
        "sellerId": "fake-seller",
        "salesRecordReference": format!("{}", 5000 + i),
        "buyer": { "username": format!("buyer{i}") },
        "pricingSummary": { "total": { "value": cost, "currency": currency } },
        "lineItems": [{
            "lineItemId": format!("1000{i:08}"),
            "legacyItemId": "110000000000",
            "sku": format!("SKU-{:07}", i % 1000),
            "title": "Fake item",
            "quantity": quantity,
            "lineItemCost": { "value": cost, "currency": currency },
            "total": { "value": cost, "currency": currency },
            "lineItemFulfillmentStatus": "NOT_STARTED",
        }],
    })
}

async fn orders(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(q): Query<OrdersQuery>) -> Response {
    if let Some(r) = refuse_token(&shared, &headers) {
        return r;
    }
    let mut ledger = shared.ledger.lock().unwrap();
    let path = "/sell/fulfillment/v1/order";
    let request = json!({ "filter": q.filter, "limit": q.limit, "offset": q.offset });
    let limit = match q.limit.as_deref().map(str::parse::<u64>) {
        None => 50,
        Some(Ok(n)) if (1..=MAX_ORDERS_PAGE).contains(&n) => n,
        Some(_) => return record(&mut ledger, "GET", path, request, fulfillment_error(31100, "Invalid limit.")),
    };
    let offset = match q.offset.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return record(&mut ledger, "GET", path, request, fulfillment_error(31000, "Invalid offset.")),
    };
    let (from, to) =
        match q.filter.as_deref().map(date_range).unwrap_or(Ok((now_ms() - 90 * 24 * 3600 * 1000, i64::MAX))) {
            Ok(r) => r,
            Err(e) => return record(&mut ledger, "GET", path, request, e),
        };
    ledger.stats.order_pages += 1;
    let matching: Vec<(usize, i64)> =
        ledger.orders.iter().copied().enumerate().filter(|(_, m)| *m >= from && *m <= to).collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|(i, m)| order(*i, *m, &shared.config.currency))
        .collect();
    let total = matching.len() as u64;
    let mut answer = json!({ "href": format!("{path}?limit={limit}&offset={offset}"), "limit": limit, "offset": offset, "total": total, "orders": page, "warnings": [] });
    if offset + limit < total {
        answer["next"] = json!(format!("{path}?limit={limit}&offset={}", offset + limit));
    }
    record(&mut ledger, "GET", path, request, (StatusCode::OK, answer))
}

#[derive(Deserialize)]
struct ItemsQuery {
    total: u64,
    offset: Option<u64>,
    limit: Option<u64>,
    kind: Option<String>,
}

async fn items_source(Query(q): Query<ItemsQuery>) -> Response {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let end = offset.saturating_add(limit).min(q.total);
    let prices_only = q.kind.as_deref() == Some("prices");
    let items: Vec<Value> = (offset..end)
        .map(|i| {
            let mut item = json!({ "barcode": format!("BC-{i:08}"), "salePrice": 10 + i % 90 });
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
