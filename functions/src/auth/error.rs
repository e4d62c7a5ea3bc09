//! Why a caller was not authenticated.
//!
//! The variants are deliberately coarse and carry no data: a description is sent to the
//! client, so it must never echo the presented token, a claim value or a key. Operators get
//! the detail (which key source failed and why) from the `tracing` line logged where the
//! failure happened, not from this type.

use http::StatusCode;
use http::header::{self, HeaderValue};
use meschain_functions_protocol::HttpResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (and no trusted App Service principal).
    #[error("no credential was presented")]
    MissingCredential,
    /// An `Authorization` header with a scheme other than `Bearer`.
    #[error("the authorization scheme is not Bearer")]
    UnsupportedScheme,
    /// The header or token is not well formed (size, encoding, shape, claim types).
    #[error("the credential is malformed")]
    Malformed,
    #[error("the token signature is invalid")]
    InvalidSignature,
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Tokens without `exp` would be valid forever.
    #[error("the token has no expiry")]
    MissingExpiry,
    #[error("the token issuer is not accepted")]
    WrongIssuer,
    #[error("the token audience is not accepted")]
    WrongAudience,
    /// `alg: none`, an algorithm we do not support, or one this deployment has no key for.
    #[error("the token signing algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The key set has no key with the token's `kid` usable for its algorithm, even after a refresh.
    #[error("the token signing key is unknown")]
    UnknownKey,
    /// `sub` (or the App Service user id) is missing or empty.
    #[error("the credential carries no user id")]
    NoUserId,
    /// The JWKS or discovery endpoint failed, timed out or returned garbage.
    #[error("the signing keys could not be loaded")]
    KeySourceUnavailable,
}

impl AuthError {
    /// A fixed text that is safe to return to clients.
    pub fn description(&self) -> &'static str {
        match self {
            AuthError::MissingCredential => "no credential was presented",
            AuthError::UnsupportedScheme => "the authorization scheme is not Bearer",
            AuthError::Malformed => "the credential is malformed",
            AuthError::InvalidSignature => "the token signature is invalid",
            AuthError::Expired => "the token is expired",
            AuthError::NotYetValid => "the token is not valid yet",
            AuthError::MissingExpiry => "the token has no expiry",
            AuthError::WrongIssuer => "the token issuer is not accepted",
            AuthError::WrongAudience => "the token audience is not accepted",
            AuthError::DisallowedAlgorithm => "the token signing algorithm is not allowed",
            AuthError::UnknownKey => "the token signing key is unknown",
            AuthError::NoUserId => "the credential carries no user id",
            AuthError::KeySourceUnavailable => "the signing keys could not be loaded",
        }
    }

    /// The HTTP status a handler should answer with: the caller's fault is 401; a key
    /// source we cannot reach is ours, so 503 (the client may retry the same token).
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::KeySourceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// The caller's fault is a 401 with a Bearer challenge (RFC 6750); a key source we cannot
/// reach is a 503 with `Retry-After`, so the client retries the same token later instead of
/// sending its user back to sign in.
impl From<AuthError> for HttpResponse {
    fn from(e: AuthError) -> Self {
        let status = e.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let mut resp = HttpResponse::error(status, "auth_unavailable", e.description());
            resp.headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return resp;
        }
        let mut resp = HttpResponse::error(status, "invalid_token", e.description());
        // `description()` is a fixed ASCII string without quotes, so it fits in the header.
        let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", e.description());
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_description_matches_display_and_status() {
        let all = [
            AuthError::MissingCredential,
            AuthError::UnsupportedScheme,
            AuthError::Malformed,
            AuthError::InvalidSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::MissingExpiry,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::DisallowedAlgorithm,
            AuthError::UnknownKey,
            AuthError::NoUserId,
            AuthError::KeySourceUnavailable,
        ];
        for e in all {
            assert_eq!(e.description(), e.to_string());
            let expected = if e == AuthError::KeySourceUnavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(e.status(), expected);
            let resp = HttpResponse::from(e);
            assert_eq!(resp.status, expected);
            assert_eq!(resp.headers.contains_key(header::WWW_AUTHENTICATE), expected == StatusCode::UNAUTHORIZED);
        }
    }
}
