//! Microsoft Entra ID end to end: the official `azure_identity` managed-identity credential
//! against a loopback stand-in of the App Service identity endpoint, and the handler's REST
//! calls and negotiate against the local SignalR service.
//!
//! The identity stand-in follows the documented App Service contract (`IDENTITY_ENDPOINT`,
//! `IDENTITY_HEADER`, `GET ?resource=&api-version=2019-08-01[&client_id=]` with
//! `X-IDENTITY-HEADER`, answer `{access_token, expires_on, resource, token_type}`), errors
//! included. The local SignalR service only understands access-key tokens, so a gateway sits
//! in front of it playing the part of the real service's Entra front door: it accepts only the
//! token the identity stand-in issued, answers `/api/v1/auth/accessKey` with a key id and the
//! service's key, and forwards everything else re-signed with that key.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Handler, login, now, settings};
use meschain_functions::client_tokens::{IssuedKey, KeyFetchError};
use meschain_functions::signalr_rest::entra::{EntraToken, SCOPE};
use meschain_functions::signalr_rest::retry::RetryPolicy;
use meschain_functions::signalr_rest::{Endpoint, RequestAuth, RestError, SignalRRest};
use meschain_signalr::connection_string::{EntraIdAuth, EntraIdKind};
use meschain_signalr::rest::Operation;
use meschain_signalr::token::SigningKey;
use meschain_signalr::{AccessKey, ConnectionString};
use meschain_signalr_service::{Config, RunningService};
use serde_json::{Value, json};

const IDENTITY_SECRET: &str = "identity-header-secret-for-tests";
const ENTRA_TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.entra-token-issued-by-the-identity-stand-in.sig";
const USER_ASSIGNED_ID: &str = "5f3c2a1e-0000-4000-8000-00000000abcd";
const SERVICE_KEY: &str = "service-access-key-behind-the-gateway";
const KEY_ID: &str = "entra-key-id-7";
const HUB: &str = "MesChainAdminHub";

// ---------------------------------------------------------------------------------------------
// The App Service managed-identity endpoint.

#[derive(Clone)]
struct IdentityState {
    secret: &'static str,
    lifetime_secs: u64,
    /// Query of every request that got a token.
    issued: Arc<Mutex<Vec<HashMap<String, String>>>>,
    refused: Arc<AtomicUsize>,
}

struct Identity {
    addr: SocketAddr,
    state: IdentityState,
}

impl Identity {
    async fn start(secret: &'static str, lifetime_secs: u64) -> Identity {
        let state = IdentityState { secret, lifetime_secs, issued: Arc::default(), refused: Arc::default() };
        let app = Router::new().route("/msi/token", get(identity_token)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Identity { addr, state }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/msi/token", self.addr.port())
    }

    fn issued(&self) -> Vec<HashMap<String, String>> {
        self.state.issued.lock().unwrap().clone()
    }
}

fn identity_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": status.as_u16().to_string(), "message": message}}))).into_response()
}

