//! Each function run in-process with only its own dependencies (its `Deps`), no `AppState`:
//! a function's signature says what it needs, and a test of one function builds only that.
//! Every `Deps` here carries a `ManualClock` set in the past, and each test checks that what
//! the function dated (a token's `iat`, an analytics event, a snapshot's `generatedAt`, the
//! validity of an order window) follows that clock, not the machine's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use meschain_functions::auth::{AuthConfig, Authenticator, Secret};
use meschain_functions::client_tokens::ClientTokenSigner;
use meschain_functions::cors::CorsPolicy;
use meschain_functions::dashboard::Snapshots;
use meschain_functions::functions::connection_events::upstream::UpstreamKeys;
use meschain_functions::functions::{admin_broadcast, connection_events, marketplace_sync, negotiate};
use meschain_functions::signalr_rest::retry::RetryPolicy;
use meschain_functions::signalr_rest::{Endpoint, SignalRRest};
use meschain_functions::sync_runtime::{SyncRuntime, SyncSettings};
use meschain_functions_protocol::{Context, HttpRequest, InvocationRequest};
use meschain_model::clock::{self, Clock, ManualClock};
use meschain_signalr::upstream::sign;
use meschain_signalr::{AccessKey, ConnectionString};
use meschain_signalr_service::{Config, RunningService};
use meschain_store::{EventKind, Recorder, RecorderConfig, Store, StoreSettings};
use serde_json::{Value, json};

const KEY: &str = "one-function-test-access-key";
const JWT_SECRET: &str = "one-function-test-login-secret-0123456789";
const HOUR_MS: u64 = 3_600_000;

/// What most functions' deps are made of, built here for one test.
struct Parts {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    /// Written only when the test flushes it.
    recorder: Recorder,
    /// An hour behind the machine's clock: events it dates are counted from its time, and a
    /// machine-dated one would land an hour later.
    manual: ManualClock,
    clock: Arc<dyn Clock>,
}

async fn parts() -> Parts {
    let dir = tempfile::tempdir().unwrap();
    let store = meschain_store::open(&StoreSettings::embedded(dir.path())).await.unwrap();
    let recorder = Recorder::unstarted(store.clone(), RecorderConfig::default());
    let manual = ManualClock::at_ms(clock::now_ms() - HOUR_MS);
    Parts { _dir: dir, store, recorder, clock: Arc::new(manual.clone()), manual }
}

/// Events of `kind` dated exactly at `at` (none after).
async fn events_at(store: &dyn Store, recorder: &Recorder, kind: EventKind, at: u64) -> u64 {
    recorder.flush().await.unwrap();
    let from = store.count_events(Some(kind), at).await.unwrap();
    let after = store.count_events(Some(kind), at + 1).await.unwrap();
    assert_eq!(after, 0, "{kind:?} dated after the deps' clock");
    from
}

fn connection(port: u16) -> ConnectionString {
    format!("Endpoint=http://localhost;Port={port};AccessKey={KEY};Version=1.0;").parse().unwrap()
}

/// A REST client for the SignalR instance on `port`, giving up fast (one attempt).
fn rest(port: u16) -> Arc<SignalRRest> {
    let policy = RetryPolicy {
        max_attempts: 1,
        attempt_timeout: Duration::from_secs(2),
        budget: Duration::from_secs(2),
        ..RetryPolicy::default()
    };
    Arc::new(SignalRRest::new(vec![Endpoint::new(connection(port), &AccessKey::new(KEY))], policy))
}

