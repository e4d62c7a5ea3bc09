//! Test-only helpers: the committed test key pairs, token minting, and a loopback JWKS
//! server that counts its requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
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

/// Claims valid for an hour for `sub`.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({"sub": sub, "iat": now, "nbf": now, "exp": now + 3600})
}

/// A JWKS (and discovery document) server on 127.0.0.1:0 whose key set can be changed and
/// whose JWKS requests are counted.
pub struct JwksServer {
    pub base: String,
    pub jwks_hits: Arc<AtomicUsize>,
    pub keys: Arc<Mutex<Value>>,
}

impl JwksServer {
    pub async fn start(keys: Value) -> Self {
        #[derive(Clone)]
        struct S {
            hits: Arc<AtomicUsize>,
            keys: Arc<Mutex<Value>>,
            base: String,
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = S { hits: Arc::new(AtomicUsize::new(0)), keys: Arc::new(Mutex::new(keys)), base: base.clone() };
        let app = Router::new()
            .route(
                "/jwks",
                get(|State(s): State<S>| async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    axum::Json(s.keys.lock().unwrap().clone())
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(|State(s): State<S>| async move {
                    axum::Json(json!({"issuer": s.base, "jwks_uri": format!("{}/jwks", s.base)}))
                }),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer { base, jwks_hits: state.hits, keys: state.keys }
    }

    pub fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }
}
