//! The HTTP response a function returns, and the two ways it leaves: as the envelope's
//! `Outputs.res` object or as a plain HTTP response. Every error of the project has the one
//! JSON shape [`HttpResponse::error`] builds; each error type converts itself with a `From`
//! impl next to its definition.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

/// An HTTP response from an HTTP-triggered function.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn new(status: StatusCode) -> Self {
        HttpResponse { status, headers: HeaderMap::new(), body: Bytes::new() }
    }

    /// A JSON response. Serialising a `Value` cannot fail.
    pub fn json(status: StatusCode, body: &Value) -> Self {
        HttpResponse::json_of(status, body)
    }

    /// `body` serialised straight to JSON, without building a [`Value`] first.
    pub fn json_of(status: StatusCode, body: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                let mut r = HttpResponse::new(status);
                r.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
                r.body = Bytes::from(bytes);
                r
            }
            // Only a failing `Serialize` impl or a map with non-string keys gets here.
            Err(_) => {
                HttpResponse::error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "could not write the answer")
            }
        }
    }

    /// The project's error shape: `{"error": code, "message": text}`.
    pub fn error(status: StatusCode, code: &str, message: &str) -> Self {
        HttpResponse::json(status, &json!({ "error": code, "message": message }))
    }

    /// The `Outputs.res` object the host expects (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#response-payload): status as a number, header
    /// values as strings, and the body as a string so the host writes it verbatim (an object
    /// body would be re-indented). A non-UTF-8 body cannot travel this way and is refused
    /// upstream of here: every handler of ours produces text.
    pub fn to_envelope_output(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            if let Ok(v) = value.to_str() {
                // Repeated headers are joined, as .NET joins them when it reads a dictionary.
                match headers.get_mut(name.as_str()) {
                    Some(Value::String(existing)) => {
                        existing.push_str(", ");
                        existing.push_str(v);
                    }
                    _ => {
                        headers.insert(name.as_str().to_string(), Value::String(v.to_string()));
                    }
                }
            }
        }
        json!({
            "statusCode": self.status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&self.body),
        })
    }

    pub fn into_axum(self) -> axum::response::Response {
        let mut resp = axum::response::Response::new(axum::body::Body::from(self.body));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }
}

impl axum::response::IntoResponse for HttpResponse {
    fn into_response(self) -> axum::response::Response {
        self.into_axum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_response_output_shape() {
        let mut r = HttpResponse::json(StatusCode::UNAUTHORIZED, &json!({"error": "x"}));
        r.headers.append("vary", HeaderValue::from_static("Origin"));
        r.headers.append("vary", HeaderValue::from_static("Access-Control-Request-Method"));
        let out = r.to_envelope_output();
        assert_eq!(out["statusCode"], 401);
        assert_eq!(out["headers"]["content-type"], "application/json; charset=utf-8");
        assert_eq!(out["headers"]["vary"], "Origin, Access-Control-Request-Method");
        assert_eq!(out["body"], r#"{"error":"x"}"#);
    }

    #[test]
    fn test_json_of_writes_the_value_or_a_500() {
        #[derive(serde::Serialize)]
        struct Answer<'a> {
            url: &'a str,
        }
        let r = HttpResponse::json_of(StatusCode::OK, &Answer { url: "https://x/\"" });
        assert_eq!(r.headers[CONTENT_TYPE], "application/json; charset=utf-8");
        assert_eq!(&r.body[..], br#"{"url":"https://x/\""}"#);

        // Non-string map keys cannot be JSON object keys.
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let r = HttpResponse::json_of(StatusCode::OK, &bad);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(std::str::from_utf8(&r.body).unwrap().contains("internal_error"));
    }
}
