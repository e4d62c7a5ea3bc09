//! Test-only helpers: the committed test key pairs, their public JWKs, token signing, and a
//! loopback identity-provider stand-in (discovery document and JWKS) that counts its requests
//! and misbehaves on demand.
//!
//! One copy for the crate's tests: the `auth` module's unit tests use it as `auth::testing`, and
//! the integration tests include this same file as `common::auth` (`tests/common/mod.rs`), so the
//! key material, the JWK and token helpers and the JWKS server are written once. Each side uses
//! only part of it, hence `dead_code` allowed.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const RSA_A_KEY: &[u8] = include_bytes!("../../tests/fixtures/auth/test-only-rsa-a.key.pem");
pub const RSA_A_PUB: &[u8] = include_bytes!("../../tests/fixtures/auth/test-only-rsa-a.pub.pem");
pub const RSA_B_KEY: &[u8] = include_bytes!("../../tests/fixtures/auth/test-only-rsa-b.key.pem");
pub const EC_KEY: &[u8] = include_bytes!("../../tests/fixtures/auth/test-only-ec-p256.key.pem");

pub use meschain_model::clock::now_secs as now;

pub fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(if name == "b" { RSA_B_KEY } else { RSA_A_KEY }).unwrap()
}

pub fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_KEY).unwrap()
}

/// The public JWK of test RSA key `name` ("a" or "b") under `kid`.
pub fn rsa_jwk(name: &str, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&rsa(name), Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

pub fn ec_jwk(kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&ec(), Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `header.payload.signature` from raw JSON texts, HS256-signed by jsonwebtoken with `secret`:
/// for headers and claims a `Value` cannot express (duplicate keys, arrays, bad JSON).
pub fn hs256_token(header: &str, payload: &str, secret: &[u8]) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

/// Claims valid for an hour for `sub`.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({"sub": sub, "iat": now, "nbf": now, "exp": now + 3600})
}

/// `Authorization: Bearer {token}`.
pub fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

/// How a [`JwksServer`] endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Normal,
    /// Accepts the request and never answers.
    Hang,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 500.
    Error,
    /// A JSON body far above the size limit.
    Huge,
    /// Answers correctly after a delay (ms).
    Slow(u64),
}

/// An identity provider on 127.0.0.1:0: an OpenID discovery document at
/// `/.well-known/openid-configuration` naming `base` as issuer and `{base}/jwks` as its key set,
/// and the JWKS there. Both count their requests; the key set and the document can be changed,
/// and either endpoint made to misbehave.
#[derive(Clone)]
pub struct JwksServer {
    pub base: String,
    /// The JWKS served: replace it to rotate or revoke keys.
    pub keys: Arc<Mutex<Value>>,
    /// A discovery document served instead of the right one.
    pub discovery: Arc<Mutex<Option<Value>>>,
    pub jwks_mode: Arc<Mutex<Mode>>,
    pub discovery_mode: Arc<Mutex<Mode>>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = JwksServer {
            base: format!("http://{}", listener.local_addr().unwrap()),
            keys: Arc::new(Mutex::new(keys)),
            discovery: Arc::default(),
            jwks_mode: Arc::new(Mutex::new(Mode::Normal)),
            discovery_mode: Arc::new(Mutex::new(Mode::Normal)),
            jwks_hits: Arc::default(),
            discovery_hits: Arc::default(),
        };
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    /// JWKS requests so far.
    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// Discovery document requests so far.
    pub fn discovery_hits(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    pub fn set_jwks_mode(&self, mode: Mode) {
        *self.jwks_mode.lock().unwrap() = mode;
    }
}

async fn misbehave(mode: Mode, good: Value) -> Response {
    match mode {
        Mode::Normal => axum::Json(good).into_response(),
        Mode::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Mode::Garbage => "<html>not json</html>".into_response(),
        Mode::Error => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Huge => {
            let padding = "x".repeat(2 * 1024 * 1024);
            axum::Json(json!({"keys": [], "padding": padding})).into_response()
        }
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            axum::Json(good).into_response()
        }
    }
}

async fn discovery(State(s): State<JwksServer>) -> Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let doc =
        s.discovery.lock().unwrap().clone().unwrap_or_else(|| json!({"issuer": s.base, "jwks_uri": s.jwks_url()}));
    let mode = *s.discovery_mode.lock().unwrap();
    misbehave(mode, doc).await
}

async fn jwks(State(s): State<JwksServer>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let keys = s.keys.lock().unwrap().clone();
    let mode = *s.jwks_mode.lock().unwrap();
    misbehave(mode, keys).await
}
