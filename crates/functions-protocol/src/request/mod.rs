//! The HTTP request a function gets, whichever way the host delivered it: wrapped in the
//! envelope (`Data.req`) or forwarded as plain HTTP (`enableForwardingHttpRequest`). Functions
//! are written once against [`HttpRequest`] and [`crate::HttpResponse`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::envelope::{EnvelopeError, InvocationRequest, get_ci};

mod direct;

/// Most header values an enveloped request may carry. Forwarded requests are held to hyper's
/// 100; the host's own front end (Kestrel) refuses more than 32 KiB of headers, so a real
/// request stays far below this. `HeaderMap` itself cannot hold more than 32,768 entries and
/// would panic past that, so the map is also filled with its fallible API.
pub const MAX_ENVELOPE_HEADERS: usize = 1000;

/// An HTTP request to an HTTP-triggered function.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// Query parameters in order; a key may repeat.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpRequest {
    /// All values of query parameter `name` (case-insensitive, as ASP.NET binds them).
    pub fn query_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Builds the request for HTTP binding `binding` from an invocation body, the envelope
    /// (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#request-payload).
    /// Reads it straight into the request when the envelope has the host's usual shape
    /// ([`direct`]); otherwise, and to name what is wrong, through the whole envelope.
    pub fn from_invocation(body: &[u8], binding: &str) -> Result<Self, EnvelopeError> {
        match direct::read(body, binding) {
            Some(req) => Ok(req),
            None => InvocationRequest::parse(body).and_then(|e| Self::from_envelope(binding, e.binding(binding)?)),
        }
    }

    /// Builds the request from the envelope's `Data.<binding>` object.
    pub fn from_envelope(binding: &str, value: &Value) -> Result<Self, EnvelopeError> {
        let bad =
            |problem: &str| EnvelopeError::BadBinding { binding: binding.to_string(), problem: problem.to_string() };
        let Value::Object(req) = value else { return Err(bad("must be an HTTP request object")) };

        let method = match get_ci(req, "Method") {
            Some(Value::String(m)) => parse_method(m).ok_or_else(|| bad("Method is not an HTTP method"))?,
            _ => return Err(bad("Method is missing")),
        };

        let mut headers = HeaderMap::new();
        let mut budget = HeaderBudget::default();
        match get_ci(req, "Headers") {
            Some(Value::Object(map)) => {
                for (name, values) in map {
                    let name = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| bad("Headers has an invalid header name"))?;
                    let mut push = |v: &str| {
                        let value = budget.value(v).map_err(|e| match e {
                            HeaderError::TooMany => EnvelopeError::TooManyHeaders(MAX_ENVELOPE_HEADERS),
                            HeaderError::BadValue => bad("Headers has an invalid header value"),
                        })?;
                        // `HeaderMap` panics past 32,768 names; its fallible API reports that instead.
                        headers
                            .try_append(name.clone(), value)
                            .map_err(|_| EnvelopeError::TooManyHeaders(MAX_ENVELOPE_HEADERS))?;
                        Ok(())
                    };
                    match values {
                        Value::Array(items) => {
                            for item in items {
                                push(item.as_str().ok_or_else(|| bad("Headers values must be strings"))?)?;
                            }
                        }
                        Value::String(s) => push(s)?,
                        _ => return Err(bad("Headers values must be strings or arrays of strings")),
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err(bad("Headers must be an object")),
        }

        let query = query_pairs(get_ci(req, "Query").cloned().unwrap_or(Value::Null)).map_err(bad)?;

        let body = match get_ci(req, "Body") {
            None | Some(Value::Null) => Bytes::new(),
            Some(Value::String(s)) => body_from_text(s.clone(), &headers).map_err(bad)?,
            // A JSON body that the host parsed into an object: hand it back as JSON text.
            Some(other) => Bytes::from(other.to_string().into_bytes()),
        };

        Ok(HttpRequest { method, query, headers, body })
    }

    /// Builds the request from a forwarded HTTP request.
    pub fn from_forwarded(parts: &http::request::Parts, body: Bytes) -> Self {
        let query = parts
            .uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        HttpRequest { method: parts.method.clone(), query, headers: parts.headers.clone(), body }
    }
}

/// `Method` as the host writes it (`"post"` or `"POST"`); `None` if it is not a method.
fn parse_method(m: &str) -> Option<Method> {
    if m.bytes().any(|b| b.is_ascii_lowercase()) {
        Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok()
    } else {
        Method::from_bytes(m.as_bytes()).ok()
    }
}

/// Why a header value was not added.
enum HeaderError {
    TooMany,
    BadValue,
}

/// Counts a request's header values against [`MAX_ENVELOPE_HEADERS`] as they are read.
#[derive(Default)]
struct HeaderBudget {
    used: usize,
}

impl HeaderBudget {
    /// `value` as a header value, if the request may carry one more.
    fn value(&mut self, value: &str) -> Result<HeaderValue, HeaderError> {
        self.used += 1;
        if self.used > MAX_ENVELOPE_HEADERS {
            return Err(HeaderError::TooMany);
        }
        HeaderValue::from_str(value).map_err(|_| HeaderError::BadValue)
    }
}

/// The query arrives as an object (current host) or as JSON text (older docs: "{}").
/// Repeated keys were joined with commas by the host; that cannot be undone, so each key
/// yields one value, as the host presents it.
fn query_pairs(value: Value) -> Result<Vec<(String, String)>, &'static str> {
    let value = match value {
        Value::String(s) => serde_json::from_str(&s).map_err(|_| "Query is not an object")?,
        other => other,
    };
    match value {
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Null => Ok((k, String::new())),
                _ => Err("Query values must be strings"),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err("Query must be an object"),
    }
}

