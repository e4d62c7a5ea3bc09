//! Access tokens: HS256 JWTs keyed with the UTF-8 bytes of an access key.
//!
//! Minting follows the official SDK (https://github.com/Azure/azure-signalr, `AuthUtility.cs`): claims first, then `nbf`, `exp`,
//! `iat`, `aud`; user id in `asrs.s.uid` and `nameid`; repeated claim types as arrays.
//! Validation is what the service does (§C.4): signature with any configured key, `exp`
//! enforced, audience compared leniently by the caller-supplied rule.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::AccessKey;

/// Tokens longer than this are refused by the SDK (`AzureSignalRAccessTokenTooLongException`)
/// and break browsers that put them in a query string.
pub const MAX_TOKEN_LENGTH: usize = 4096;

/// The SDK's default lifetime for client tokens.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;

/// The claim carrying the user id for the service.
pub const USER_ID_CLAIM: &str = "asrs.s.uid";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("access token would be {0} characters, above the {MAX_TOKEN_LENGTH}-character limit")]
    TooLong(usize),
    #[error("could not sign access token")]
    Signing,
    /// A user id or role the service could not pass on intact ([`carries_intact`]).
    #[error("a user id or role contains a control character or \", \"")]
    UnsafeClaim,
}

/// Whether the service can pass `value` on intact as a user id or claim value. It writes the
/// user id into the `X-ASRS-User-Id` header, where CR, LF or NUL cannot appear, and all claims
/// into `X-ASRS-User-Claims` as `type: value, type: value`, a format with no escaping: a
/// value holding `, ` would read as a further claim (`eve, role: admin`).
pub fn carries_intact(value: &str) -> bool {
    !value.chars().any(char::is_control) && !value.contains(", ")
}

/// What a client token says about the caller.
#[derive(Debug, Clone, Default)]
pub struct ClientClaims<'a> {
    pub user_id: Option<&'a str>,
    /// Forwarded to upstream in `X-ASRS-User-Claims`; the service itself ignores them.
    pub roles: &'a [String],
}

#[derive(Serialize)]
struct ClientPayload<'a> {
    #[serde(rename = "asrs.s.uid", skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Roles<'a>>,
    nbf: u64,
    exp: u64,
    iat: u64,
    aud: &'a str,
}

/// .NET serialises one claim of a type as a string and several as an array.
#[derive(Serialize)]
#[serde(untagged)]
enum Roles<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// A signing key ready for repeated use on a hot path (a client token per negotiate).
///
/// Signed here with hmac/sha2 rather than `jsonwebtoken::encode`, which keys a new HMAC (two
/// SHA-256 blocks of key padding) and encodes the same header again for every token: the
/// HMAC is keyed once and the header encoded once. The tokens are byte for byte those
/// jsonwebtoken makes (a test compares them).
pub struct SigningKey {
    mac: Hmac<Sha256>,
    /// `base64url(header).`: what every token starts with.
    header: String,
}

/// The JOSE header, in jsonwebtoken's field order.
#[derive(Serialize)]
struct JoseHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// Length of `n` bytes in unpadded base64.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// An HS256 signature in unpadded base64.
const SIGNATURE_LEN: usize = base64_len(32);

impl SigningKey {
    pub fn hs256(key: &AccessKey) -> Self {
        Self::new(key, None)
    }

    /// A key the service identifies by `kid`: the signing keys it issues to Entra ID callers
    /// (https://learn.microsoft.com/azure/azure-signalr/signalr-concept-client-negotiation) are only found again through the `KeyId` they came with.
    pub fn hs256_with_kid(key: &AccessKey, kid: &str) -> Self {
        Self::new(key, Some(kid))
    }

