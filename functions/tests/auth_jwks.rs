//! The JWKS cache against a real identity-provider stand-in (`common::auth::JwksServer`): an
//! axum server on 127.0.0.1:0 serving an OpenID discovery document and a JWKS, counting every
//! request, and able to misbehave (hang, answer garbage, fail) on demand.
//!
//! The refresh interval and the keys' age are stepped over with a `ManualClock`; the only real
//! waits left are the fetch timeout (a real timer bounding real I/O) and the provider's `Slow`
//! answers, which are what those tests are about.

mod common;

use std::time::{Duration, Instant};

use common::auth::{JwksServer, Mode, bearer, ec, ec_jwk, rsa, rsa_jwk, sign};
use jsonwebtoken::{Algorithm, EncodingKey};
use meschain_functions::auth::{AuthConfig, AuthError, Authenticator, JwksOptions, JwksSource};
use meschain_model::clock::{ManualClock, SharedClock};
use serde_json::{Value, json};

const AUD: &str = "meschain-realtime";

fn token(alg: Algorithm, kid: &str, key: &EncodingKey, iss: &str, sub: &str) -> String {
    let now = meschain_model::clock::now_secs();
    let claims = json!({"sub": sub, "iss": iss, "aud": AUD, "iat": now, "exp": now + 600, "roles": ["admin"]});
    sign(alg, Some(kid), key, &claims)
}

/// An RS256-shaped token with a bogus signature: the key lookup happens before any
/// signature check, and RSA signing 200 tokens in a debug build would take seconds.
fn unsigned_with_kid(kid: &str) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2ln", b64(json!({"alg": "RS256", "kid": kid})), b64(json!({"sub": "u", "exp": 9_999_999_999u64})))
}

fn options(min_refresh_ms: u64, timeout_ms: u64) -> JwksOptions {
    manual_options(min_refresh_ms, timeout_ms, &ManualClock::at_ms(1_000_000))
}

/// Options on `clock`, which the test moves.
fn manual_options(min_refresh_ms: u64, timeout_ms: u64, clock: &ManualClock) -> JwksOptions {
    JwksOptions {
        clock: SharedClock::new(clock.clone()),
        fetch_timeout: Duration::from_millis(timeout_ms),
        min_refresh_interval: Duration::from_millis(min_refresh_ms),
        ..JwksOptions::default()
    }
}

fn oidc(idp: &JwksServer, opts: JwksOptions) -> Authenticator {
    let config = AuthConfig {
        hs256_secret: None,
        jwks: Some(JwksSource::oidc_issuer(&idp.base).unwrap()),
        issuer: None,
        audience: Some(AUD.into()),
        trust_easy_auth: false,
        leeway_secs: 30,
    };
    Authenticator::with_options(config, opts)
}

fn direct(url: &str, opts: JwksOptions) -> Authenticator {
    let config = AuthConfig {
        hs256_secret: None,
        jwks: Some(JwksSource::url(url).unwrap()),
        issuer: None,
        audience: Some(AUD.into()),
        trust_easy_auth: false,
        leeway_secs: 30,
    };
    Authenticator::with_options(config, opts)
}

#[tokio::test]
async fn test_discovery_then_cached_keys_for_rs256_and_es256() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1"), ec_jwk("e1")]})).await;
    let auth = oidc(&idp, options(10_000, 2_000));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), &idp.base, "rsa-user");
    let es = token(Algorithm::ES256, "e1", &ec(), &idp.base, "ec-user");
    for _ in 0..20 {
        let id = auth.authenticate(&bearer(&rs)).await.unwrap();
        assert_eq!((id.user_id.as_str(), id.roles.as_slice()), ("rsa-user", &["admin".to_string()][..]));
        assert_eq!(auth.authenticate(&bearer(&es)).await.unwrap().user_id, "ec-user");
    }
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (1, 1));
}

