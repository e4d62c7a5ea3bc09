//! Amazon's Selling Partner API: stock and prices pushed as `JSON_LISTINGS_FEED` feeds, their
//! processing reports read per item, orders from the Orders API v2026-01-01.
//!
//! Why a feed and not one `patchListingsItem` per SKU: the per-SKU call allows 5 requests/s,
//! so a 10,000-item sync would take over half an hour; one feed carries up to 25,000 messages
//! (<https://developer-docs.amazon.com/sp-api/docs/feeds-api-v2021-06-30-reference>). A push is
//! create feed document → upload the document to the presigned URL → create feed; the feed id
//! is the receipt. Reading a result polls `getFeed` until `DONE`/`FATAL`/`CANCELLED`, then
//! downloads the processing report (gunzipped when Amazon says so) and maps each message's
//! issues back to its SKU ([`feed`]).
//!
//! Every SP-API call carries a Login with Amazon access token ([`lwa`]) in `x-amz-access-token`;
//! SigV4 signing is no longer required. Each operation has its own token bucket with Amazon's
//! documented rate and burst ([`crate::rate_limit::Bucket`]); a 429 (which carries no
//! `Retry-After`) empties that bucket and the call is retried when the next token is due. A
//! 401/403 saying the token expired or is invalid refreshes it once; any other 401/403, or a
//! refused token request, is fatal and names the settings to check, never their values.
//!
//! Orders: `searchOrders` pages by an opaque `paginationToken` while the engine asks for page
//! numbers; the tokens seen are kept per time range, and a page whose token this process does
//! not know (after a restart) is reached by walking from the first page again.

pub mod feed;
pub mod lwa;

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meschain_model::clock::Clock;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::connector::{BatchStatus, Connector, ConnectorError, OrdersPage, PushOutcome};
use crate::rate_limit::{Bucket, BucketLimiter};
use crate::request::Item;
use feed::{FeedTarget, Report};
use lwa::{Lwa, LwaCredentials, Secret};

pub use meschain_model::settings::{
    AMAZON_BASE_URL as BASE_URL_SETTING, AMAZON_CLIENT_ID as CLIENT_ID_SETTING,
    AMAZON_CLIENT_SECRET as CLIENT_SECRET_SETTING, AMAZON_CURRENCY as CURRENCY_SETTING,
    AMAZON_FEED_MESSAGES as FEED_MESSAGES_SETTING, AMAZON_MARKETPLACE_ID as MARKETPLACE_ID_SETTING,
    AMAZON_PRODUCT_TYPE as PRODUCT_TYPE_SETTING, AMAZON_REFRESH_TOKEN as REFRESH_TOKEN_SETTING,
    AMAZON_SELLER_ID as SELLER_ID_SETTING, AMAZON_TOKEN_URL as TOKEN_URL_SETTING,
};

/// The EU host serves Turkey and Germany.
pub const DEFAULT_BASE_URL: &str = "https://sellingpartnerapi-eu.amazon.com";
pub const DEFAULT_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";
/// Documented: at most 25,000 messages per JSON_LISTINGS_FEED.
pub const MAX_FEED_MESSAGES: usize = 25_000;
/// Default messages per feed: large enough that feeds stay within createFeed's burst for a
/// 100,000-item sync, small enough that a document is a few MB.
pub const DEFAULT_FEED_MESSAGES: usize = 10_000;
/// Documented maximum of `maxResultsPerPage`.
pub const ORDERS_PAGE_SIZE: u32 = 100;
/// The content type declared for the feed document and sent with its upload.
pub const FEED_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
const USER_AGENT: &str = concat!("MesChainRealtime/", env!("CARGO_PKG_VERSION"), " (Language=Rust)");
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read (processing reports list every item: about 40 bytes each).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// How long a feed's report may take before its items count as unconfirmed (UNDOCUMENTED:
/// Amazon gives no bound; feeds usually finish within minutes). Kept below the engine's three
/// deliveries without progress (3 × 240 s by default), after which it fails the sync.
pub const RESULTS_WITHIN: Duration = Duration::from_secs(10 * 60);

/// Documented defaults per operation (rate per second, burst).
pub const CREATE_FEED_DOCUMENT: Bucket = Bucket { rate: 0.5, burst: 15 };
pub const CREATE_FEED: Bucket = Bucket { rate: 0.0083, burst: 15 };
pub const GET_FEED: Bucket = Bucket { rate: 2.0, burst: 15 };
pub const GET_FEED_DOCUMENT: Bucket = Bucket { rate: 0.0222, burst: 10 };
pub const SEARCH_ORDERS: Bucket = Bucket { rate: 0.0056, burst: 20 };

