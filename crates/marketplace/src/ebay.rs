//! eBay's Sell APIs: Inventory `bulkUpdatePriceQuantity` for stock and price, Fulfillment
//! `getOrders` for orders.
//! (<https://developer.ebay.com/api-docs/sell/inventory/resources/inventory_item/methods/bulkUpdatePriceQuantity>,
//! <https://developer.ebay.com/api-docs/sell/fulfillment/resources/order/methods/getOrders>.)
//!
//! - Auth: the OAuth refresh-token grant
//!   (<https://developer.ebay.com/api-docs/static/oauth-refresh-token-request.html>) gives a
//!   2-hour user token, cached with its expiry (`meschain_model::clock`), refreshed 5 minutes
//!   before it ends, and refreshed once more when a call answers 401 (an expired or revoked
//!   token); a second 401 is fatal. The token, the client secret and the refresh token are never
//!   logged (`Debug` redacts them, headers are marked sensitive).
//! - Push: only published offers can be revised, by offer id, so each SKU's offers are looked up
//!   once (`getOffers?sku=`) and remembered in this process. A batch of up to [`MAX_BATCH`]
//!   items goes out as bulk calls of at most 25 SKUs (`EBAY_SKUS_PER_CALL` can lower it to 1:
//!   eBay's own texts disagree on whether one call may carry several SKUs). Quantity is set on
//!   the inventory item and on each offer (the listing shows the smaller of the two); price on
//!   each offer, as a decimal string. Every element is answered in the same response, so the
//!   push ends in [`PushOutcome::Completed`].
//! - Limits: a listing can be revised 250 times a calendar day; this connector counts each SKU's
//!   revisions over any 24 hours and reports an item over that as failed with the time it may
//!   change again, never sent. Kept per handler process (two instances or a restart can exceed
//!   it; eBay then refuses the element, which is reported). 429 (errorId 2001) pauses the
//!   endpoint for `Retry-After`, or 10 s when eBay sends none.
//! - Orders: `getOrders` filtered by `lastmodifieddate:[from..to]`, 200 a page by offset.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::future::join_all;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::answered::{AnsweredCalls, digest};
use crate::connector::{BatchStatus, Connector, ConnectorError, ItemResult, Order, OrderLine, OrdersPage, PushOutcome};
use crate::ozon::money;
use crate::rate_limit::{KeyedWindow, RateLimit, RateLimiter};
use crate::request::Item;
use crate::trendyol::{read_capped, retry_after};

pub const BASE_URL_SETTING: &str = meschain_model::settings::EBAY_BASE_URL;
pub const CLIENT_ID_SETTING: &str = meschain_model::settings::EBAY_CLIENT_ID;
pub const CLIENT_SECRET_SETTING: &str = meschain_model::settings::EBAY_CLIENT_SECRET;
pub const REFRESH_TOKEN_SETTING: &str = meschain_model::settings::EBAY_REFRESH_TOKEN;
pub const MARKETPLACE_ID_SETTING: &str = meschain_model::settings::EBAY_MARKETPLACE_ID;
pub const CURRENCY_SETTING: &str = meschain_model::settings::EBAY_CURRENCY;
pub const SKUS_PER_CALL_SETTING: &str = meschain_model::settings::EBAY_SKUS_PER_CALL;

pub const DEFAULT_BASE_URL: &str = "https://api.ebay.com";
/// Documented: up to 25 inventory items per bulkUpdatePriceQuantity call.
pub const MAX_SKUS_PER_CALL: usize = 25;
/// Items one engine batch carries: 20 bulk calls, sent together.
pub const MAX_BATCH: usize = 500;
/// Documented: 250 revisions per listing per calendar day (counted here over any 24 hours).
pub const DAILY_REVISIONS: RateLimit = RateLimit { requests: 250, per: Duration::from_secs(24 * 3600) };
/// Documented: getOrders pages of at most 200.
pub const ORDERS_PAGE_SIZE: u32 = 200;
pub const SCOPES: &str =
    "https://api.ebay.com/oauth/api_scope/sell.inventory https://api.ebay.com/oauth/api_scope/sell.fulfillment";