    fn new(key: &AccessKey, kid: Option<&str>) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
        let json = serde_json::to_vec(&JoseHeader { typ: "JWT", alg: "HS256", kid })
            .expect("a struct of strings always serialises");
        let mut header = URL_SAFE_NO_PAD.encode(json);
        header.push('.');
        SigningKey { mac, header }
    }

    /// Mints a client access token for `audience` (see [`crate::ConnectionString::client_audience`]).
    pub fn client_token(
        &self,
        audience: &str,
        claims: &ClientClaims<'_>,
        now: u64,
        lifetime_secs: u64,
    ) -> Result<String, MintError> {
        if !claims.user_id.is_none_or(carries_intact) || !claims.roles.iter().all(|r| carries_intact(r)) {
            return Err(MintError::UnsafeClaim);
        }
        let role = match claims.roles {
            [] => None,
            [one] => Some(Roles::One(one)),
            many => Some(Roles::Many(many)),
        };
        let payload = ClientPayload {
            uid: claims.user_id,
            nameid: claims.user_id,
            role,
            nbf: now,
            exp: now.saturating_add(lifetime_secs),
            iat: now,
            aud: audience,
        };
        self.sign(&payload)
    }

    /// Mints a token for one REST API call. `audience` is the request URL as the SDK builds it.
    pub fn rest_token(&self, audience: &str, now: u64, lifetime_secs: u64) -> Result<String, MintError> {
        #[derive(Serialize)]
        struct RestPayload<'a> {
            nbf: u64,
            exp: u64,
            iat: u64,
            aud: &'a str,
        }
        self.sign(&RestPayload { nbf: now, exp: now.saturating_add(lifetime_secs), iat: now, aud: audience })
    }

    fn sign<T: Serialize>(&self, payload: &T) -> Result<String, MintError> {
        let payload = serde_json::to_vec(payload).map_err(|_| MintError::Signing)?;
        let len = self.header.len() + base64_len(payload.len()) + 1 + SIGNATURE_LEN;
        if len > MAX_TOKEN_LENGTH {
            return Err(MintError::TooLong(len));
        }
        let mut token = String::with_capacity(len);
        token.push_str(&self.header);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        debug_assert_eq!(token.len(), len);
        Ok(token)
    }
}

/// Why a presented token was refused. The messages are the ASP.NET JwtBearer
/// `error_description`s the real service sends in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("The token is malformed")]
    Malformed,
    #[error("The signature is invalid")]
    InvalidSignature,
    #[error("The token is expired")]
    Expired,
    #[error("The audience is invalid")]
    InvalidAudience,
    #[error("The signing algorithm is not allowed")]
    InvalidAlgorithm,
}

/// The claims of a validated token.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidatedClaims {
    #[serde(default)]
    pub aud: Option<Value>,
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

impl ValidatedClaims {
    /// The user id as the service resolves it: `asrs.s.uid` > `nameid` > `sub` (§B.4).
    pub fn user_id(&self) -> Option<&str> {
        [USER_ID_CLAIM, "nameid", "sub"].iter().find_map(|name| match self.other.get(*name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
            Some(Value::Array(items)) => items.first().and_then(Value::as_str).filter(|s| !s.is_empty()),
            _ => None,
        })
    }

    /// Every claim as `(type, value)` pairs, arrays flattened, in token order; system
    /// timestamps and `aud` excluded. This is what upstream gets in `X-ASRS-User-Claims`.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in &self.other {
            if matches!(name.as_str(), "nbf" | "iat") {
                continue;
            }
            match value {
                Value::Array(items) => out.extend(items.iter().map(|v| (name.clone(), scalar(v)))),
                v => out.push((name.clone(), scalar(v))),
            }
        }
        out
    }

    pub fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Validates a token the way the service does: HS256 or HS512 signed with one of `keys`,