async fn signalr_service() -> RunningService {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config { access_keys: vec![AccessKey::new(KEY)], ..Config::default() };
    meschain_signalr_service::start(config, listener).await.unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn request(method: Method, headers: &[(&str, String)], body: &[u8]) -> HttpRequest {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    HttpRequest { method, query: vec![], headers: map, body: Bytes::copy_from_slice(body) }
}

fn envelope(data: Value, metadata: Value) -> InvocationRequest {
    InvocationRequest::parse(json!({ "Data": data, "Metadata": metadata }).to_string().as_bytes()).unwrap()
}

/// negotiate: identity verifier, CORS policy, token minter, recorder, clock. No store reads,
/// no SignalR REST client, no other function's state.
#[tokio::test]
async fn test_negotiate_with_its_deps_only() {
    let Parts { _dir, store, recorder, manual, clock } = parts().await;
    let identity = Authenticator::new(AuthConfig {
        hs256_secret: Some(Secret::new(JWT_SECRET)),
        jwks: None,
        issuer: None,
        audience: None,
        trust_easy_auth: false,
        leeway_secs: 30,
    });
    let tokens = negotiate::TokenMinter {
        connection: connection(8888),
        signer: ClientTokenSigner::fixed(&AccessKey::new(KEY)),
        lifetime_secs: 600,
    };
    let deps = negotiate::Deps::new(CorsPolicy::default(), identity, tokens, recorder.clone(), no_sync(), clock);

    // The login token's own expiry is the authenticator's business (checked on the machine's clock).
    let now = clock::now_secs();
    let login = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "alice", "roles": ["admin"], "iat": now, "exp": now + 600 }),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let req = request(Method::POST, &[("authorization", format!("Bearer {login}"))], b"");
    let resp = negotiate::run(&deps, &mut Context::enveloped("1".into(), "negotiate"), &req).await;
    assert_eq!(resp.status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(body["url"], "http://localhost:8888/client/?hub=meschainadminhub");

    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["http://localhost/client/?hub=meschainadminhub"]);
    v.validate_exp = false; // dated an hour ago by the manual clock, so already expired
    let claims = jsonwebtoken::decode::<Value>(
        body["accessToken"].as_str().unwrap(),
        &DecodingKey::from_secret(KEY.as_bytes()),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["asrs.s.uid"], "alice");
    assert_eq!(claims["iat"], manual.now_secs(), "minted at the deps' clock");
    assert_eq!(claims["exp"], manual.now_secs() + 600);
    assert_eq!(events_at(&*store, &recorder, EventKind::Negotiated, manual.now_ms()).await, 1);

    let unsigned = request(Method::POST, &[], b"");
    let resp = negotiate::run(&deps, &mut Context::enveloped("2".into(), "negotiate"), &unsigned).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(events_at(&*store, &recorder, EventKind::NegotiateFailed, manual.now_ms()).await, 1);
}

/// admin-broadcast: the snapshot's sources (store, SignalR health, recorder, secrets), the
/// REST sender, the recorder, the clock. No identity, no upstream keys, no connectors.
#[tokio::test]
async fn test_admin_broadcast_with_its_deps_only() {
    let svc = signalr_service().await;
    let Parts { _dir, store, recorder, manual, clock } = parts().await;
    let started = manual.now_ms() - 42_000;
    let rest = rest(svc.local_addr().port());
    let secrets = meschain_secrets::Secrets::empty();
    let snapshots =
        Arc::new(Snapshots::new(store.clone(), rest.clone(), recorder.clone(), secrets, started, "TRY".into()));
    let deps = admin_broadcast::Deps::new(snapshots.clone(), rest, recorder.clone(), clock.clone());

    let built = snapshots.build(manual.now_ms()).await;
    assert!(built.store_error.is_none());
    assert_eq!(built.snapshot["generatedAt"], clock::rfc3339_millis(manual.now_ms()));
    assert_eq!(built.snapshot["uptimeSeconds"], 42);
    assert_eq!(built.snapshot["health"]["signalr"]["status"], "healthy");
    assert_eq!(built.snapshot["business"]["currency"], "TRY");

    let tick = envelope(json!({ "timer": { "IsPastDue": false } }), json!({}));
    let mut ctx = Context::enveloped("1".into(), "admin-broadcast");
    admin_broadcast::run(&deps, &mut ctx, &tick).await.unwrap();
    assert_eq!(events_at(&*store, &recorder, EventKind::BroadcastSent, manual.now_ms()).await, 1);

    // With SignalR gone the tick fails, and says so in analytics.
    svc.shutdown().await;
    let mut ctx = Context::enveloped("2".into(), "admin-broadcast");
    let failure = admin_broadcast::run(&deps, &mut ctx, &tick).await.unwrap_err();
    assert!(format!("{failure:?}").contains("SignalR service unreachable"), "{failure:?}");
    assert_eq!(events_at(&*store, &recorder, EventKind::Error, manual.now_ms()).await, 1);
}

