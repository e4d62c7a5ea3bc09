//! Verifying a login JWT once its key is known, and turning its claims into an [`Identity`].
//! RS256 and ES256 tokens go through jsonwebtoken here; HS256 tokens, the hot path, through
//! `hs256.rs`, which keeps jsonwebtoken's outcomes under [`validation`] (a test in `mod.rs`
//! holds it to them).
//!
//! The accepted algorithm is decided by *which key* verifies the token, and that key was
//! chosen by configuration and by the key's own type (see `jwks.rs`), never by the header
//! alone: the HMAC secret only ever verifies HS256, an RSA key only RS256, a P-256 key only
//! ES256. So a token that says `HS256` is never checked with a public key as HMAC secret,
//! and an `RS256` token never meets the shared secret.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use serde::Deserialize;

use super::claims::{Claim, identity};
use super::{AuthError, Identity};

/// The validations of tokens signed with a provider's keys, built once.
pub struct Validations {
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

/// Verifies `token` with `key` under `validation` and builds the caller's identity.
pub fn verify(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Identity, AuthError> {
    let claims = jsonwebtoken::decode::<LoginClaims>(token, key, validation).map_err(map_error)?.claims;
    let sub = match claims.sub {
        Claim::Str(s) => Some(s),
        _ => None,
    };
    identity(sub, claims.roles, claims.role)
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