/// Refresh this long before the token expires.
const TOKEN_MARGIN_MS: u64 = 5 * 60 * 1000;
/// eBay documents no `Retry-After` on its 429s; wait this long when it sends none.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Offer lookups and bulk calls in flight at once within one push.
const CALLS_IN_FLIGHT: usize = 8;
const DEFAULT_CONCURRENCY: usize = 4;
const ANSWER_MEMORY: Duration = Duration::from_secs(600);
const ANSWER_MEMORY_ENTRIES: usize = 2048;
/// eBay's errorIds that mean the offer id is no longer the SKU's (looked up again next time).
const STALE_OFFER_ERRORS: [i64; 2] = [25713, 25702];

/// eBay's settings. `Debug` never shows the client secret or the refresh token.
#[derive(Clone)]
pub struct EbayConfig {
    pub base_url: url::Url,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub marketplace_id: String,
    pub currency: String,
    pub skus_per_call: usize,
    pub concurrency: usize,
}

impl fmt::Debug for EbayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EbayConfig")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("marketplace_id", &self.marketplace_id)
            .field("currency", &self.currency)
            .field("skus_per_call", &self.skus_per_call)
            .finish()
    }
}

/// Whether any eBay credential is set (then eBay is meant to run live).
pub fn configured(get: &dyn Fn(&str) -> Option<String>) -> bool {
    [CLIENT_ID_SETTING, CLIENT_SECRET_SETTING, REFRESH_TOKEN_SETTING]
        .iter()
        .any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

impl EbayConfig {
    /// Reads the `EBAY_*` settings; every problem is reported at once, by name.
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
        let mut required = |name: &str| {
            let v = get(name).unwrap_or_default();
            if v.is_empty() {
                problems.push(format!("{name} is required"));
            } else if !v.bytes().all(|b| b.is_ascii_graphic()) {
                problems.push(format!("{name} holds characters it cannot have"));
            }
            v
        };
        let client_id = required(CLIENT_ID_SETTING);
        let client_secret = required(CLIENT_SECRET_SETTING);
        let refresh_token = required(REFRESH_TOKEN_SETTING);
        let marketplace_id = get(MARKETPLACE_ID_SETTING).unwrap_or_else(|| "EBAY_US".into());
        if !marketplace_id.starts_with("EBAY_") || !marketplace_id.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            problems.push(format!("{MARKETPLACE_ID_SETTING} must be an eBay marketplace id such as EBAY_US"));
        }
        let currency = get(CURRENCY_SETTING).unwrap_or_else(|| "USD".into());
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push(format!("{CURRENCY_SETTING} must be a three-letter ISO 4217 code such as USD"));
        }
        let skus_per_call = match get(SKUS_PER_CALL_SETTING).map(|s| s.parse::<usize>()) {
            None => MAX_SKUS_PER_CALL,
            Some(Ok(n)) if (1..=MAX_SKUS_PER_CALL).contains(&n) => n,
            Some(_) => {
                problems.push(format!("{SKUS_PER_CALL_SETTING} must be 1-{MAX_SKUS_PER_CALL}"));
                MAX_SKUS_PER_CALL
            }
        };
        match base_url {
            Some(base_url) if problems.is_empty() => Ok(EbayConfig {
                base_url,
                client_id,
                client_secret,
                refresh_token,
                marketplace_id,
                currency,
                skus_per_call,
                concurrency: DEFAULT_CONCURRENCY,
            }),
            _ => Err(format!("ebay connector: {}", problems.join("; "))),
        }
    }
}

/// A user access token and when it expires (epoch ms). No `Debug`: it is a credential.
struct Token {
    header: HeaderValue,
    expires_at_ms: u64,
}

/// One SKU's fate in a bulk call.
type Fate = Result<(), Vec<String>>;

/// A SKU's published offer ids (almost always one).
type OfferIds = Arc<[Box<str>]>;

