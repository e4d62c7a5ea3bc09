//! HS256 login tokens, verified with hmac/sha2 directly: the check every negotiate makes.
//!
//! Why not `jsonwebtoken::decode`, which the RS256/ES256 path still uses (`jwt.rs`): for each
//! token it keys a new HMAC (two SHA-256 blocks of key padding), reads the header twice and the
//! claims twice (once for its own checks, once for ours). Here the HMAC is keyed once per
//! secret and cloned, the header is read once for `alg` alone, and the claims once, into one
//! struct that holds both what is validated and what makes the identity. On the negotiate
//! benchmark verification fell from 14.5 % to 8.1 % of the handler's samples (README,
//! Performance).
//!
//! What a token must satisfy is jsonwebtoken 10's validation as `jwt::validation` configures
//! it, outcome for outcome (`test_hs256_outcomes_are_jsonwebtokens` in `mod.rs` runs both on
//! the same tokens):
//! - three base64url parts; the header is a JSON object whose `alg` is `HS256` (any other,
//!   including `none`, is a disallowed algorithm); other header fields are not read (the one
//!   difference: jsonwebtoken also refuses a header whose `kid` or `typ` is not a string);
//! - the signature, compared in constant time, over the first two parts as sent;
//! - the claims a JSON object; `exp` required, a non-negative number (a fraction is rounded),
//!   past `now - leeway` means expired; `nbf`, if present, a number, after `now + leeway`
//!   means not yet valid; `iss` and `aud`, when configured, a string or an array of strings
//!   one of which matches;
//! - duplicate claims, an array or object as `sub`, and a non-empty one as `exp` or `nbf`
//!   make the token malformed (an empty one reads as an unreadable number: jsonwebtoken's
//!   reader recovers from those and not from the others).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use sha2::Sha256;

use super::claims::{Claim, identity};
use super::{AuthError, Identity};

/// An HS256 secret with its HMAC keyed, cloned for each token.
pub struct Hs256Key(Hmac<Sha256>);

impl Hs256Key {
    pub fn new(secret: &[u8]) -> Self {
        Hs256Key(Hmac::new_from_slice(secret).expect("HMAC takes any key length"))
    }

    /// Whether `signature` is this key's over `message`, in constant time.
    fn signed(&self, message: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    }
}

// The keyed HMAC state is derived from the secret: never printed.
impl fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hs256Key(..)")
    }
}

/// What the claims of an HS256 token must satisfy.
#[derive(Debug, Clone)]
pub struct Rules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_secs: u64,
}

/// Verifies `token` with `key` at `now` (seconds since the epoch) and builds the identity.
pub fn verify(token: &str, key: &Hs256Key, rules: &Rules, now: u64) -> Result<Identity, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    // What the signature covers: the first two parts as sent.
    let message = &token[..header.len() + 1 + payload.len()];
    let header = decode(header)?;
    let header: Header<'_> = serde_json::from_slice(object(&header)?).map_err(|_| AuthError::Malformed)?;
    if header.alg != "HS256" {
        return Err(AuthError::DisallowedAlgorithm);
    }
    let signature = decode(signature)?;
    if !key.signed(message.as_bytes(), &signature) {
        return Err(AuthError::InvalidSignature);
    }
    let payload = decode(payload)?;
    let claims: Claims = serde_json::from_slice(object(&payload)?).map_err(|_| AuthError::Malformed)?;
    claims.validate(rules, now)?;
    identity(claims.sub.0, claims.roles, claims.role)
}

fn decode(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| AuthError::Malformed)
}

/// `json` if it holds an object: serde reads a struct from an array too (`["HS256"]`).
fn object(json: &[u8]) -> Result<&[u8], AuthError> {
    match json.trim_ascii_start().first() {
        Some(b'{') => Ok(json),
        _ => Err(AuthError::Malformed),
    }
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Subject,
    #[serde(default)]
    roles: Claim,
    #[serde(default)]
    role: Claim,
    #[serde(default)]
    exp: NumericDate,
    #[serde(default)]
    nbf: NumericDate,
    #[serde(default)]
    iss: Claim,
    #[serde(default)]
    aud: Claim,
}