#[tokio::test]
async fn test_cold_cache_concurrent_callers_share_one_fetch() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    idp.set_jwks_mode(Mode::Slow(300));
    let auth = direct(&idp.jwks_url(), options(10_000, 2_000));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (auth, rs) = (auth.clone(), rs.clone());
            tokio::spawn(async move { auth.authenticate(&bearer(&rs)).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn test_unknown_kid_refreshes_once_then_storm_is_rate_limited() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    let clock = ManualClock::at_ms(1_000_000);
    let auth = oidc(&idp, manual_options(500, 2_000, &clock));
    let r1 = token(Algorithm::RS256, "r1", &rsa("a"), &idp.base, "u");
    assert!(auth.authenticate(&bearer(&r1)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 1);

    // Rotation: a new key appears; the first token that uses it refreshes the cache once.
    clock.advance(Duration::from_millis(600));
    *idp.keys.lock().unwrap() = json!({"keys": [rsa_jwk("a", "r1"), rsa_jwk("b", "r2")]});
    let r2 = token(Algorithm::RS256, "r2", &rsa("b"), &idp.base, "rotated");
    assert_eq!(auth.authenticate(&bearer(&r2)).await.unwrap().user_id, "rotated");
    assert_eq!(idp.jwks_hits(), 2);
    assert!(auth.authenticate(&bearer(&r2)).await.is_ok());
    assert!(auth.authenticate(&bearer(&r1)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 2);

    // A storm of made-up kids, all at once and after the interval: one fetch, all refused.
    clock.advance(Duration::from_millis(600));
    let started = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let auth = auth.clone();
            let t = unsigned_with_kid(&format!("ghost-{i}"));
            tokio::spawn(async move { auth.authenticate(&bearer(&t)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(AuthError::UnknownKey));
    }
    assert_eq!(idp.jwks_hits(), 3, "200 unknown kids caused one fetch");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Sequential stragglers inside the interval fetch nothing.
    for i in 0..20 {
        let t = unsigned_with_kid(&format!("late-{i}"));
        assert_eq!(auth.authenticate(&bearer(&t)).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(idp.jwks_hits(), 3);
    // Discovery happened once for the whole run.
    assert_eq!(idp.discovery_hits(), 1);
}

#[tokio::test]
async fn test_hanging_key_source_fails_in_bounded_time() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    idp.set_jwks_mode(Mode::Hang);
    let auth = direct(&idp.jwks_url(), options(10_000, 400));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");

    let started = Instant::now();
    assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
    let first = started.elapsed();
    assert!(first >= Duration::from_millis(350) && first < Duration::from_secs(2), "{first:?}");

    // Within the interval, callers get the error at once instead of waiting again.
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
    }
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn test_hanging_discovery_fails_in_bounded_time() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    *idp.discovery_mode.lock().unwrap() = Mode::Hang;
    let auth = oidc(&idp, options(10_000, 400));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), &idp.base, "u");
    let started = Instant::now();
    assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(idp.jwks_hits(), 0);
}

#[tokio::test]
async fn test_garbage_answers_are_key_source_unavailable() {
    for mode in [Mode::Garbage, Mode::Error, Mode::Huge] {
        let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
        idp.set_jwks_mode(mode);
        let auth = direct(&idp.jwks_url(), options(10_000, 2_000));
        let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");
        let started = Instant::now();
        assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable), "{mode:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{mode:?}");
    }
    // A JWKS with no key we can use is garbage too.
    let idp = JwksServer::start(json!({"keys": [{"kty": "oct", "kid": "r1", "k": "c2VjcmV0"}]})).await;
    let auth = direct(&idp.jwks_url(), options(10_000, 2_000));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");
    assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
}

#[tokio::test]
async fn test_bad_discovery_documents_are_refused() {
    let cases = [
        json!({"issuer": "https://someone-else.example", "jwks_uri": "http://127.0.0.1:1/keys"}),
        json!({"issuer": "__BASE__", "jwks_uri": "http://keys.example.com/keys"}),
        json!({"issuer": "__BASE__"}),
    ];
    for case in cases {
        let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
        let doc: Value = serde_json::from_str(&case.to_string().replace("__BASE__", &idp.base)).unwrap();
        *idp.discovery.lock().unwrap() = Some(doc);
        let auth = oidc(&idp, options(10_000, 2_000));
        let rs = token(Algorithm::RS256, "r1", &rsa("a"), &idp.base, "u");
        assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable), "{case}");
        assert_eq!(idp.jwks_hits(), 0, "{case}");
    }
}