/// connection-events: upstream keys, the hub methods' REST client, store and snapshot, the
/// recorder, the clock. No identity verifier, no token minter, no connectors.
#[tokio::test]
async fn test_connection_events_with_its_deps_only() {
    let Parts { _dir, store, recorder, manual, clock } = parts().await;
    // A connect touches no SignalR REST call: a closed port proves none is made.
    let rest = rest(closed_port());
    let secrets = meschain_secrets::Secrets::empty();
    let snapshots =
        Arc::new(Snapshots::new(store.clone(), rest.clone(), recorder.clone(), secrets, manual.now_ms(), "TRY".into()));
    let keys = UpstreamKeys::fixed([AccessKey::new(KEY)]);
    let deps = connection_events::Deps::new(keys, rest, store.clone(), snapshots, no_sync(), recorder.clone(), clock);

    let headers = |signature: String| {
        vec![
            ("content-type", "application/json".to_string()),
            ("x-asrs-connection-id", "c1".into()),
            ("x-asrs-hub", "meschaindashboardhub".into()),
            ("x-asrs-category", "connections".into()),
            ("x-asrs-event", "connected".into()),
            ("x-asrs-signature", signature),
            ("x-asrs-user-id", "alice".into()),
        ]
    };
    let forged = request(Method::POST, &headers(sign("c1", &[AccessKey::new("other")])), b"{}");
    let resp = connection_events::run(&deps, &mut Context::forwarded("1".into(), "connection-events"), &forged).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);

    let signed = request(Method::POST, &headers(sign("c1", &[AccessKey::new(KEY)])), b"{}");
    let resp = connection_events::run(&deps, &mut Context::forwarded("2".into(), "connection-events"), &signed).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(events_at(&*store, &recorder, EventKind::Connected, manual.now_ms()).await, 1);
    let totals = meschain_store::presence::totals(&*store).await.unwrap();
    assert_eq!(totals.hub("MesChainDashboardHub").connections, 1);
}

/// marketplace-sync: its connectors (the sandbox here), the store, the REST client for
/// progress and alerts, the recorder, the clock. No identity, no upstream keys, no snapshot.
#[tokio::test]
async fn test_marketplace_sync_with_its_deps_only() {
    let svc = signalr_service().await;
    let Parts { _dir, store, recorder, manual, clock } = parts().await;
    let settings = Arc::new(|k: &str| (k == "MARKETPLACE_SANDBOX").then(|| "n11".to_string()));
    let sync = SyncSettings { budget: Duration::from_secs(60), lease_ttl: Duration::from_secs(30), ..no_settings() };
    let runtime = Arc::new(SyncRuntime::new(settings, sync));
    let deps =
        marketplace_sync::Deps::new(runtime, store.clone(), recorder.clone(), rest(svc.local_addr().port()), clock);

    // An order window starting 10 minutes after the deps' clock is "in the future" for it
    // (the machine's clock, an hour ahead, would accept it).
    let since = clock::rfc3339_millis(manual.now_ms() + 10 * 60_000);
    let message = |id: &str| {
        let body = json!({ "marketplace": "n11", "operation": "orders", "since": since, "requestedBy": "ops" });
        envelope(json!({ "message": body }), json!({ "MessageId": id, "DeliveryCount": 1 }))
    };
    let mut ctx = Context::enveloped("1".into(), "marketplace-sync");
    let failure = marketplace_sync::run(&deps, &mut ctx, &message("m1")).await.unwrap_err();
    assert!(format!("{failure:?}").contains("is in the future"), "{failure:?}");
    assert_eq!(events_at(&*store, &recorder, EventKind::SyncFailed, manual.now_ms()).await, 1);

    // Once the deps' clock has moved past it, the same window is valid and the sandbox syncs.
    manual.advance(Duration::from_secs(20 * 60));
    let mut ctx = Context::enveloped("2".into(), "marketplace-sync");
    marketplace_sync::run(&deps, &mut ctx, &message("m2")).await.unwrap();
    assert_eq!(events_at(&*store, &recorder, EventKind::SyncStarted, manual.now_ms()).await, 1);
    svc.shutdown().await;
}

/// The sync settings of an app with nothing configured.
fn no_settings() -> SyncSettings {
    SyncSettings::from_lookup(&|_: &str| None).expect("defaults are valid")
}

/// A sync runtime with no connector and no catalogue (the snapshot reports the catalogue off).
fn no_sync() -> Arc<SyncRuntime> {
    Arc::new(SyncRuntime::new(Arc::new(|_: &str| None), no_settings()))
}