/// The marketplace's own currency, for the ids whose currency is not in doubt.
fn marketplace_currency(marketplace_id: &str) -> Option<&'static str> {
    Some(match marketplace_id {
        "A33AVAJ2PDY3EV" => "TRY",
        "A1PA6795UKMFR9" | "A13V1IB3VIYZZH" | "APJ6JRA9NG5V4" | "A1RKKUPIHCS9HS" | "A1805IZSGTT6HS"
        | "AMEN7PMS3EDWL" => "EUR",
        "A1F83G8C2ARO7P" => "GBP",
        "ATVPDKIKX0DER" => "USD",
        _ => return None,
    })
}

/// Amazon's settings. `Debug` never shows the client secret or the refresh token.
#[derive(Clone)]
pub struct AmazonConfig {
    pub base_url: url::Url,
    pub token_url: url::Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    pub seller_id: String,
    pub marketplace_id: String,
    pub currency: String,
    pub product_type: String,
    pub feed_messages: usize,
    /// How long a feed's results may take ([`RESULTS_WITHIN`]; not a setting, tests shorten it).
    pub results_within: Duration,
}

impl fmt::Debug for AmazonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmazonConfig")
            .field("base_url", &self.base_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("refresh_token", &self.refresh_token)
            .field("seller_id", &self.seller_id)
            .field("marketplace_id", &self.marketplace_id)
            .field("currency", &self.currency)
            .field("product_type", &self.product_type)
            .field("feed_messages", &self.feed_messages)
            .field("results_within", &self.results_within)
            .finish()
    }
}

/// Whether any Amazon credential is set (then Amazon is meant to be live).
pub fn configured(get: &dyn Fn(&str) -> Option<String>) -> bool {
    [CLIENT_ID_SETTING, CLIENT_SECRET_SETTING, REFRESH_TOKEN_SETTING]
        .iter()
        .any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

fn http_url(s: &str) -> Option<url::Url> {
    url::Url::parse(s.trim_end_matches('/')).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// Amazon ids are upper-case letters and digits.
fn amazon_id(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl AmazonConfig {
    /// Reads the `AMAZON_*` settings; every problem is reported at once, by name.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();
        let base_url = http_url(&get(BASE_URL_SETTING).unwrap_or_else(|| DEFAULT_BASE_URL.into()));
        if base_url.is_none() {
            problems.push(format!("{BASE_URL_SETTING} must be an http(s) URL"));
        }
        let token_url = http_url(&get(TOKEN_URL_SETTING).unwrap_or_else(|| DEFAULT_TOKEN_URL.into()));
        if token_url.is_none() {
            problems.push(format!("{TOKEN_URL_SETTING} must be an http(s) URL"));
        }
        let mut required = |name: &str| {
            let v = get(name).unwrap_or_default();
            if v.is_empty() {
                problems.push(format!("{name} is required"));
            }
            v
        };
        let client_id = required(CLIENT_ID_SETTING);
        let client_secret = Secret::new(required(CLIENT_SECRET_SETTING));
        let refresh_token = Secret::new(required(REFRESH_TOKEN_SETTING));
        let seller_id = get(SELLER_ID_SETTING).unwrap_or_default();
        if !amazon_id(&seller_id) {
            problems.push(format!("{SELLER_ID_SETTING} must be the merchant token (upper-case letters and digits)"));
        }
        let marketplace_id = get(MARKETPLACE_ID_SETTING).unwrap_or_default();
        if !amazon_id(&marketplace_id) {
            problems.push(format!(
                "{MARKETPLACE_ID_SETTING} must be a marketplace id (upper-case letters and digits, e.g. A33AVAJ2PDY3EV)"
            ));
        }
        let currency = match get(CURRENCY_SETTING) {
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => c,
            Some(_) => {
                problems.push(format!("{CURRENCY_SETTING} must be an ISO 4217 code such as TRY"));
                String::new()
            }
            None => match marketplace_currency(&marketplace_id) {
                Some(c) => c.to_string(),
                None => {
                    if amazon_id(&marketplace_id) {
                        problems.push(format!(
                            "{CURRENCY_SETTING} is required for marketplace {marketplace_id} (its currency is not known here)"
                        ));
                    }
                    String::new()
                }
            },
        };
        let product_type = get(PRODUCT_TYPE_SETTING).unwrap_or_else(|| "PRODUCT".into());
        if !product_type.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            problems.push(format!("{PRODUCT_TYPE_SETTING} must be an Amazon product type such as PRODUCT"));
        }
        let feed_messages = match get(FEED_MESSAGES_SETTING) {
            None => DEFAULT_FEED_MESSAGES,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_FEED_MESSAGES).contains(&n) => n,
                _ => {
                    problems.push(format!("{FEED_MESSAGES_SETTING} must be 1-{MAX_FEED_MESSAGES}"));
                    DEFAULT_FEED_MESSAGES
                }
            },
        };
        match (base_url, token_url) {
            (Some(base_url), Some(token_url)) if problems.is_empty() => Ok(AmazonConfig {
                base_url,
                token_url,
                client_id,
                client_secret,
                refresh_token,
                seller_id,
                marketplace_id,
                currency,
                product_type,
                feed_messages,
                results_within: RESULTS_WITHIN,
            }),
            _ => Err(format!("amazon connector: {}", problems.join("; "))),
        }
    }
}

