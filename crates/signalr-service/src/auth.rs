//! Access-token checks for client requests (§C.3, §C.4) and REST calls (§D.1).
//!
//! Tokens are HS256/HS512 signed with any configured key and must not be expired (the real
//! service enforces `exp`; Microsoft's emulator does not, and we follow the service). Audiences
//! are compared leniently (`meschain_signalr::audience`). Because this service runs on loopback
//! while tokens name `localhost` (the connection string's endpoint), a loopback request host
//! accepts an audience naming any loopback alias.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use meschain_signalr::AccessKey;
use meschain_signalr::audience::{client_audience_matches, rest_audience_matches};
use meschain_signalr::token::{ValidatedClaims, ValidationError, validate};

/// A refused request: 401 with the ASP.NET JwtBearer challenge the service sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token at all: a bare `WWW-Authenticate: Bearer`.
    Missing,
    Invalid(ValidationError),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let challenge = match &self {
            AuthError::Missing => "Bearer".to_string(),
            AuthError::Invalid(e) => format!("Bearer error=\"invalid_token\", error_description=\"{e}\""),
        };
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// Every bearer token in the `Authorization` header(s). Clients may send several values or a
/// combined one (§F.4), so all are collected and any valid one is accepted.
pub fn header_tokens(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let part = part.trim();
            if part.len() > 7 && part[..7].eq_ignore_ascii_case("bearer ") {
                out.push(part[7..].trim().to_string());
            }
        }
    }
    out
}

/// The last `access_token` query value, as ASP.NET reads it.
pub fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "access_token")
        .last()
        .map(|(_, v)| v.into_owned())
}

fn is_loopback(host: &str) -> bool {
    let name = host_without_port(host);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.starts_with("127.")
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The service URLs a token audience may be compared with for a request to `host` + `path`.
fn service_urls(host: &str, path_and_query: &str) -> Vec<String> {
    let mut hosts = vec![host.to_string()];
    if is_loopback(host) {
        hosts.extend(["localhost", "127.0.0.1", "[::1]"].iter().map(|s| s.to_string()));
    }
    hosts.into_iter().map(|h| format!("http://{h}{path_and_query}")).collect()
}

fn validate_any(
    tokens: &[String],
    keys: &[AccessKey],
    leeway: u64,
    audience_ok: impl Fn(&str) -> bool,
) -> Result<ValidatedClaims, AuthError> {
    let mut first_error = None;
    for token in tokens {
        match validate(token, keys, leeway, &audience_ok) {
            Ok(claims) => return Ok(claims),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.map_or(AuthError::Missing, AuthError::Invalid))
}

/// Validates a client token for `hub` on a request to `host`.
pub fn validate_client(
    tokens: &[String],
    keys: &[AccessKey],
    leeway: u64,
    host: &str,
    hub: &str,
) -> Result<ValidatedClaims, AuthError> {
    let urls = service_urls(host, "/client/");
    validate_any(tokens, keys, leeway, |aud| urls.iter().any(|u| client_audience_matches(aud, u, hub)))
}

/// Validates a REST token for a request to `host` + `path_and_query`.
pub fn validate_rest(
    tokens: &[String],
    keys: &[AccessKey],
    leeway: u64,
    host: &str,
    path_and_query: &str,
) -> Result<ValidatedClaims, AuthError> {
    let urls = service_urls(host, path_and_query);
    validate_any(tokens, keys, leeway, |aud| urls.iter().any(|u| rest_audience_matches(aud, u)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meschain_model::clock::now_secs as now;
    use meschain_signalr::token::{ClientClaims, SigningKey};

    #[test]
    fn test_header_tokens_combined_and_repeated() {
        let mut h = HeaderMap::new();
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a, bearer b"));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Basic zzz"));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("BEARER c"));
        assert_eq!(header_tokens(&h), vec!["a", "b", "c"]);
    }

    #[test]
    fn test_query_token_takes_last() {
        assert_eq!(query_token("hub=x&access_token=a&access_token=b%2Bc"), Some("b+c".into()));
        assert_eq!(query_token("hub=x"), None);
    }

    #[test]
    fn test_client_validation_with_loopback_aliases() {
        let key = AccessKey::new("k");
        let t = SigningKey::hs256(&key)
            .client_token("http://localhost/client/?hub=chat", &ClientClaims::default(), now(), 60)
            .unwrap();
        assert!(
            validate_client(std::slice::from_ref(&t), std::slice::from_ref(&key), 0, "127.0.0.1:9", "Chat").is_ok()
        );
        assert!(
            validate_client(std::slice::from_ref(&t), std::slice::from_ref(&key), 0, "localhost:9", "chat").is_ok()
        );
        assert_eq!(
            validate_client(std::slice::from_ref(&t), std::slice::from_ref(&key), 0, "localhost:9", "other")
                .unwrap_err(),
            AuthError::Invalid(ValidationError::InvalidAudience)
        );
        assert_eq!(
            validate_client(&["bad".into(), t.clone()], std::slice::from_ref(&key), 0, "localhost", "chat").map(|_| ()),
            Ok(())
        );
        assert_eq!(validate_client(&[], &[key], 0, "localhost", "chat").unwrap_err(), AuthError::Missing);
    }

    #[test]
    fn test_host_parsing() {
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("a:80"), "a");
        assert!(is_loopback("127.0.0.1:8888"));
        assert!(!is_loopback("example.com"));
    }
}
