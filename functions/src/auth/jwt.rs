//! Verifying a login JWT once its key is known, and turning its claims into an [`Identity`].
//! RS256 and ES256 tokens go through jsonwebtoken here; HS256 tokens, the hot path, through
//! `hs256.rs`, which keeps jsonwebtoken's outcomes (the validation below is what it matches).
//!
//! The accepted algorithm is decided by *which key* verifies the token, and that key was
//! chosen by configuration and by the key's own type (see `jwks.rs`), never by the header
//! alone: the HMAC secret only ever verifies HS256, an RSA key only RS256, a P-256 key only
//! ES256. So a token that says `HS256` is never checked with a public key as HMAC secret,
//! and an `RS256` token never meets the shared secret.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{AuthError, Identity, IdentitySource, hs256};

/// The three validations this deployment can apply, built once.
pub struct Validations {
    pub hs256: hs256::Rules,
    pub rs256: Validation,
    pub es256: Validation,
}

impl Validations {
    /// `issuer` applies to every token; `key_source_issuer` (an OIDC provider's issuer)
    /// only to tokens verified with that provider's keys, when no `issuer` is configured.
    pub fn new(
        issuer: Option<&str>,
        key_source_issuer: Option<&str>,
        audience: Option<&str>,
        leeway_secs: u64,
    ) -> Self {
        Validations {
            hs256: hs256::Rules {
                issuer: issuer.map(str::to_owned),
                audience: audience.map(str::to_owned),
                leeway_secs,
            },
            rs256: validation(Algorithm::RS256, issuer.or(key_source_issuer), audience, leeway_secs),
            es256: validation(Algorithm::ES256, issuer.or(key_source_issuer), audience, leeway_secs),
        }
    }

    pub fn for_asymmetric(&self, alg: Algorithm) -> Option<&Validation> {
        match alg {
            Algorithm::RS256 => Some(&self.rs256),
            Algorithm::ES256 => Some(&self.es256),
            _ => None,
        }
    }
}

pub(super) fn validation(alg: Algorithm, issuer: Option<&str>, audience: Option<&str>, leeway_secs: u64) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = leeway_secs;
    v.validate_exp = true;
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        // jsonwebtoken checks `iss` only when present unless it is required.
        required.push("iss");
    }
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        // With no audience configured any `aud` is accepted (jsonwebtoken would otherwise
        // reject every token that has one).
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}

/// The claims we read. Wrong types are tolerated where ignoring them can only take
/// privileges away (`roles: 5` grants nothing) and reported where they cannot (`sub`).
#[derive(Deserialize)]
struct LoginClaims {
    #[serde(default)]
    sub: Claim,
    #[serde(default)]
    roles: Claim,
    #[serde(default)]
    role: Claim,
}

/// A claim's value, as far as identity cares: a string, the strings of an array, or something
/// else.
#[derive(Default)]
pub(super) enum Claim {
    Str(String),
    /// An array; `complete` when every item was a string (the others are skipped).
    Strings {
        strings: Vec<String>,
        complete: bool,
    },
    #[default]
    Other,
}

impl Claim {
    /// `roles` and `role` hold one role or an array of them; what is not a string grants nothing.
    fn into_roles(self) -> Vec<String> {
        match self {
            Claim::Str(role) => vec![role],
            Claim::Strings { strings, .. } => strings,
            Claim::Other => Vec::new(),
        }
    }

    /// `iss` and `aud`: one name or an array of names, none other than strings.
    pub(super) fn names(&self) -> Option<impl Iterator<Item = &str>> {
        match self {
            Claim::Str(name) => Some(std::slice::from_ref(name).iter().map(String::as_str)),
            Claim::Strings { strings, complete: true } => Some(strings.iter().map(String::as_str)),
            _ => None,
        }
    }
}

// A hand-written visitor rather than `#[serde(untagged)]`, which buffers each value into an
// intermediate tree before trying the variants: these claims are read on every negotiate.
impl<'de> Deserialize<'de> for Claim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ClaimVisitor)
    }
}

struct ClaimVisitor;

impl<'de> Visitor<'de> for ClaimVisitor {
    type Value = Claim;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Claim, E> {
        Ok(Claim::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Claim, E> {
        Ok(Claim::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Claim, A::Error> {
        let mut strings = Vec::new();
        let mut complete = true;
        while let Some(item) = seq.next_element::<Claim>()? {
            match item {
                Claim::Str(s) => strings.push(s),
                _ => complete = false,
            }
        }
        Ok(Claim::Strings { strings, complete })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claim, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Claim::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
}

/// Verifies `token` with `key` under `validation` and builds the caller's identity.
pub fn verify(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Identity, AuthError> {
    let claims = jsonwebtoken::decode::<LoginClaims>(token, key, validation).map_err(map_error)?.claims;
    let sub = match claims.sub {
        Claim::Str(s) => Some(s),
        _ => None,
    };
    identity(sub, claims.roles, claims.role)
}

/// The identity a verified token's claims make: `sub` its user id (not blank), `roles` and
/// `role` its roles, each once.
pub(super) fn identity(sub: Option<String>, roles: Claim, role: Claim) -> Result<Identity, AuthError> {
    let user_id = sub.filter(|s| !s.trim().is_empty()).ok_or(AuthError::NoUserId)?;
    let mut all = Vec::new();
    for role in roles.into_roles().into_iter().chain(role.into_roles()) {
        push_role(&mut all, role);
    }
    Ok(Identity { user_id, roles: all, source: IdentitySource::BearerToken })
}

fn push_role(roles: &mut Vec<String>, role: String) {
    if !role.is_empty() && !roles.contains(&role) {
        roles.push(role);
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::DisallowedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingExpiry,
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            _ => AuthError::Malformed,
        },
        // A key that cannot be used (a JWKS entry with a bad modulus, say) verifies nothing.
        ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => {
            tracing::warn!("a configured verification key is unusable");
            AuthError::InvalidSignature
        }
        _ => AuthError::Malformed,
    }
}

/// The header's algorithm, when it is one of ours. Anything else (including `none`, which
/// jsonwebtoken cannot even represent) is refused before a key is looked up.
pub fn header_algorithm(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
    match jsonwebtoken::decode_header(token) {
        Ok(h) => match h.alg {
            Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256 => Ok((h.alg, h.kid)),
            _ => Err(AuthError::DisallowedAlgorithm),
        },
        Err(_) => Err(classify_unreadable_header(token)),
    }
}

/// A header jsonwebtoken refused may be well-formed JSON naming an algorithm it does not
/// know (`none`, `HS1`): that is a disallowed algorithm, not a malformed token.
fn classify_unreadable_header(token: &str) -> AuthError {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[derive(Deserialize)]
    struct AlgOnly {
        #[serde(rename = "alg")]
        _alg: String,
    }
    let Some(encoded) = token.split('.').next() else { return AuthError::Malformed };
    let Ok(json) = URL_SAFE_NO_PAD.decode(encoded) else { return AuthError::Malformed };
    match serde_json::from_slice::<AlgOnly>(&json) {
        Ok(_) if token.split('.').count() == 3 => AuthError::DisallowedAlgorithm,
        _ => AuthError::Malformed,
    }
}
