//! Strict parsing of `Authorization: Bearer <token>`.
//!
//! Lenient parsers are where smuggling starts (two headers, two tokens, a token with a
//! space that a proxy splits differently), so anything but exactly one header holding
//! exactly one RFC 6750 `b64token` is refused before any cryptography runs.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::AuthError;

/// Larger headers are refused unread. Real login tokens are well under 2 KB; a cap keeps
/// base64 and JSON decoding of attacker input bounded.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// The token of the request's single `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingCredential)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let bytes = value.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_BYTES {
        return Err(AuthError::Malformed);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| AuthError::Malformed)?;
    let Some((scheme, rest)) = text.split_once(' ') else {
        return Err(if text.eq_ignore_ascii_case("bearer") {
            AuthError::Malformed
        } else {
            AuthError::UnsupportedScheme
        });
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::UnsupportedScheme);
    }
    // RFC 7235 allows 1*SP after the scheme; nothing else may follow the token.
    let token = rest.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn test_accepts_one_bearer_token_any_scheme_case() {
        assert_eq!(bearer_token(&with(&[b"Bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&with(&[b"bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&with(&[b"BEARER  a-_.b~+/c=="])), Ok("a-_.b~+/c=="));
    }

    #[test]
    fn test_missing_header() {
        assert_eq!(bearer_token(&HeaderMap::new()), Err(AuthError::MissingCredential));
    }

    #[test]
    fn test_rejects_garbage() {
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a.b.c d.e.f",
            b"Bearer a.b.c ",
            b"Bearer a b",
            b"Bearer =",
            b"Bearer a.b\tc",
            b"Bearer a.b.c,x",
            b"Bearer \"a.b.c\"",
            b"Bearer a.\xff.c",
            b"Bearer =abc",
        ] {
            assert_eq!(bearer_token(&with(&[bad])), Err(AuthError::Malformed), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn test_rejects_other_schemes() {
        assert_eq!(bearer_token(&with(&[b"Basic dXNlcjpwYXNz"])), Err(AuthError::UnsupportedScheme));
        assert_eq!(bearer_token(&with(&[b"Bearerx a.b.c"])), Err(AuthError::UnsupportedScheme));
        assert_eq!(bearer_token(&with(&[b"a.b.c"])), Err(AuthError::UnsupportedScheme));
    }

    #[test]
    fn test_rejects_two_headers() {
        assert_eq!(bearer_token(&with(&[b"Bearer a.b.c", b"Bearer a.b.c"])), Err(AuthError::Malformed));
    }

    #[test]
    fn test_rejects_huge_header() {
        let mut big = b"Bearer ".to_vec();
        big.resize(MAX_AUTHORIZATION_BYTES + 1, b'a');
        assert_eq!(bearer_token(&with(&[&big])), Err(AuthError::Malformed));
        big.truncate(MAX_AUTHORIZATION_BYTES);
        assert!(bearer_token(&with(&[&big])).is_ok());
    }
}