/// The live eBay connector.
pub struct Ebay {
    http: reqwest::Client,
    base: String,
    config: EbayConfig,
    token: tokio::sync::Mutex<Option<Token>>,
    /// Published offer ids per SKU, looked up once (boxed: one entry per SKU ever synced).
    offers: Mutex<HashMap<Box<str>, OfferIds>>,
    revisions: Mutex<KeyedWindow>,
    answered: Mutex<AnsweredCalls<Arc<HashMap<String, Fate>>>>,
    push_limit: RateLimiter,
    lookup_limit: RateLimiter,
    orders_limit: RateLimiter,
}

/// eBay documents daily call quotas, no per-second limit: this limiter only holds every call of an
/// endpoint during a 429's pause (100,000 a second is far above anything one process sends).
const UNLIMITED: RateLimit = RateLimit { requests: 100_000, per: Duration::from_secs(1) };

impl Ebay {
    pub fn new(config: EbayConfig, http: reqwest::Client) -> Self {
        Ebay {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            config,
            token: tokio::sync::Mutex::new(None),
            offers: Mutex::new(HashMap::new()),
            revisions: Mutex::new(KeyedWindow::new(DAILY_REVISIONS)),
            answered: Mutex::new(AnsweredCalls::new(ANSWER_MEMORY, ANSWER_MEMORY_ENTRIES)),
            push_limit: RateLimiter::new(UNLIMITED),
            lookup_limit: RateLimiter::new(UNLIMITED),
            orders_limit: RateLimiter::new(UNLIMITED),
        }
    }

    /// The current token's `Authorization` value, refreshed first when it is missing, about to
    /// expire, or `stale` (the header a call was just refused with).
    async fn bearer(&self, stale: Option<&HeaderValue>) -> Result<HeaderValue, ConnectorError> {
        let mut token = self.token.lock().await;
        let now = meschain_model::clock::now_ms();
        if let Some(t) = token.as_ref()
            && now + TOKEN_MARGIN_MS < t.expires_at_ms
            && stale != Some(&t.header)
        {
            return Ok(t.header.clone());
        }
        let fresh = self.refresh().await?;
        let header = fresh.header.clone();
        *token = Some(fresh);
        Ok(header)
    }