/// The live Amazon connector.
pub struct Amazon {
    http: reqwest::Client,
    base: String,
    config: AmazonConfig,
    lwa: Lwa,
    create_document: BucketLimiter,
    create_feed: BucketLimiter,
    get_feed: BucketLimiter,
    get_document: BucketLimiter,
    search_orders: BucketLimiter,
    /// Per `(from, to)`: `tokens[k]` opens page `k + 1`.
    order_tokens: Mutex<HashMap<(i64, i64), Vec<String>>>,
}

/// A `GET`/`POST` to the SP-API host, rebuilt for a retry after a token refresh.
enum Call<'a> {
    Get(String, &'a [(&'a str, String)]),
    Post(String, Value),
}

impl Amazon {
    pub fn new(config: AmazonConfig, http: reqwest::Client) -> Self {
        Self::with_clock(config, http, Arc::new(meschain_model::clock::SystemClock))
    }

    /// With the clock token expiry is read from (tests move it).
    pub fn with_clock(config: AmazonConfig, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        let lwa = Lwa::new(
            http.clone(),
            LwaCredentials {
                token_url: config.token_url.to_string(),
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                refresh_token: config.refresh_token.clone(),
            },
            clock,
        );
        Amazon {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            config,
            lwa,
            create_document: BucketLimiter::new(CREATE_FEED_DOCUMENT),
            create_feed: BucketLimiter::new(CREATE_FEED),
            get_feed: BucketLimiter::new(GET_FEED),
            get_document: BucketLimiter::new(GET_FEED_DOCUMENT),
            search_orders: BucketLimiter::new(SEARCH_ORDERS),
            order_tokens: Mutex::new(HashMap::new()),
        }
    }