/// The body the host sent as a string: base64 for binary content types (octet-stream and
/// multipart), the text itself otherwise.
fn body_from_text(text: String, headers: &HeaderMap) -> Result<Bytes, &'static str> {
    let ct = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/octet-stream") || ct.starts_with("multipart/") {
        Ok(Bytes::from(STANDARD.decode(text).map_err(|_| "Body is not valid base64")?))
    } else {
        Ok(Bytes::from(text.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/{name}", crate::testing::HOST_FIXTURES);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn test_from_reference_payloads() {
        for name in ["http-nonforwarded-fixture-azfunc.json", "http-nonforwarded-docs-order.json"] {
            let env = fixture(name);
            let req = HttpRequest::from_envelope("req", &env["Data"]["req"]).unwrap();
            assert_eq!(req.method, Method::POST, "{name}");
            assert_eq!(req.header("content-type"), Some("application/json"));
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert!(body.is_object(), "{name}");
        }
    }

    #[test]
    fn test_headers_query_and_binary_body() {
        let v = json!({
            "Method": "post",
            "Headers": {"X-A": ["1", "2"], "Content-Type": "application/octet-stream"},
            "Query": {"hub": "MesChainAdminHub"},
            "Body": "AAEC"
        });
        let req = HttpRequest::from_envelope("req", &v).unwrap();
        assert_eq!(req.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(req.query_all("HUB").collect::<Vec<_>>(), vec!["MesChainAdminHub"]);
        assert_eq!(&req.body[..], &[0, 1, 2]);
    }

    #[test]
    fn test_bad_requests() {
        for (v, needle) in [
            (json!("x"), "HTTP request object"),
            (json!({}), "Method is missing"),
            (json!({"Method": "B@D"}), "not an HTTP method"),
            (json!({"Method": "GET", "Headers": {"bad name": ["x"]}}), "invalid header name"),
            (json!({"Method": "GET", "Headers": {"x": ["a\nb"]}}), "invalid header value"),
            (json!({"Method": "GET", "Headers": {"x": [1]}}), "must be strings"),
            (json!({"Method": "GET", "Headers": []}), "Headers must be an object"),
            (json!({"Method": "GET", "Query": 5}), "Query must be an object"),
            (json!({"Method": "GET", "Query": {"a": 1}}), "Query values"),
            (
                json!({"Method": "POST", "Headers": {"content-type": ["application/octet-stream"]}, "Body": "!!"}),
                "base64",
            ),
        ] {
            let err = HttpRequest::from_envelope("req", &v).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    /// The probe's finding: ~24,600 distinct names made `HeaderMap` panic (and abort the
    /// process). Past the limit the request is refused; at it, accepted.
    #[test]
    fn test_header_count_limit() {
        let with = |n: usize| {
            let headers: serde_json::Map<String, Value> = (0..n).map(|i| (format!("x-h{i}"), json!(["v"]))).collect();
            HttpRequest::from_envelope("req", &json!({"Method": "GET", "Headers": headers}))
        };
        assert_eq!(with(MAX_ENVELOPE_HEADERS).unwrap().headers.len(), MAX_ENVELOPE_HEADERS);
        assert_eq!(with(MAX_ENVELOPE_HEADERS + 1).unwrap_err(), EnvelopeError::TooManyHeaders(MAX_ENVELOPE_HEADERS));
        assert_eq!(with(30_000).unwrap_err(), EnvelopeError::TooManyHeaders(MAX_ENVELOPE_HEADERS));
        // Many values of one name count too.
        let many = json!({"Method": "GET", "Headers": {"x": vec!["v"; MAX_ENVELOPE_HEADERS + 1]}});
        assert!(HttpRequest::from_envelope("req", &many).is_err());
    }
}