    async fn refresh(&self) -> Result<Token, ConnectorError> {
        let c = &self.config;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.client_id, c.client_secret));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).expect("base64 is a valid header value");
        auth.set_sensitive(true);
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &c.refresh_token)
            .append_pair("scope", SCOPES)
            .finish();
        let response = self
            .http
            .post(format!("{}/identity/v1/oauth2/token", self.base))
            .header(header::AUTHORIZATION, auth)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| ConnectorError::transient(format!("ebay token refresh failed: {}", e.without_url())))?;
        let status = response.status();
        let retry = retry_after(response.headers(), SystemTime::now());
        let body = read_capped(response).await.map_err(|e| ConnectorError::transient(format!("ebay token: {e}")))?;
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(ConnectorError::Transient {
                reason: format!("ebay token refresh: HTTP {}", status.as_u16()),
                retry_after: retry.or((status == StatusCode::TOO_MANY_REQUESTS).then_some(DEFAULT_RETRY_AFTER)),
            });
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            // OAuth's error codes (RFC 6749 §5.2); the description is eBay's text, never a secret.
            let code = v.get("error").and_then(Value::as_str).unwrap_or("");
            let check = match code {
                "invalid_grant" => REFRESH_TOKEN_SETTING.to_string(),
                "invalid_scope" => format!(
                    "{REFRESH_TOKEN_SETTING} (it must have been granted the sell.inventory and sell.fulfillment scopes)"
                ),
                _ => format!("{CLIENT_ID_SETTING} and {CLIENT_SECRET_SETTING}"),
            };
            let description = v.get("error_description").and_then(Value::as_str).unwrap_or("");
            return Err(ConnectorError::Fatal(format!(
                "ebay token refresh: HTTP {} {code} {description} (check {check})",
                status.as_u16()
            )));
        }
        let access = v.get("access_token").and_then(Value::as_str).unwrap_or("");
        let expires_in = v.get("expires_in").and_then(Value::as_u64).unwrap_or(0);
        let mut header = match HeaderValue::from_str(&format!("Bearer {access}")) {
            Ok(h) if !access.is_empty() && expires_in > 0 => h,
            _ => return Err(ConnectorError::transient("ebay token refresh: answer without a usable access_token")),
        };
        header.set_sensitive(true);
        Ok(Token { header, expires_at_ms: meschain_model::clock::now_ms() + expires_in * 1000 })
    }

    /// Sends a call built by `build` with the current token; on a 401, refreshes the token once
    /// and sends it again. Returns an answer eBay gave (2xx, or a 4xx other than auth).
    async fn send(
        &self,
        limiter: &RateLimiter,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        let mut refused: Option<HeaderValue> = None;
        loop {
            let bearer = self.bearer(refused.as_ref()).await?;
            limiter.acquire().await;
            let response = build()
                .header(header::AUTHORIZATION, bearer.clone())
                .header(header::ACCEPT, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(|e| {
                    let kind = if e.is_timeout() { "timed out" } else { "failed" };
                    ConnectorError::transient(format!("ebay {what} {kind}: {}", e.without_url()))
                })?;
            let status = response.status();
            let retry = retry_after(response.headers(), SystemTime::now());
            let body =
                read_capped(response).await.map_err(|e| ConnectorError::transient(format!("ebay {what}: {e}")))?;
            match status {
                StatusCode::UNAUTHORIZED if refused.is_none() => {
                    refused = Some(bearer);
                    continue;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(ConnectorError::Fatal(format!(
                        "ebay {what}: 401 {} with a freshly refreshed token (check {REFRESH_TOKEN_SETTING})",
                        error_text(&body)
                    )));
                }
                StatusCode::FORBIDDEN => {
                    return Err(ConnectorError::Fatal(format!(
                        "ebay {what}: 403 {} (the seller behind {REFRESH_TOKEN_SETTING} must have granted the sell.inventory and sell.fulfillment scopes)",
                        error_text(&body)
                    )));
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    let wait = retry.unwrap_or(DEFAULT_RETRY_AFTER);
                    limiter.pause_for(wait).await;
                    return Err(ConnectorError::Transient {
                        reason: format!("ebay {what}: 429 {}", error_text(&body)),
                        retry_after: Some(wait),
                    });
                }
                s if s.is_server_error() => {
                    return Err(ConnectorError::Transient {
                        reason: format!("ebay {what}: HTTP {} {}", s.as_u16(), error_text(&body)),
                        retry_after: retry,
                    });
                }
                _ => return Ok((status, body)),
            }
        }
    }

    /// The SKU's published offer ids on the configured marketplace (looked up once).
    async fn offers_of(&self, sku: &str) -> Result<OfferIds, ConnectorError> {
        if let Some(ids) = self.offers.lock().unwrap().get(sku) {
            return Ok(ids.clone());
        }
        let url = format!("{}/sell/inventory/v1/offer", self.base);
        let query = [("sku", sku), ("marketplace_id", self.config.marketplace_id.as_str()), ("limit", "100")];
        let (status, body) = self.send(&self.lookup_limit, "getOffers", || self.http.get(&url).query(&query)).await?;
        let ids = match status {
            StatusCode::OK => parse_offer_ids(&body, sku, &self.config.marketplace_id)
                .ok_or_else(|| ConnectorError::transient("ebay getOffers: unreadable answer"))?,
            // Documented: 404 when the SKU has no offer.
            StatusCode::NOT_FOUND => Vec::new(),
            s => {
                return Err(ConnectorError::Fatal(format!(
                    "ebay getOffers: HTTP {} {}",
                    s.as_u16(),
                    error_text(&body)
                )));
            }
        };
        let ids: OfferIds = ids.into_iter().map(String::into_boxed_str).collect();
        if !ids.is_empty() {
            self.offers.lock().unwrap().insert(sku.into(), ids.clone());
        }
        Ok(ids)
    }

    /// One bulk call for `elements` (sku, item, offer ids); the fate of each SKU.
    async fn bulk(&self, elements: &[(String, &Item, OfferIds)]) -> Result<Arc<HashMap<String, Fate>>, ConnectorError> {
        let requests: Vec<Value> = elements
            .iter()
            .map(|(sku, item, offers)| {
                let mut element = json!({ "sku": sku });
                if let Some(q) = item.quantity {
                    element["shipToLocationAvailability"] = json!({ "quantity": q });
                }
                let offers: Vec<Value> = offers
                    .iter()
                    .map(|id| {
                        let mut o = json!({ "offerId": id });
                        if let Some(q) = item.quantity {
                            o["availableQuantity"] = json!(q);
                        }
                        if let Some(price) = &item.sale_price {
                            o["price"] = json!({ "value": price.to_string(), "currency": self.config.currency });
                        }
                        o
                    })
                    .collect();
                element["offers"] = Value::Array(offers);
                element
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "requests": requests })).expect("json serializes");
        let body_digest = digest(&body);
        if let Some(fates) = self.answered.lock().unwrap().get(&body_digest, Instant::now()) {
            return Ok(fates);
        }
        let url = format!("{}/sell/inventory/v1/bulk_update_price_quantity", self.base);
        let (status, answer) = self
            .send(&self.push_limit, "bulkUpdatePriceQuantity", || {
                self.http.post(&url).header(header::CONTENT_TYPE, "application/json").body(body.clone())
            })
            .await?;
        {
            // Counted once eBay answered (a 5xx or a timeout revised nothing).
            let now = Instant::now();
            let mut revisions = self.revisions.lock().unwrap();
            for (sku, _, _) in elements {
                revisions.record(sku, now);
            }
        }
        let skus: Vec<&str> = elements.iter().map(|(s, _, _)| s.as_str()).collect();
        let fates = if status.is_success() {
            parse_bulk_answer(&answer, &skus)
        } else {
            let reason = format!("eBay refused the call: HTTP {} {}", status.as_u16(), error_text(&answer));
            skus.iter().map(|s| (s.to_string(), Err(vec![reason.clone()]))).collect()
        };
        {
            // An offer eBay no longer knows is looked up again next time.
            let mut offers = self.offers.lock().unwrap();
            for (sku, fate) in &fates {
                if fate.as_ref().err().is_some_and(|r| {
                    r.iter().any(|r| STALE_OFFER_ERRORS.iter().any(|id| r.starts_with(&id.to_string())))
                }) {
                    offers.remove(sku.as_str());
                }
            }
        }
        // Only failures are read back (an absent SKU succeeded): the answered-call memory then
        // holds nothing per successful element.
        let fates: HashMap<String, Fate> = fates.into_iter().filter(|(_, fate)| fate.is_err()).collect();
        let fates = Arc::new(fates);
        self.answered.lock().unwrap().put(body_digest, Instant::now(), fates.clone());
        Ok(fates)
    }
}

