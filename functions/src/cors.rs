//! CORS for the browser-facing HTTP functions.
//!
//! The SignalR browser client negotiates with `withCredentials: true` and custom headers, so
//! the answer must name the caller's exact origin and allow credentials; a wildcard is
//! refused by browsers in that mode (and by our settings parser). Origins not on the list get
//! no CORS headers at all, which makes the browser block the response.

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use url::Url;

use meschain_functions_protocol::{HttpRequest, HttpResponse};

/// Headers the SignalR JS client sends on negotiate, plus the usual ones.
const ALLOWED_HEADERS: &str = "authorization, content-type, x-requested-with, x-signalr-user-agent";
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// The allowed origins, normalised to `scheme://host[:port]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// Parses a comma-separated list of origins.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                return Err("a wildcard origin cannot be used: the SignalR client sends credentials".into());
            }
            let url = Url::parse(item).map_err(|_| "each origin must look like https://host[:port]".to_string())?;
            let plain = matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty();
            if !plain {
                return Err("each origin must look like https://host[:port], with no path".into());
            }
            origins.push(url.origin().ascii_serialization());
        }
        Ok(CorsPolicy { origins })
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    fn allowed_origin<'a>(&self, req: &'a HttpRequest) -> Option<&'a str> {
        req.header("origin").filter(|o| self.allows(o))
    }

    /// Answers a preflight (`OPTIONS`) request.
    pub fn preflight(&self, req: &HttpRequest, methods: &'static str) -> HttpResponse {
        let mut resp = HttpResponse::new(StatusCode::NO_CONTENT);
        resp.headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        let requested_method_ok = req
            .header("access-control-request-method")
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| methods.split(", ").any(|allowed| allowed == m.as_str()));
        if let (Some(origin), true) = (self.allowed_origin(req), requested_method_ok) {
            self.add_origin_headers(&mut resp, origin);
            resp.headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
            resp.headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            resp.headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS));
        }
        resp
    }

    /// Adds CORS headers to an actual (non-preflight) response.
    pub fn decorate(&self, req: &HttpRequest, resp: &mut HttpResponse) {
        resp.headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(req) {
            self.add_origin_headers(resp, origin);
        }
    }

    fn add_origin_headers(&self, resp: &mut HttpResponse, origin: &str) {
        // `allows` matched it against a parsed URL origin, so it is a valid header value.
        if let Ok(v) = HeaderValue::from_str(origin) {
            resp.headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            resp.headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::HeaderMap;

    fn req(method: Method, headers: &[(&'static str, &str)]) -> HttpRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        HttpRequest { method, query: vec![], headers: map, body: Bytes::new() }
    }

    #[test]
    fn test_parse() {
        let p = CorsPolicy::parse("https://Admin.Example.com, http://localhost:5173,").unwrap();
        assert!(p.allows("https://admin.example.com"));
        assert!(p.allows("http://localhost:5173"));
        assert!(!p.allows("http://localhost:5174"));
        assert!(!p.allows("null"));
        for bad in ["*", "admin.example.com", "https://a.com/path", "ftp://a.com", "https://u:p@a.com"] {
            assert!(CorsPolicy::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CorsPolicy::parse("").unwrap(), CorsPolicy::default());
    }

    #[test]
    fn test_preflight_allowed_and_not() {
        let p = CorsPolicy::parse("https://admin.example.com").unwrap();
        let r = p.preflight(
            &req(
                Method::OPTIONS,
                &[("origin", "https://admin.example.com"), ("access-control-request-method", "POST")],
            ),
            "POST, OPTIONS",
        );
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(r.headers["access-control-allow-origin"], "https://admin.example.com");
        assert_eq!(r.headers["access-control-allow-credentials"], "true");
        assert!(r.headers["access-control-allow-headers"].to_str().unwrap().contains("x-signalr-user-agent"));

        let r = p.preflight(
            &req(Method::OPTIONS, &[("origin", "https://evil.example.com"), ("access-control-request-method", "POST")]),
            "POST, OPTIONS",
        );
        assert!(r.headers.get("access-control-allow-origin").is_none());
        let r = p.preflight(
            &req(
                Method::OPTIONS,
                &[("origin", "https://admin.example.com"), ("access-control-request-method", "DELETE")],
            ),
            "POST, OPTIONS",
        );
        assert!(r.headers.get("access-control-allow-origin").is_none());
    }

    #[test]
    fn test_decorate() {
        let p = CorsPolicy::parse("https://admin.example.com").unwrap();
        let mut resp = HttpResponse::new(StatusCode::OK);
        p.decorate(&req(Method::POST, &[("origin", "https://admin.example.com")]), &mut resp);
        assert_eq!(resp.headers["access-control-allow-origin"], "https://admin.example.com");
        let mut resp = HttpResponse::new(StatusCode::OK);
        p.decorate(&req(Method::POST, &[("origin", "https://other.example.com")]), &mut resp);
        assert!(resp.headers.get("access-control-allow-origin").is_none());
        assert_eq!(resp.headers["vary"], "Origin");
    }
}