#[tokio::test]
async fn test_refused_connection_fails_fast_and_source_recovery_is_picked_up() {
    // A port with nobody listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/keys", listener.local_addr().unwrap());
    drop(listener);
    let auth = direct(&dead, options(10_000, 2_000));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");
    let started = Instant::now();
    assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
    assert!(started.elapsed() < Duration::from_secs(2));

    // A source that was failing is retried after the interval and then serves.
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    idp.set_jwks_mode(Mode::Error);
    let clock = ManualClock::at_ms(1_000_000);
    let auth = direct(&idp.jwks_url(), manual_options(300, 2_000, &clock));
    assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
    idp.set_jwks_mode(Mode::Normal);
    clock.advance(Duration::from_millis(299));
    assert_eq!(auth.authenticate(&bearer(&rs)).await, Err(AuthError::KeySourceUnavailable));
    clock.advance(Duration::from_millis(1));
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn test_stale_keys_are_refreshed_in_the_background_and_keep_serving() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    let clock = ManualClock::at_ms(1_000_000);
    let opts = JwksOptions { max_age: Duration::from_millis(300), ..manual_options(100, 2_000, &clock) };
    let auth = direct(&idp.jwks_url(), opts);
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 1);
    // Not yet stale: no fetch.
    clock.advance(Duration::from_millis(299));
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 1);

    // Once stale, a request is answered from the cache and triggers one background fetch.
    clock.advance(Duration::from_millis(1));
    idp.set_jwks_mode(Mode::Error);
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    wait_for(|| idp.jwks_hits() == 2).await;
    // The failed background fetch left the old keys in place.
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());

    // When the provider drops (revokes) the key, the next background refresh removes it.
    idp.set_jwks_mode(Mode::Normal);
    *idp.keys.lock().unwrap() = json!({"keys": [rsa_jwk("b", "r2")]});
    clock.advance(Duration::from_millis(100));
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    // The fetch is counted when the provider receives it; the keys are swapped in after its
    // answer, so wait for the outcome itself rather than for a fixed time.
    wait_for(|| idp.jwks_hits() == 3).await;
    let revoked = async {
        loop {
            match auth.authenticate(&bearer(&rs)).await {
                Ok(_) => tokio::task::yield_now().await,
                refused => return refused,
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(2), revoked).await.expect("the revoked key stops verifying");
    assert_eq!(outcome, Err(AuthError::UnknownKey));
    assert_eq!(idp.jwks_hits(), 3, "revocation came from the one background fetch");
}

#[tokio::test]
async fn test_caller_that_goes_away_does_not_cancel_the_fetch() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    idp.set_jwks_mode(Mode::Slow(300));
    let auth = direct(&idp.jwks_url(), options(10_000, 2_000));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), "any", "u");
    // The request future is dropped mid-fetch, as when a client hangs up.
    let abandoned = tokio::time::timeout(Duration::from_millis(50), auth.authenticate(&bearer(&rs))).await;
    assert!(abandoned.is_err());
    // The fetch goes on: the next caller queues behind it and uses its keys. Had it been
    // cancelled, that caller would find the attempt spent for the interval (10 s) and no keys.
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn test_warm_up_loads_keys_once() {
    let idp = JwksServer::start(json!({"keys": [rsa_jwk("a", "r1")]})).await;
    let auth = oidc(&idp, options(10_000, 2_000));
    auth.warm_up().await.unwrap();
    auth.warm_up().await.unwrap();
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (1, 1));
    let rs = token(Algorithm::RS256, "r1", &rsa("a"), &idp.base, "u");
    assert!(auth.authenticate(&bearer(&rs)).await.is_ok());
    assert_eq!(idp.jwks_hits(), 1);

    let idp = JwksServer::start(json!({"keys": []})).await;
    let auth = oidc(&idp, options(10_000, 2_000));
    assert_eq!(auth.warm_up().await, Err(AuthError::KeySourceUnavailable));
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 2 s");
}