impl Claims {
    fn validate(&self, rules: &Rules, now: u64) -> Result<(), AuthError> {
        let NumericDate::Value(exp) = self.exp else { return Err(AuthError::MissingExpiry) };
        if rules.issuer.is_some() && self.iss.names().is_none() {
            return Err(AuthError::WrongIssuer);
        }
        if rules.audience.is_some() && self.aud.names().is_none() {
            return Err(AuthError::WrongAudience);
        }
        if self.nbf == NumericDate::Unreadable {
            return Err(AuthError::Malformed);
        }
        if exp < now.saturating_sub(rules.leeway_secs) {
            return Err(AuthError::Expired);
        }
        if let NumericDate::Value(nbf) = self.nbf
            && nbf > now.saturating_add(rules.leeway_secs)
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(issuer) = &rules.issuer
            && !self.iss.names().is_some_and(|mut names| names.any(|n| n == issuer))
        {
            return Err(AuthError::WrongIssuer);
        }
        if let Some(audience) = &rules.audience
            && !self.aud.names().is_some_and(|mut names| names.any(|n| n == audience))
        {
            return Err(AuthError::WrongAudience);
        }
        Ok(())
    }
}

/// `exp` or `nbf`: seconds since the epoch. Another scalar is unreadable; an array or object
/// falls to the visitor's default `visit_seq`/`visit_map`, an error: a malformed token.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum NumericDate {
    #[default]
    Absent,
    Unreadable,
    Value(u64),
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumericDateVisitor)
    }
}

struct NumericDateVisitor;