async fn identity_token(
    State(s): State<IdentityState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let refuse = |status, message: &str| {
        s.refused.fetch_add(1, Ordering::SeqCst);
        identity_error(status, message)
    };
    match headers.get("x-identity-header").map(|v| v.to_str().unwrap_or_default()) {
        None => return refuse(StatusCode::BAD_REQUEST, "X-IDENTITY-HEADER is missing"),
        Some(v) if v != s.secret => return refuse(StatusCode::UNAUTHORIZED, "X-IDENTITY-HEADER is not valid"),
        Some(_) => {}
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return refuse(StatusCode::BAD_REQUEST, "api-version must be 2019-08-01");
    }
    let Some(resource) = q.get("resource").filter(|r| !r.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "resource is required");
    };
    if q.get("client_id").is_some_and(|id| id != USER_ASSIGNED_ID) {
        return refuse(StatusCode::BAD_REQUEST, "no such user-assigned identity");
    }
    s.issued.lock().unwrap().push(q.clone());
    axum::Json(json!({
        "access_token": ENTRA_TOKEN,
        "expires_on": (now() + s.lifetime_secs).to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": q.get("client_id").map(String::as_str).unwrap_or("system-assigned"),
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// The Entra front door of the SignalR service.

#[derive(Clone)]
struct GatewayState {
    service: String,
    /// `Authorization` of every request, in order.
    bearers: Arc<Mutex<Vec<String>>>,
    key_fetches: Arc<AtomicUsize>,
    key_down: Arc<AtomicBool>,
    http: reqwest::Client,
}

struct Gateway {
    addr: SocketAddr,
    state: GatewayState,
    _service: RunningService,
}

impl Gateway {
    async fn start() -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service = meschain_signalr_service::start(
            Config { access_keys: vec![AccessKey::new(SERVICE_KEY)], ..Config::default() },
            listener,
        )
        .await
        .unwrap();
        let state = GatewayState {
            service: format!("http://127.0.0.1:{}", service.local_addr().port()),
            bearers: Arc::default(),
            key_fetches: Arc::default(),
            key_down: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(gateway).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Gateway { addr, state, _service: service }
    }

    fn bearers(&self) -> Vec<String> {
        self.state.bearers.lock().unwrap().clone()
    }

    fn connection_string(&self, rest: &str) -> String {
        format!("Endpoint=http://localhost;Port={};{rest}", self.addr.port())
    }
}

async fn gateway(State(s): State<GatewayState>, req: Request) -> Response {
    let bearer = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    s.bearers.lock().unwrap().push(bearer.clone());
    if bearer != format!("Bearer {ENTRA_TOKEN}") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    if req.uri().path() == "/api/v1/auth/accessKey" {
        s.key_fetches.fetch_add(1, Ordering::SeqCst);
        if s.key_down.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        return axum::Json(json!({"KeyId": KEY_ID, "AccessKey": SERVICE_KEY})).into_response();
    }
    // Forward to the local service, authorised the only way it understands.
    let token = SigningKey::hs256(&AccessKey::new(SERVICE_KEY))
        .rest_token(&format!("http://localhost{path}"), now(), 300)
        .unwrap();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut fwd = s.http.request(parts.method, format!("{}{path}", s.service)).bearer_auth(token).body(bytes);
    if let Some(ct) = parts.headers.get("content-type") {
        fwd = fwd.header("content-type", ct);
    }
    match fwd.send().await {
        Ok(r) => {
            let mut out = Response::builder().status(r.status().as_u16());
            for (k, v) in r.headers() {
                out = out.header(k, v);
            }
            out.body(axum::body::Body::from(r.bytes().await.unwrap_or_default())).unwrap()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// The managed-identity credential in this process.

/// `azure_identity` reads `IDENTITY_ENDPOINT` when a credential is built and `IDENTITY_HEADER`
/// on every token request. Tests here build credentials under this lock (the endpoint differs
/// per test) and set the header once, to one value, before any credential exists.
static ENV_LOCK: Mutex<()> = Mutex::new(());
static HEADER_ONCE: Once = Once::new();

fn managed_identity(identity_endpoint: &str, client_id: Option<&str>) -> EntraToken {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: no other thread of this test binary reads or writes the environment except
    // `azure_identity` reading these two variables; IDENTITY_ENDPOINT is only read while
    // building a credential (under ENV_LOCK) and IDENTITY_HEADER is written once, first.
    HEADER_ONCE.call_once(|| unsafe { std::env::set_var("IDENTITY_HEADER", IDENTITY_SECRET) });
    unsafe { std::env::set_var("IDENTITY_ENDPOINT", identity_endpoint) };
    let auth = EntraIdAuth {
        kind: EntraIdKind::ManagedIdentity,
        client_id: client_id.map(str::to_string),
        tenant_id: None,
        client_secret: None,
        client_cert: None,
    };
    EntraToken::from_auth(&auth, reqwest::Client::new()).unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(1),
        budget: Duration::from_secs(3),
    }
}

fn entra_client(gateway: &Gateway, token: EntraToken) -> SignalRRest {
    let cs: ConnectionString = gateway.connection_string("AuthType=azure.msi").parse().unwrap();
    SignalRRest::new(vec![Endpoint::with_auth(cs, RequestAuth::Entra(token))], policy())
}

async fn send_all(client: &SignalRRest) -> Result<(), RestError> {
    client.send(HUB, Operation::SendToAll { excluded: &[] }, "systemAlert", &[json!({"message": "hi"})]).await
}

#[tokio::test]
async fn test_rest_calls_carry_one_cached_managed_identity_token() {
    let identity = Identity::start(IDENTITY_SECRET, 3600).await;
    let gateway = Gateway::start().await;
    let client = entra_client(&gateway, managed_identity(&identity.endpoint(), Some(USER_ASSIGNED_ID)));

    for _ in 0..3 {
        send_all(&client).await.unwrap();
    }
    // A 404 with the service's error code, read as "no": the call went through the gateway to
    // the real local service and back.
    assert_eq!(client.run(HUB, Operation::UserExists { user: "nobody" }).await, Ok(false));

    let bearers = gateway.bearers();
    assert_eq!(bearers.len(), 4);
    assert!(bearers.iter().all(|b| *b == format!("Bearer {ENTRA_TOKEN}")), "{bearers:?}");
    // The credential cached the token: one identity request for four calls.
    let issued = identity.issued();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["resource"], SCOPE.trim_end_matches("/.default"));
    assert_eq!(issued[0]["api-version"], "2019-08-01");
    assert_eq!(issued[0]["client_id"], USER_ASSIGNED_ID);
    assert!(!format!("{:?}", client.active()).contains(ENTRA_TOKEN));
}

#[tokio::test]
async fn test_a_token_near_expiry_is_refreshed_before_use() {
    // Tokens expiring within five minutes are refreshed by the credential's cache.
    let identity = Identity::start(IDENTITY_SECRET, 120).await;
    let gateway = Gateway::start().await;
    let client = entra_client(&gateway, managed_identity(&identity.endpoint(), None));
    send_all(&client).await.unwrap();
    send_all(&client).await.unwrap();
    let issued = identity.issued();
    assert_eq!(issued.len(), 2);
    assert!(!issued[0].contains_key("client_id"), "system-assigned identity sends no client_id");
}

#[tokio::test]
async fn test_identity_endpoint_down_fails_clearly_within_the_budget() {
    let refused = common::RefusedPort::new();
    let closed = refused.port();
    let gateway = Gateway::start().await;
    let client = entra_client(&gateway, managed_identity(&format!("http://127.0.0.1:{closed}/msi/token"), None));
    let started = Instant::now();
    let err = send_all(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, RestError::Credential(_)), "{err:?}");
    assert!(err.to_string().contains("Microsoft Entra token unavailable"), "{err}");
    assert!(elapsed <= policy().budget + Duration::from_millis(500), "took {elapsed:?}");
    assert!(gateway.bearers().is_empty(), "no request may go out without a token");
}

#[tokio::test]
async fn test_identity_endpoint_refusals_are_errors_not_tokens() {
    // The endpoint expects another secret than the one this process has: 401.
    let identity = Identity::start("a-different-secret", 3600).await;
    let gateway = Gateway::start().await;
    let client = entra_client(&gateway, managed_identity(&identity.endpoint(), None));
    let err = send_all(&client).await.unwrap_err();
    assert!(matches!(err, RestError::Credential(_)), "{err:?}");
    assert!(identity.state.refused.load(Ordering::SeqCst) >= 1);
    assert!(identity.issued().is_empty());

    // An identity that is not assigned to this resource: 400.
    let identity = Identity::start(IDENTITY_SECRET, 3600).await;
    let client = entra_client(&gateway, managed_identity(&identity.endpoint(), Some("not-assigned")));
    let err = send_all(&client).await.unwrap_err();
    assert!(err.to_string().contains("has not been assigned"), "{err}");
    assert!(gateway.bearers().is_empty());
}

#[tokio::test]
async fn test_identity_stand_in_contract() {
    let identity = Identity::start(IDENTITY_SECRET, 3600).await;
    let c = reqwest::Client::new();
    let url = |q: &str| format!("{}?{q}", identity.endpoint());
    let ok = "resource=https://signalr.azure.com&api-version=2019-08-01";
    assert_eq!(c.get(url(ok)).send().await.unwrap().status(), 400, "missing header");
    let wrong = c.get(url(ok)).header("X-IDENTITY-HEADER", "nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let no_version = c.get(url("resource=x")).header("X-IDENTITY-HEADER", IDENTITY_SECRET).send().await.unwrap();
    assert_eq!(no_version.status(), 400);
    let body: Value =
        c.get(url(ok)).header("X-IDENTITY-HEADER", IDENTITY_SECRET).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["access_token"], ENTRA_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_on"].as_str().unwrap().parse::<u64>().unwrap() > now());
}

// ---------------------------------------------------------------------------------------------
// The service-issued signing key.

#[tokio::test]
async fn test_issued_key_is_kept_while_a_refresh_fails() {
    let identity = Identity::start(IDENTITY_SECRET, 3600).await;
    let gateway = Gateway::start().await;
    let cs: ConnectionString = gateway.connection_string("AuthType=azure.msi").parse().unwrap();
    let key = IssuedKey::new(&cs, managed_identity(&identity.endpoint(), None), reqwest::Client::new());
    assert!(key.current().is_none());

    gateway.state.key_down.store(true, Ordering::SeqCst);
    assert_eq!(key.refresh().await, Err(KeyFetchError::Status(503)));
    assert!(key.current().is_none(), "no key before the service issued one");

    gateway.state.key_down.store(false, Ordering::SeqCst);
    key.refresh().await.unwrap();
    let first = key.current().unwrap();

    gateway.state.key_down.store(true, Ordering::SeqCst);
    assert_eq!(key.refresh().await, Err(KeyFetchError::Status(503)));
    let kept = key.current().expect("the previous key stays usable");
    assert!(Arc::ptr_eq(&first, &kept));
    let t = kept.client_token("http://localhost/client/?hub=h", &Default::default(), now(), 60).unwrap();
    assert_eq!(jsonwebtoken::decode_header(&t).unwrap().kid.as_deref(), Some(KEY_ID));
    assert_eq!(gateway.state.key_fetches.load(Ordering::SeqCst), 3);
    assert_eq!(identity.issued().len(), 1, "the Entra token is reused across key fetches");
}

// ---------------------------------------------------------------------------------------------
// The real handler binary.

fn entra_settings(gateway: &Gateway, identity_endpoint: &str) -> HashMap<&'static str, String> {
    let mut s = settings();
    s.insert("AzureSignalRConnectionString", gateway.connection_string("AuthType=azure.msi;Version=1.0"));
    s.insert("AzureSignalRSecondaryConnectionString", gateway.connection_string("AccessKey=upstream-check-key"));
    s.insert("IDENTITY_ENDPOINT", identity_endpoint.to_string());
    s.insert("IDENTITY_HEADER", IDENTITY_SECRET.to_string());
    s
}

async fn negotiate(h: &Handler) -> (u16, HeaderMap, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/negotiate", h.base))
        .bearer_auth(login("alice", &["admin"]))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

#[tokio::test]
async fn test_negotiate_signs_with_the_service_issued_key() {
    let identity = Identity::start(IDENTITY_SECRET, 3600).await;
    let gateway = Gateway::start().await;
    let h = Handler::start(&entra_settings(&gateway, &identity.endpoint()));

    // The key is fetched in the background right after start.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, _, body) = negotiate(&h).await;
        if status != 503 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{body}");
    let token = body["accessToken"].as_str().unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], KEY_ID);
    assert_eq!(header["alg"], "HS256");
    // Validated as the service does: signed with the key it issued, audience of the hub.
    let url = body["url"].as_str().unwrap();
    assert_eq!(url, format!("http://localhost:{}/client/?hub=meschainadminhub", gateway.addr.port()));
    let claims = meschain_signalr::token::validate(token, &[AccessKey::new(SERVICE_KEY)], 0, |aud| {
        meschain_signalr::audience::client_audience_matches(aud, "http://localhost", HUB)
    })
    .unwrap();
    assert_eq!(claims.user_id(), Some("alice"));

    // The key fetch carried the Entra token; one identity request served it.
    assert!(gateway.state.key_fetches.load(Ordering::SeqCst) >= 1);
    assert!(gateway.bearers().iter().all(|b| *b == format!("Bearer {ENTRA_TOKEN}")));
    assert_eq!(identity.issued().len(), 1);
    let logs = h.drain_output().join("\n");
    for secret in [ENTRA_TOKEN, SERVICE_KEY, IDENTITY_SECRET] {
        assert!(!logs.contains(secret), "a secret reached the log:\n{logs}");
    }
}

#[tokio::test]
async fn test_negotiate_is_503_until_a_key_is_issued() {
    let refused = common::RefusedPort::new();
    let closed = refused.port();
    let gateway = Gateway::start().await;
    let h = Handler::start(&entra_settings(&gateway, &format!("http://127.0.0.1:{closed}/msi/token")));
    // Asked after the first key fetch has failed (its log line), not after a fixed time.
    let lines = h.output_until("SignalR signing key refresh failed");
    assert!(lines.iter().any(|l| l.contains("negotiate answers 503")), "{lines:?}");
    let (status, headers, body) = negotiate(&h).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "signalr_unavailable", "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["cache-control"], "no-store");
    assert!(gateway.bearers().is_empty());
}

#[test]
fn test_incomplete_entra_settings_stop_the_handler() {
    let mut s = settings();
    s.insert("AzureSignalRConnectionString", "Endpoint=https://x.service.signalr.net;AuthType=azure.msi".into());
    s.remove("AzureSignalRSecondaryConnectionString");
    let (code, out) = common::start_failure(&s);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("AzureSignalRSecondaryConnectionString") && out.contains("AuthType"), "{out}");

    s.insert(
        "AzureSignalRConnectionString",
        "Endpoint=https://x.service.signalr.net;AuthType=azure.app;ClientId=c;TenantId=t;clientCert=/c.pem".into(),
    );
    let (code, out) = common::start_failure(&s);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("clientCert is not supported"), "{out}");
}