/// Published offers of `sku` on `marketplace` in a getOffers answer; `None` when the answer is
/// not a JSON object (an unreadable answer is not "no offers").
pub fn parse_offer_ids(body: &[u8], sku: &str, marketplace: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let offers = v.as_object()?.get("offers");
    let ids = offers
        .and_then(Value::as_array)
        .map(|offers| {
            offers
                .iter()
                .filter(|o| o.get("sku").and_then(Value::as_str).is_none_or(|s| s == sku))
                .filter(|o| o.get("marketplaceId").and_then(Value::as_str).is_none_or(|m| m == marketplace))
                .filter(|o| o.get("status").and_then(Value::as_str) == Some("PUBLISHED"))
                .filter_map(|o| o.get("offerId").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(ids)
}

fn describe_error(e: &Value) -> String {
    let id = e.get("errorId").map(|v| v.to_string()).unwrap_or_default();
    let message = e.get("longMessage").or_else(|| e.get("message")).and_then(Value::as_str).unwrap_or("");
    if id.is_empty() { message.to_string() } else { format!("{id}: {message}") }
}

/// Per-SKU fates of a bulk answer: a SKU is done when every response element for it has
/// status 200; elements are matched by `sku` (one per offer, or one for the item alone).
pub fn parse_bulk_answer(body: &[u8], skus: &[&str]) -> HashMap<String, Fate> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(responses) = v.get("responses").and_then(Value::as_array) else {
        let reason = "eBay answered without its documented responses[]".to_string();
        return skus.iter().map(|s| (s.to_string(), Err(vec![reason.clone()]))).collect();
    };
    let mut fates: HashMap<String, Fate> = HashMap::with_capacity(skus.len());
    for r in responses {
        let sku = r.get("sku").and_then(Value::as_str).unwrap_or("").to_string();
        let code = r.get("statusCode").and_then(Value::as_u64).unwrap_or(0);
        let errors: Vec<String> =
            r.get("errors").and_then(Value::as_array).into_iter().flatten().map(describe_error).collect();
        let entry = fates.entry(sku).or_insert(Ok(()));
        if code != 200 || !errors.is_empty() {
            let mut reasons = if errors.is_empty() { vec![format!("status {code}")] } else { errors };
            if let Some(offer) = r.get("offerId").and_then(Value::as_str) {
                reasons.iter_mut().for_each(|x| *x = format!("{x} (offer {offer})"));
            }
            match entry {
                Ok(()) => *entry = Err(reasons),
                Err(existing) => existing.extend(reasons),
            }
        }
    }
    for sku in skus {
        fates.entry(sku.to_string()).or_insert_with(|| Err(vec!["eBay's answer did not mention this SKU".into()]));
    }
    fates
}

/// A short description of an eBay error body (`errors[]` with `errorId`, `message`).
pub fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let cut = body.len().min(200);
        return String::from_utf8_lossy(&body[..cut]).into_owned();
    };
    let parts: Vec<String> =
        v.get("errors").and_then(Value::as_array).into_iter().flatten().take(5).map(describe_error).collect();
    let mut text = parts.join("; ");
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

/// eBay's date format in filters: UTC, milliseconds, `Z`.
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

/// One getOrders page.
pub fn parse_orders(body: &[u8]) -> Option<(Vec<Order>, u64)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
    let orders = v
        .get("orders")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|o| {
            let s = |field: &str| o.get(field).and_then(Value::as_str).unwrap_or("").to_string();
            let lines = o
                .get("lineItems")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|l| {
                    let quantity =
                        l.get("quantity").and_then(Value::as_u64).unwrap_or(1).clamp(1, u64::from(u32::MAX)) as u32;
                    // lineItemCost is the price of all the line's units.
                    OrderLine {
                        barcode: l.get("sku").and_then(Value::as_str).unwrap_or("").to_string(),
                        quantity,
                        unit_price: money_div(money(l.pointer("/lineItemCost/value")), quantity),
                    }
                })
                .collect();
            Order {
                package_id: s("orderId"),
                order_number: o
                    .get("salesRecordReference")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| s("orderId")),
                status: s("orderFulfillmentStatus"),
                total: money(o.pointer("/pricingSummary/total/value")),
                currency: o
                    .pointer("/pricingSummary/total/currency")
                    .and_then(Value::as_str)
                    .unwrap_or("USD")
                    .to_string(),
                last_modified: OffsetDateTime::parse(&s("lastModifiedDate"), &Rfc3339)
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .unwrap_or(0),
                lines,
            }
        })
        .collect();
    Some((orders, total))
}