impl<'de> Visitor<'de> for NumericDateVisitor {
    type Value = NumericDate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("seconds since the epoch")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
        Ok(NumericDate::Value(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
        // Rounded, as jsonwebtoken does; the cast is exact for every value in range.
        Ok(if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 {
            NumericDate::Value(v.round() as u64)
        } else {
            NumericDate::Unreadable
        })
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<NumericDate, E> {
        Ok(NumericDate::Unreadable)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<NumericDate, E> {
        Ok(NumericDate::Unreadable)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<NumericDate, E> {
        Ok(NumericDate::Unreadable)
    }
    fn visit_unit<E: de::Error>(self) -> Result<NumericDate, E> {
        Ok(NumericDate::Unreadable)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NumericDate, A::Error> {
        empty_seq(seq).map(|()| NumericDate::Unreadable)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NumericDate, A::Error> {
        empty_map(map).map(|()| NumericDate::Unreadable)
    }
}

/// An empty array where a scalar belongs reads as an unreadable scalar, a non-empty one is an
/// error: jsonwebtoken's outcomes (its reader recovers from the one and not the other).
fn empty_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    match seq.next_element::<IgnoredAny>()? {
        None => Ok(()),
        Some(_) => Err(de::Error::custom("an array where a scalar belongs")),
    }
}

/// As [`empty_seq`], for objects.
fn empty_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    match map.next_key::<IgnoredAny>()? {
        None => Ok(()),
        Some(_) => Err(de::Error::custom("an object where a scalar belongs")),
    }
}

/// `sub`: a string; another scalar reads as none (no user id); an array or object is an error,
/// as for [`NumericDate`].
#[derive(Default)]
struct Subject(Option<String>);

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SubjectVisitor)
    }
}

struct SubjectVisitor;

impl<'de> Visitor<'de> for SubjectVisitor {
    type Value = Subject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Subject, E> {
        Ok(Subject(Some(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Subject, E> {
        Ok(Subject(Some(v)))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Subject, E> {
        Ok(Subject(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Subject, E> {
        Ok(Subject(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Subject, E> {
        Ok(Subject(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Subject, E> {
        Ok(Subject(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Subject, E> {
        Ok(Subject(None))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::hs256_token as token;
    use super::*;

    const SECRET: &[u8] = b"test-only-secret-0123456789abcdef";
    const ISS: &str = "https://login.meschain.test";
    const AUD: &str = "meschain-realtime";
    const NOW: u64 = 1_800_000_000;

    fn rules(leeway_secs: u64) -> Rules {
        Rules { issuer: Some(ISS.into()), audience: Some(AUD.into()), leeway_secs }
    }

    fn check(token: &str, rules: &Rules) -> Result<Identity, AuthError> {
        verify(token, &Hs256Key::new(SECRET), rules, NOW)
    }

    fn claims(extra: &str) -> String {
        format!(r#"{{"sub":"u","iss":"{ISS}","aud":"{AUD}","exp":{},{extra}"roles":["admin"]}}"#, NOW + 60)
    }

    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    #[test]
    fn test_valid_token_makes_the_identity() {
        let id = check(&token(HEADER, &claims(r#""role":"ops","#), SECRET), &rules(0)).unwrap();
        assert_eq!(id.user_id, "u");
        assert_eq!(id.roles, ["admin", "ops"]);
    }

    /// Only `alg` is read from the header: jsonwebtoken refuses these, for a `kid` or `typ` that
    /// is not a string; the signature is what makes them ours.
    #[test]
    fn test_header_fields_other_than_alg_are_not_read() {
        for header in [r#"{"alg":"HS256","kid":5}"#, r#"{"typ":["JWT"],"alg":"HS256","x":{}}"#] {
            assert!(check(&token(header, &claims(""), SECRET), &rules(0)).is_ok(), "{header}");
        }
    }

    #[test]
    fn test_expiry_and_not_before_at_the_leeway_edges() {
        let at = |exp: u64, nbf: u64| {
            let payload = format!(r#"{{"sub":"u","iss":"{ISS}","aud":"{AUD}","exp":{exp},"nbf":{nbf}}}"#);
            check(&token(HEADER, &payload, SECRET), &rules(30))
        };
        assert!(at(NOW - 30, NOW).is_ok());
        assert_eq!(at(NOW - 31, NOW), Err(AuthError::Expired));
        assert!(at(NOW + 60, NOW + 30).is_ok());
        assert_eq!(at(NOW + 60, NOW + 31), Err(AuthError::NotYetValid));
        // A clock before the leeway (or 1970) neither wraps nor panics.
        let payload = format!(r#"{{"sub":"u","iss":"{ISS}","aud":"{AUD}","exp":5}}"#);
        assert!(verify(&token(HEADER, &payload, SECRET), &Hs256Key::new(SECRET), &rules(u64::MAX), 0).is_ok());
    }

    #[test]
    fn test_signature_covers_header_and_payload_as_sent() {
        let good = token(HEADER, &claims(""), SECRET);
        let (message, signature) = good.rsplit_once('.').unwrap();
        let (header, _) = message.split_once('.').unwrap();
        let forged = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims(r#""role":"super_admin","#)));
        assert_eq!(check(&forged, &rules(0)), Err(AuthError::InvalidSignature));
        assert_eq!(check(&format!("{message}.{}", &signature[1..]), &rules(0)), Err(AuthError::Malformed));
        assert_eq!(check(&format!("{message}.{}", &signature[..40]), &rules(0)), Err(AuthError::InvalidSignature));
        assert_eq!(check(&format!("{message}."), &rules(0)), Err(AuthError::InvalidSignature));
        assert_eq!(check(&token(HEADER, &claims(""), b"another secret"), &rules(0)), Err(AuthError::InvalidSignature));
    }

    #[test]
    fn test_garbage_is_refused_without_panic() {
        let long = "a".repeat(10_000);
        for garbage in ["", ".", "..", "...", "a.b.c", "a.b", "a.b.c.d", "====.====.====", "é.é.é", long.as_str()] {
            assert!(check(garbage, &rules(0)).is_err(), "{garbage}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let payload = format!(r#"{{"sub":"u","iss":"{ISS}","aud":"{AUD}","exp":{},"roles":{deep}}}"#, NOW + 60);
        assert_eq!(check(&token(HEADER, &payload, SECRET), &rules(0)), Err(AuthError::Malformed));
    }
}