    /// One SP-API call under `limiter`: token, headers, throttling, the one refresh on an
    /// expired token. Returns the status and body of anything that is not an error to act on.
    async fn call(
        &self,
        limiter: &BucketLimiter,
        what: &str,
        call: Call<'_>,
    ) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        let mut refreshed = false;
        loop {
            limiter.acquire().await;
            let token = self.lwa.token().await?;
            let mut access = HeaderValue::from_str(token.expose())
                .map_err(|_| ConnectorError::transient("amazon token: not a valid header value"))?;
            access.set_sensitive(true);
            let request = match &call {
                Call::Get(url, query) => self.http.get(url).query(query),
                Call::Post(url, body) => self
                    .http
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).expect("json serializes")),
            };
            let response = request
                .header("x-amz-access-token", access)
                .header("x-amz-date", amz_date())
                .header(header::USER_AGENT, USER_AGENT)
                .header(header::ACCEPT, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(|e| transport(what, e))?;
            let status = response.status();
            let body =
                read_capped(response).await.map_err(|e| ConnectorError::transient(format!("amazon {what}: {e}")))?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = limiter.drain().await;
                return Err(ConnectorError::Transient {
                    reason: format!("amazon {what}: 429 {}", feed::error_text(&body)),
                    retry_after: Some(wait),
                });
            }
            if status.is_server_error() {
                return Err(ConnectorError::transient(format!(
                    "amazon {what}: HTTP {} {}",
                    status.as_u16(),
                    feed::error_text(&body)
                )));
            }
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                let text = feed::error_text(&body);
                let about_token = text.to_ascii_lowercase().contains("token");
                if about_token && !refreshed {
                    self.lwa.invalidate(&token).await;
                    refreshed = true;
                    continue;
                }
                let check = if about_token {
                    format!("check {CLIENT_ID_SETTING}, {CLIENT_SECRET_SETTING} and {REFRESH_TOKEN_SETTING}")
                } else {
                    format!(
                        "check {SELLER_ID_SETTING} and {MARKETPLACE_ID_SETTING}, and that the app is authorized for this seller"
                    )
                };
                return Err(ConnectorError::Fatal(format!("amazon {what}: HTTP {} {text} ({check})", status.as_u16())));
            }
            return Ok((status, body));
        }
    }

    /// A presigned document URL: no SP-API headers, and never in a message (it is a credential).
    async fn transfer(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>, ConnectorError> {
        let response = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| transport(what, e))?;
        let status = response.status();
        let body = read_capped(response).await.map_err(|e| ConnectorError::transient(format!("amazon {what}: {e}")))?;
        if status.is_success() {
            Ok(body)
        } else {
            // An expired or refused presigned URL: a new one is asked for on the retry.
            Err(ConnectorError::transient(format!("amazon {what}: HTTP {}", status.as_u16())))
        }
    }

    fn target(&self) -> FeedTarget<'_> {
        FeedTarget {
            seller_id: &self.config.seller_id,
            marketplace_id: &self.config.marketplace_id,
            currency: &self.config.currency,
            product_type: &self.config.product_type,
        }
    }

    /// The processing report of a finished feed.
    async fn report(&self, document_id: &str) -> Result<Report, ConnectorError> {
        let url = format!("{}/feeds/2021-06-30/documents/{}", self.base, path_segment(document_id));
        let (status, body) = self.call(&self.get_document, "get feed document", Call::Get(url, &[])).await?;
        if status != StatusCode::OK {
            return Err(ConnectorError::Fatal(format!(
                "amazon get feed document: HTTP {} {}",
                status.as_u16(),
                feed::error_text(&body)
            )));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(url) = v.get("url").and_then(Value::as_str) else {
            return Err(ConnectorError::transient("amazon get feed document: answer without a url"));
        };
        let gzip = match v.get("compressionAlgorithm").and_then(Value::as_str) {
            None => false,
            Some("GZIP") => true,
            Some(other) => {
                return Err(ConnectorError::Fatal(format!("amazon feed report: unknown compression {other:?}")));
            }
        };
        let raw = self.transfer("feed report download", self.http.get(url)).await?;
        let body = if gzip {
            gunzip(&raw).map_err(|e| ConnectorError::transient(format!("amazon feed report: {e}")))?
        } else {
            raw
        };
        feed::parse_report(&body).ok_or_else(|| ConnectorError::transient("amazon feed report: unreadable document"))
    }

    /// The token of page `page` of `(from, to)`, walking from the last known page when needed.
    async fn page_token(&self, from: i64, to: i64, page: u32) -> Result<Option<String>, ConnectorError> {
        if page == 0 {
            return Ok(None);
        }
        loop {
            let known = self.order_tokens.lock().await.get(&(from, to)).map_or(0, Vec::len);
            if known >= page as usize {
                return Ok(self.order_tokens.lock().await[&(from, to)].get(page as usize - 1).cloned());
            }
            // Fetch page `known` to learn the token of page `known + 1`.
            let token =
                if known == 0 { None } else { self.order_tokens.lock().await[&(from, to)].get(known - 1).cloned() };
            let fetched = self.search(from, to, token.as_deref()).await?;
            match fetched.next_token {
                Some(t) => self.remember(from, to, known as u32, t).await,
                None => {
                    return Err(ConnectorError::Fatal(format!(
                        "amazon orders: page {page} asked for, but there are only {} pages",
                        known + 1
                    )));
                }
            }
        }
    }

    async fn remember(&self, from: i64, to: i64, page: u32, next: String) {
        let mut tokens = self.order_tokens.lock().await;
        let list = tokens.entry((from, to)).or_default();
        if list.len() == page as usize {
            list.push(next);
        }
    }

    async fn search(&self, from: i64, to: i64, token: Option<&str>) -> Result<feed::OrdersPage, ConnectorError> {
        let mut query: Vec<(&str, String)> = vec![
            ("lastUpdatedAfter", iso(from)),
            ("lastUpdatedBefore", iso(to)),
            ("marketplaceIds", self.config.marketplace_id.clone()),
            ("maxResultsPerPage", ORDERS_PAGE_SIZE.to_string()),
            ("includedData", "PROCEEDS".to_string()),
        ];
        if let Some(t) = token {
            query.push(("paginationToken", t.to_string()));
        }
        let url = format!("{}/orders/2026-01-01/orders", self.base);
        let (status, body) = self.call(&self.search_orders, "orders", Call::Get(url, &query)).await?;
        if status != StatusCode::OK {
            return Err(ConnectorError::Fatal(format!(
                "amazon orders: HTTP {} {}",
                status.as_u16(),
                feed::error_text(&body)
            )));
        }
        feed::parse_orders(&body, &self.config.currency)
            .ok_or_else(|| ConnectorError::transient("amazon orders: unreadable page"))
    }
}