/// not expired (`leeway_secs` of clock skew allowed), and an audience that `audience_ok` accepts.
pub fn validate(
    token: &str,
    keys: &[AccessKey],
    leeway_secs: u64,
    audience_ok: impl Fn(&str) -> bool,
) -> Result<ValidatedClaims, ValidationError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| ValidationError::Malformed)?;
    if !matches!(header.alg, Algorithm::HS256 | Algorithm::HS512) {
        return Err(ValidationError::InvalidAlgorithm);
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = leeway_secs;
    validation.validate_aud = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp"]);
    let mut last = ValidationError::InvalidSignature;
    for key in keys {
        match jsonwebtoken::decode::<ValidatedClaims>(token, &DecodingKey::from_secret(key.as_bytes()), &validation) {
            Ok(data) => {
                let claims = data.claims;
                if !claims.audiences().into_iter().any(&audience_ok) {
                    return Err(ValidationError::InvalidAudience);
                }
                return Ok(claims);
            }
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                last = match e.kind() {
                    ErrorKind::InvalidSignature => ValidationError::InvalidSignature,
                    ErrorKind::ExpiredSignature => return Err(ValidationError::Expired),
                    ErrorKind::MissingRequiredClaim(_) => return Err(ValidationError::Malformed),
                    _ => ValidationError::Malformed,
                };
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const NOW: u64 = 1_700_000_000;

    fn key(s: &str) -> AccessKey {
        AccessKey::new(s)
    }

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn test_client_token_claims_and_order() {
        let roles = vec!["admin".to_string()];
        let t = SigningKey::hs256(&key("k"))
            .client_token("https://x/client/?hub=h", &ClientClaims { user_id: Some("alice"), roles: &roles }, NOW, 3600)
            .unwrap();
        let part = t.split('.').nth(1).unwrap();
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        assert_eq!(
            raw,
            r#"{"asrs.s.uid":"alice","nameid":"alice","role":"admin","nbf":1700000000,"exp":1700003600,"iat":1700000000,"aud":"https://x/client/?hub=h"}"#
        );
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
    }

    /// The hand-signed tokens are the ones jsonwebtoken makes: the same header, and the same
    /// signature over header and payload, with and without `kid`, for keys shorter and longer
    /// than a SHA-256 block (HMAC hashes long keys first). The payload's field order is
    /// pinned by `test_client_token_claims_and_order`.
    #[test]
    fn test_tokens_are_those_jsonwebtoken_makes() {
        let roles = vec!["admin".to_string(), "ops".to_string()];
        let claims = ClientClaims { user_id: Some("çağrı"), roles: &roles };
        for secret in ["k", &"x".repeat(64), &"long key ".repeat(20)] {
            for kid in [None, Some("key-7")] {
                let signer = match kid {
                    Some(kid) => SigningKey::hs256_with_kid(&key(secret), kid),
                    None => SigningKey::hs256(&key(secret)),
                };
                let mut header = Header::new(Algorithm::HS256);
                header.typ = Some("JWT".into());
                header.kid = kid.map(str::to_string);
                let expected_header = jsonwebtoken::encode(&header, &(), &EncodingKey::from_secret(b"-")).unwrap();
                let client = signer.client_token("https://x/client/?hub=h", &claims, NOW, 60).unwrap();
                let rest = signer.rest_token("https://x/api/hubs/h", NOW, 60).unwrap();
                for token in [client, rest] {
                    let (message, signature) = token.rsplit_once('.').unwrap();
                    assert_eq!(message.split('.').next(), expected_header.split('.').next());
                    let theirs = jsonwebtoken::crypto::sign(
                        message.as_bytes(),
                        &EncodingKey::from_secret(secret.as_bytes()),
                        Algorithm::HS256,
                    )
                    .unwrap();
                    assert_eq!(signature, theirs, "secret of {} bytes, kid {kid:?}", secret.len());
                }
            }
        }
    }

    #[test]
    fn test_kid_goes_in_the_header() {
        let t = SigningKey::hs256_with_kid(&key("k"), "key-7")
            .client_token("a", &ClientClaims::default(), NOW, 10)
            .unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid.as_deref(), Some("key-7"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let plain = SigningKey::hs256(&key("k")).rest_token("a", NOW, 10).unwrap();
        assert!(jsonwebtoken::decode_header(&plain).unwrap().kid.is_none());
    }

    #[test]
    fn test_several_roles_become_an_array() {
        let roles = vec!["admin".to_string(), "super_admin".to_string()];
        let t = SigningKey::hs256(&key("k"))
            .client_token("a", &ClientClaims { user_id: None, roles: &roles }, NOW, 10)
            .unwrap();
        assert_eq!(payload(&t)["role"], serde_json::json!(["admin", "super_admin"]));
        assert!(payload(&t).get("asrs.s.uid").is_none());
    }

    #[test]
    fn test_too_long_is_refused() {
        let roles: Vec<String> = (0..400).map(|i| format!("role-{i}")).collect();
        let err = SigningKey::hs256(&key("k"))
            .client_token("a", &ClientClaims { user_id: Some("u"), roles: &roles }, NOW, 10)
            .unwrap_err();
        assert!(matches!(err, MintError::TooLong(n) if n > MAX_TOKEN_LENGTH));
    }

    /// The probe's finding: such values were minted as is, breaking `X-ASRS-User-Id` or
    /// adding a claim to `X-ASRS-User-Claims`.
    #[test]
    fn test_values_the_service_cannot_carry_are_refused() {
        let signer = SigningKey::hs256(&key("k"));
        for bad in ["eve\r\nx-injected: 1", "eve\0", "eve\u{1b}", "eve, role: admin"] {
            let id = ClientClaims { user_id: Some(bad), roles: &[] };
            assert_eq!(signer.client_token("a", &id, NOW, 10), Err(MintError::UnsafeClaim), "{bad:?}");
            let roles = vec!["viewer".to_string(), bad.to_string()];
            let role = ClientClaims { user_id: Some("eve"), roles: &roles };
            assert_eq!(signer.client_token("a", &role, NOW, 10), Err(MintError::UnsafeClaim), "{bad:?}");
        }
        for good in ["eve", "Doe,Jane", "a:b", "user@example.com", "ünïcode name"] {
            assert!(carries_intact(good), "{good:?}");
        }
    }

    use meschain_model::clock::now_secs as now;

    #[test]
    fn test_validate_roundtrip_with_second_key() {
        let t = SigningKey::hs256(&key("secondary"))
            .client_token("aud1", &ClientClaims { user_id: Some("bob"), roles: &[] }, now(), 60)
            .unwrap();
        let claims = validate(&t, &[key("primary"), key("secondary")], 0, |a| a == "aud1").unwrap();
        assert_eq!(claims.user_id(), Some("bob"));
        assert!(claims.pairs().contains(&("asrs.s.uid".to_string(), "bob".to_string())));
    }

    #[test]
    fn test_validate_failures() {
        let signer = SigningKey::hs256(&key("k"));
        let good = signer.client_token("aud", &ClientClaims::default(), now(), 60).unwrap();
        assert_eq!(validate(&good, &[key("other")], 0, |_| true).unwrap_err(), ValidationError::InvalidSignature);
        assert_eq!(validate(&good, &[key("k")], 0, |a| a == "x").unwrap_err(), ValidationError::InvalidAudience);
        let expired = signer.client_token("aud", &ClientClaims::default(), now() - 7200, 60).unwrap();
        assert_eq!(validate(&expired, &[key("k")], 5, |_| true).unwrap_err(), ValidationError::Expired);
        assert_eq!(validate("garbage", &[key("k")], 0, |_| true).unwrap_err(), ValidationError::Malformed);
        assert_eq!(validate("a.b.c", &[key("k")], 0, |_| true).unwrap_err(), ValidationError::Malformed);
        // alg:none is refused before any key is tried.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(format!(r#"{{"aud":"aud","exp":{}}}"#, now() + 60));
        let unsigned = format!("{none_header}.{body}.");
        assert!(validate(&unsigned, &[key("k")], 0, |_| true).is_err());
    }

    #[test]
    fn test_hs512_and_sub_fallback() {
        let header = Header::new(Algorithm::HS512);
        let claims = serde_json::json!({"sub": "carol", "aud": "a", "exp": now() + 60});
        let t = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"k")).unwrap();
        let c = validate(&t, &[key("k")], 0, |_| true).unwrap();
        assert_eq!(c.user_id(), Some("carol"));
    }

    #[test]
    fn test_missing_exp_is_malformed() {
        let claims = serde_json::json!({"aud": "a"});
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"k")).unwrap();
        assert_eq!(validate(&t, &[key("k")], 0, |_| true).unwrap_err(), ValidationError::Malformed);
    }
}