fn money_div<T: std::ops::Div<Output = T> + From<u32>>(amount: T, by: u32) -> T {
    amount / T::from(by.max(1))
}

#[async_trait]
impl Connector for Ebay {
    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        if items.len() > MAX_BATCH {
            return Err(ConnectorError::Fatal(format!("ebay push: {} items, at most {MAX_BATCH}", items.len())));
        }
        // The last change of a SKU in the batch wins: each element sent is a revision.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            last.insert(item.barcode.as_str(), i);
        }
        let mut fates: HashMap<String, Vec<String>> = HashMap::with_capacity(items.len());
        let mut wanted: Vec<&Item> = Vec::new();
        let now = Instant::now();
        {
            let revisions = self.revisions.lock().unwrap();
            for (i, item) in items.iter().enumerate() {
                if last.get(item.barcode.as_str()) != Some(&i) {
                    continue;
                }
                if item.quantity.is_none() && item.sale_price.is_none() {
                    // bulkUpdatePriceQuantity has no list (strikethrough) price.
                    fates.entry(item.barcode.clone()).or_default().push(
                        "nothing eBay's bulk update can set: it takes quantity and sale price, not a list price".into(),
                    );
                    continue;
                }
                match revisions.check(&item.barcode, now) {
                    Ok(()) => wanted.push(item),
                    Err(wait) => fates.entry(item.barcode.clone()).or_default().push(format!(
                        "not sent: eBay allows {} revisions per listing per day; this SKU may change again in {} s",
                        DAILY_REVISIONS.requests,
                        wait.as_secs().max(1)
                    )),
                }
            }
        }
        // Bounded fan-out, built without closures: async_trait's `Send` check cannot see through
        // closures returning borrowing futures.
        let mut elements = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(CALLS_IN_FLIGHT) {
            let mut lookups = Vec::with_capacity(chunk.len());
            for item in chunk {
                lookups.push(self.offers_of(&item.barcode));
            }
            for (item, ids) in chunk.iter().zip(join_all(lookups).await) {
                let ids = ids?;
                if ids.is_empty() {
                    fates.entry(item.barcode.clone()).or_default().push(format!(
                        "no published offer for this SKU on {} (only published offers can be revised)",
                        self.config.marketplace_id
                    ));
                } else {
                    elements.push((item.barcode.clone(), *item, ids));
                }
            }
        }
        let calls: Vec<&[(String, &Item, OfferIds)]> = elements.chunks(self.config.skus_per_call).collect();
        for group in calls.chunks(CALLS_IN_FLIGHT) {
            let mut sends = Vec::with_capacity(group.len());
            for call in group {
                sends.push(self.bulk(call));
            }
            for answer in join_all(sends).await {
                for (sku, fate) in answer?.iter() {
                    if let Err(reasons) = fate {
                        fates.entry(sku.clone()).or_default().extend(reasons.iter().cloned());
                    }
                }
            }
        }
        let results = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut reasons = fates.get(&item.barcode).cloned().unwrap_or_default();
                if last.get(item.barcode.as_str()) != Some(&i) {
                    reasons.push("superseded by a later change of the same SKU in this batch".into());
                    return ItemResult { barcode: item.barcode.clone(), ok: false, reasons };
                }
                ItemResult { barcode: item.barcode.clone(), ok: reasons.is_empty(), reasons }
            })
            .collect();
        Ok(PushOutcome::Completed(results))
    }

    async fn batch_result(&self, _receipt: &str) -> Result<BatchStatus, ConnectorError> {
        Err(ConnectorError::Fatal("ebay answers every item with the push itself: there is no batch to poll".into()))
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        let url = format!("{}/sell/fulfillment/v1/order", self.base);
        let filter = format!("lastmodifieddate:[{}..{}]", ebay_time(from_ms), ebay_time(to_ms));
        let offset = u64::from(page) * u64::from(ORDERS_PAGE_SIZE);
        let query = [("filter", filter), ("limit", ORDERS_PAGE_SIZE.to_string()), ("offset", offset.to_string())];
        let (status, body) = self.send(&self.orders_limit, "getOrders", || self.http.get(&url).query(&query)).await?;
        if status != StatusCode::OK {
            return Err(ConnectorError::Fatal(format!(
                "ebay getOrders: HTTP {} {}",
                status.as_u16(),
                error_text(&body)
            )));
        }
        let (orders, total) =
            parse_orders(&body).ok_or_else(|| ConnectorError::transient("ebay getOrders: unreadable page"))?;
        Ok(OrdersPage { orders, total_pages: total.div_ceil(u64::from(ORDERS_PAGE_SIZE)) as u32, total_orders: total })
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
            (CLIENT_ID_SETTING, "app-1"),
            (CLIENT_SECRET_SETTING, "cs-s3cret"),
            (REFRESH_TOKEN_SETTING, "v^1.1#rt-s3cret"),
        ]);
        let c = EbayConfig::from_settings(&get).unwrap();
        assert_eq!((c.marketplace_id.as_str(), c.currency.as_str(), c.skus_per_call), ("EBAY_US", "USD", 25));
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(configured(&get));
        assert!(!configured(&settings(&[(MARKETPLACE_ID_SETTING, "EBAY_DE")])));
    }

    #[test]
    fn test_config_reports_every_problem_by_name() {
        let get =
            settings(&[(SKUS_PER_CALL_SETTING, "26"), (MARKETPLACE_ID_SETTING, "US"), (CURRENCY_SETTING, "dollars")]);
        let err = EbayConfig::from_settings(&get).unwrap_err();
        for needle in [
            CLIENT_ID_SETTING,
            CLIENT_SECRET_SETTING,
            REFRESH_TOKEN_SETTING,
            SKUS_PER_CALL_SETTING,
            MARKETPLACE_ID_SETTING,
            CURRENCY_SETTING,
        ] {
            assert!(err.contains(needle), "{needle} missing: {err}");
        }
    }

    #[test]
    fn test_bulk_answer_per_sku() {
        let body = br#"{"responses":[
            {"statusCode":200,"sku":"A","offerId":"1","errors":[],"warnings":[]},
            {"statusCode":200,"sku":"B","offerId":"2"},
            {"statusCode":400,"sku":"B","offerId":"3","errors":[{"errorId":25709,"domain":"API_INVENTORY","category":"REQUEST","message":"Invalid value for price."}]}]}"#;
        let fates = parse_bulk_answer(body, &["A", "B", "C"]);
        assert_eq!(fates["A"], Ok(()));
        assert_eq!(fates["B"], Err(vec!["25709: Invalid value for price. (offer 3)".to_string()]));
        assert!(fates["C"].is_err(), "a SKU the answer left out is not taken as done");
    }

    #[test]
    fn test_unreadable_bulk_answer_fails_every_sku_with_the_reason() {
        for garbage in [&b"<html>"[..], b"", b"{}", br#"{"responses":"x"}"#] {
            let fates = parse_bulk_answer(garbage, &["A", "B"]);
            assert_eq!(fates.len(), 2);
            for fate in fates.values() {
                assert_eq!(fate, &Err(vec!["eBay answered without its documented responses[]".to_string()]));
            }
        }
    }

    #[test]
    fn test_offer_ids_only_published_of_the_sku() {
        let body = br#"{"total":3,"offers":[{"offerId":"1","sku":"A","marketplaceId":"EBAY_US","status":"PUBLISHED"},
            {"offerId":"2","sku":"A","marketplaceId":"EBAY_US","status":"UNPUBLISHED"},
            {"offerId":"3","sku":"A","marketplaceId":"EBAY_DE","status":"PUBLISHED"}]}"#;
        assert_eq!(parse_offer_ids(body, "A", "EBAY_US"), Some(vec!["1".to_string()]));
        assert_eq!(parse_offer_ids(br#"{"total":0}"#, "A", "EBAY_US"), Some(vec![]), "no offers");
        for garbage in [&b"<html>"[..], b"", b"[1]", b"\"offers\""] {
            assert_eq!(parse_offer_ids(garbage, "A", "EBAY_US"), None, "{:?}", String::from_utf8_lossy(garbage));
        }
    }

    #[test]
    fn test_orders_page_and_dates() {
        assert_eq!(ebay_time(1_793_527_200_123), "2026-11-01T10:00:00.123Z");
        let body = br#"{"total":201,"limit":200,"offset":0,"orders":[{"orderId":"04-1","lastModifiedDate":"2026-11-01T10:00:00.000Z",
            "orderFulfillmentStatus":"NOT_STARTED","pricingSummary":{"total":{"value":"25.00","currency":"USD"}},
            "lineItems":[{"sku":"A","quantity":2,"lineItemCost":{"value":"20.00","currency":"USD"}}]}]}"#;
        let (orders, total) = parse_orders(body).unwrap();
        assert_eq!(total, 201);
        assert_eq!(orders[0].last_modified, 1_793_527_200_000);
        assert_eq!(orders[0].total.to_string().parse::<f64>().unwrap(), 25.0);
        assert_eq!(orders[0].lines[0].unit_price.to_string().parse::<f64>().unwrap(), 10.0);
    }
}