#[async_trait]
impl Connector for Amazon {
    fn max_batch(&self) -> usize {
        self.config.feed_messages
    }

    /// Feeds of one seller are processed one after another anyway; two in flight let the next
    /// upload overlap the previous feed's processing.
    fn concurrency(&self) -> usize {
        2
    }

    /// Feeds queue behind the seller's other feeds (`IN_QUEUE`) and take minutes; past this the
    /// items count as unconfirmed rather than holding the sync forever.
    fn results_within(&self) -> Option<Duration> {
        Some(self.config.results_within)
    }

    async fn push(&self, items: &[Item]) -> Result<PushOutcome, ConnectorError> {
        if items.len() > self.config.feed_messages {
            return Err(ConnectorError::Fatal(format!(
                "amazon push: {} items, at most {}",
                items.len(),
                self.config.feed_messages
            )));
        }
        let document = feed::feed_document(items, &self.target());
        if document["messages"].as_array().is_none_or(Vec::is_empty) {
            return Ok(PushOutcome::Rejected { reason: "no item carries a quantity or price to send".into() });
        }
        let url = format!("{}/feeds/2021-06-30/documents", self.base);
        let spec = json!({ "contentType": FEED_CONTENT_TYPE });
        let (status, body) = self.call(&self.create_document, "create feed document", Call::Post(url, spec)).await?;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Ok(PushOutcome::Rejected {
                reason: format!("create feed document: HTTP {} {}", status.as_u16(), feed::error_text(&body)),
            });
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (Some(document_id), Some(upload_url)) =
            (v.get("feedDocumentId").and_then(Value::as_str), v.get("url").and_then(Value::as_str))
        else {
            return Err(ConnectorError::transient("amazon create feed document: answer without feedDocumentId or url"));
        };
        let upload = self
            .http
            .put(upload_url)
            .header(header::CONTENT_TYPE, FEED_CONTENT_TYPE)
            .body(serde_json::to_vec(&document).expect("json serializes"));
        self.transfer("feed upload", upload).await?;
        let url = format!("{}/feeds/2021-06-30/feeds", self.base);
        let spec = json!({
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [self.config.marketplace_id],
            "inputFeedDocumentId": document_id,
        });
        let (status, body) = self.call(&self.create_feed, "create feed", Call::Post(url, spec)).await?;
        if status != StatusCode::ACCEPTED && status != StatusCode::OK {
            return Ok(PushOutcome::Rejected {
                reason: format!("create feed: HTTP {} {}", status.as_u16(), feed::error_text(&body)),
            });
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match v.get("feedId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(PushOutcome::Accepted { receipt: id.to_string() }),
            // The feed may exist; retrying creates another with the same absolute values.
            _ => Err(ConnectorError::transient("amazon create feed: answer without a feedId")),
        }
    }

    async fn batch_result(&self, receipt: &str) -> Result<BatchStatus, ConnectorError> {
        let url = format!("{}/feeds/2021-06-30/feeds/{}", self.base, path_segment(receipt));
        let (status, body) = self.call(&self.get_feed, "get feed", Call::Get(url, &[])).await?;
        match status {
            StatusCode::OK => {}
            // Right after createFeed the feed may not be visible yet; the engine bounds the polls.
            StatusCode::NOT_FOUND => return Ok(BatchStatus::InProgress),
            s => {
                return Err(ConnectorError::Fatal(format!(
                    "amazon get feed: HTTP {} {}",
                    s.as_u16(),
                    feed::error_text(&body)
                )));
            }
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let state = v.get("processingStatus").and_then(Value::as_str).unwrap_or("");
        let document = v.get("resultFeedDocumentId").and_then(Value::as_str).filter(|d| !d.is_empty());
        match (state, document) {
            ("IN_QUEUE" | "IN_PROGRESS", _) => Ok(BatchStatus::InProgress),
            ("DONE" | "FATAL", Some(document)) => match self.report(document).await? {
                Report::Items(results) => Ok(BatchStatus::Done(results)),
                Report::FeedRefused(reason) => {
                    Err(ConnectorError::Fatal(format!("amazon feed {receipt} refused as a whole: {reason}")))
                }
            },
            // Without a report nothing is known per item: every item stays unconfirmed.
            ("DONE" | "FATAL" | "CANCELLED", _) => {
                tracing::warn!(feed = receipt, state, "amazon feed finished without a processing report");
                Ok(BatchStatus::Done(Vec::new()))
            }
            _ => Err(ConnectorError::transient(format!("amazon get feed: unknown processingStatus {state:?}"))),
        }
    }

    async fn orders(&self, from_ms: i64, to_ms: i64, page: u32) -> Result<OrdersPage, ConnectorError> {
        let token = self.page_token(from_ms, to_ms, page).await?;
        let fetched = self.search(from_ms, to_ms, token.as_deref()).await?;
        let more = fetched.next_token.is_some();
        if let Some(next) = fetched.next_token {
            self.remember(from_ms, to_ms, page, next).await;
        }
        let seen = u64::from(page) * u64::from(ORDERS_PAGE_SIZE) + fetched.orders.len() as u64;
        Ok(OrdersPage {
            orders: fetched.orders,
            total_pages: page + if more { 2 } else { 1 },
            total_orders: seen + u64::from(more),
        })
    }
}

fn transport(what: &str, e: reqwest::Error) -> ConnectorError {
    let kind = if e.is_timeout() { "timed out" } else { "failed" };
    // Without the URL: a presigned URL is a credential.
    ConnectorError::transient(format!("amazon {what} {kind}: {}", e.without_url()))
}

fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn iso(ms: i64) -> String {
    meschain_model::clock::rfc3339_millis(ms.max(0) as u64)
}

/// `x-amz-date`: UTC, `YYYYMMDDTHHMMSSZ`.
fn amz_date() -> String {
    let ms = meschain_model::clock::now_ms();
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| format!("reading the answer failed: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("answer larger than {MAX_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not gzip: {e}"))?;
    if out.len() > MAX_RESPONSE_BYTES {
        return Err(format!("report larger than {MAX_RESPONSE_BYTES} bytes once unzipped"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn test_config_reports_every_problem_by_name_never_value() {
        let get = settings(&[(CLIENT_SECRET_SETTING, "s3cr3t-value"), (MARKETPLACE_ID_SETTING, "a33")]);
        let err = AmazonConfig::from_settings(&get).unwrap_err();
        for name in [CLIENT_ID_SETTING, REFRESH_TOKEN_SETTING, SELLER_ID_SETTING, MARKETPLACE_ID_SETTING] {
            assert!(err.contains(name), "{err}");
        }
        assert!(!err.contains("s3cr3t-value"));
    }

    #[test]
    fn test_config_defaults_and_debug_redacts() {
        let get = settings(&[
            (CLIENT_ID_SETTING, "amzn1.application-oa2-client.x"),
            (CLIENT_SECRET_SETTING, "s3cr3t-value"),
            (REFRESH_TOKEN_SETTING, "Atzr|refresh-value"),
            (SELLER_ID_SETTING, "A2SELLER"),
            (MARKETPLACE_ID_SETTING, "A33AVAJ2PDY3EV"),
        ]);
        let c = AmazonConfig::from_settings(&get).unwrap();
        assert_eq!(c.currency, "TRY");
        assert_eq!(c.base_url.as_str(), "https://sellingpartnerapi-eu.amazon.com/");
        assert_eq!(c.feed_messages, DEFAULT_FEED_MESSAGES);
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t-value") && !debug.contains("refresh-value"), "{debug}");
        assert!(configured(&get));
        assert!(!configured(&settings(&[(SELLER_ID_SETTING, "A2SELLER")])));
        let unknown = settings(&[
            (CLIENT_ID_SETTING, "x"),
            (CLIENT_SECRET_SETTING, "y"),
            (REFRESH_TOKEN_SETTING, "z"),
            (SELLER_ID_SETTING, "A2SELLER"),
            (MARKETPLACE_ID_SETTING, "AXXXXXXXXXX"),
        ]);
        assert!(AmazonConfig::from_settings(&unknown).unwrap_err().contains(CURRENCY_SETTING));
    }

    #[test]
    fn test_amz_date_shape() {
        let d = amz_date();
        assert_eq!(d.len(), 16, "{d}");
        assert_eq!(&d[8..9], "T");
        assert!(d.ends_with('Z'));
    }
}
