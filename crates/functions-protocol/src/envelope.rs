//! The JSON envelope the Functions host exchanges with a custom handler for non-forwarded
//! invocations (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers).
//!
//! Request: `{"Data": {binding: value}, "Metadata": {key: value}}`. The host encodes values
//! through Newtonsoft with rules that surprise: strings (including whole message bodies) are
//! JSON-encoded *again* inside a JSON string, metadata numbers arrive as strings and string
//! metadata arrive quoted. Every accessor here undoes that tolerantly, because fixtures and
//! real captures disagree on how many layers there are.
//!
//! Response: `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}` with
//! `Content-Type: application/json`. Non-http string outputs that happen to be valid base64
//! are decoded to bytes by the host, so callers emit objects, never bare strings.

use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::response::HttpResponse;

/// Why an envelope was refused. Each message names the part that is wrong, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("invocation body is not valid JSON")]
    NotJson,
    #[error("invocation body must be a JSON object")]
    NotAnObject,
    #[error("invocation {0} must be a JSON object")]
    FieldNotAnObject(&'static str),
    #[error("invocation Data has no binding named {0:?}")]
    MissingBinding(String),
    #[error("binding {binding:?}: {problem}")]
    BadBinding { binding: String, problem: String },
    /// More header values than [`crate::request::MAX_ENVELOPE_HEADERS`].
    #[error("the request carries more than {0} header values")]
    TooManyHeaders(usize),
}

impl From<EnvelopeError> for HttpResponse {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::TooManyHeaders(_) => {
                HttpResponse::error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too_many_headers", &e.to_string())
            }
            _ => HttpResponse::error(StatusCode::BAD_REQUEST, "bad_envelope", &e.to_string()),
        }
    }
}

/// One invocation as the host sent it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InvocationRequest {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

impl InvocationRequest {
    /// Parses the envelope. `Data` and `Metadata` may be absent or null (treated as empty) but
    /// must be objects when present; top-level keys are matched case-insensitively because the
    /// host's serialiser is Newtonsoft, which is case-insensitive on the way back in.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError::NotJson)?;
        let Value::Object(top) = value else { return Err(EnvelopeError::NotAnObject) };
        let mut req = InvocationRequest::default();
        for (key, value) in top {
            let slot = if key.eq_ignore_ascii_case("Data") {
                (&mut req.data, "Data")
            } else if key.eq_ignore_ascii_case("Metadata") {
                (&mut req.metadata, "Metadata")
            } else {
                continue;
            };
            match value {
                Value::Object(map) => *slot.0 = map,
                Value::Null => {}
                _ => return Err(EnvelopeError::FieldNotAnObject(slot.1)),
            }
        }
        Ok(req)
    }

    /// The raw value of an input binding.
    pub fn binding(&self, name: &str) -> Result<&Value, EnvelopeError> {
        get_ci(&self.data, name).ok_or_else(|| EnvelopeError::MissingBinding(name.to_string()))
    }

    /// A metadata entry as a plain string, quotes from the host's double encoding removed.
    pub fn metadata_str(&self, key: &str) -> Option<String> {
        match get_ci(&self.metadata, key)? {
            Value::String(s) => Some(unquote(s)),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A numeric metadata entry, which the host sends as a string (`"DeliveryCount": "1"`).
    pub fn metadata_u64(&self, key: &str) -> Option<u64> {
        match get_ci(&self.metadata, key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => unquote(s).trim().parse().ok(),
            _ => None,
        }
    }
}

/// Case-insensitive lookup, exact match first.
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// `"\"abc\""` → `abc`; anything that is not a JSON string literal is returned as is.
fn unquote(s: &str) -> String {
    if s.len() >= 2
        && s.starts_with('"')
        && s.ends_with('"')
        && let Ok(Value::String(inner)) = serde_json::from_str::<Value>(s)
    {
        return inner;
    }
    s.to_string()
}

/// Decodes a trigger or input value that may be JSON text inside a JSON string, possibly twice
/// (the Functions host's own test, https://github.com/Azure/azure-functions-host, asserts `Data[name] == SerializeObject("HelloWorld")`).
/// Objects and arrays pass through; a string that is not JSON stays a string.
pub fn decode_data(value: &Value) -> Value {
    let mut current = value.clone();
    for _ in 0..2 {
        match &current {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(inner) => current = inner,
                Err(_) => break,
            },
            _ => break,
        }
    }
    current
}

/// The handler's answer to one invocation.
#[derive(Debug, Default, Serialize)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_parse_minimal_and_case_insensitive() {
        let r = InvocationRequest::parse(br#"{"data":{"req":{}},"METADATA":null}"#).unwrap();
        assert!(r.binding("req").is_ok());
        assert!(r.metadata.is_empty());
        assert_eq!(InvocationRequest::parse(b"{}").unwrap(), InvocationRequest::default());
    }

    #[test]
    fn test_parse_errors() {
        assert_eq!(InvocationRequest::parse(b"not json"), Err(EnvelopeError::NotJson));
        assert_eq!(InvocationRequest::parse(b""), Err(EnvelopeError::NotJson));
        assert_eq!(InvocationRequest::parse(b"[1]"), Err(EnvelopeError::NotAnObject));
        assert_eq!(InvocationRequest::parse(br#"{"Data":"x"}"#), Err(EnvelopeError::FieldNotAnObject("Data")));
        assert_eq!(InvocationRequest::parse(br#"{"Metadata":[]}"#), Err(EnvelopeError::FieldNotAnObject("Metadata")));
        let r = InvocationRequest::parse(br#"{"Data":{}}"#).unwrap();
        assert_eq!(r.binding("msg"), Err(EnvelopeError::MissingBinding("msg".into())));
    }

    #[test]
    fn test_decode_data_layers() {
        // Single-encoded (the azfunc fixture), double-encoded (the host's real behaviour), raw.
        assert_eq!(decode_data(&json!("{\"a\":1}")), json!({"a":1}));
        assert_eq!(decode_data(&json!("\"{\\\"a\\\":1}\"")), json!({"a":1}));
        assert_eq!(decode_data(&json!("\"HelloWorld\"")), json!("HelloWorld"));
        assert_eq!(decode_data(&json!("plain text")), json!("plain text"));
        assert_eq!(decode_data(&json!({"x":true})), json!({"x":true}));
        // Three layers: only two are undone, the rest is data.
        let three =
            serde_json::to_string(&serde_json::to_string(&serde_json::to_string(&json!(1)).unwrap()).unwrap()).unwrap();
        assert_eq!(decode_data(&json!(three)), json!("1"));
    }

    #[test]
    fn test_metadata_accessors() {
        let r = InvocationRequest::parse(
            br#"{"Metadata":{"DeliveryCount":"3","MessageId":"\"abc\"","SequenceNumber":7,"Bad":"x","Null":null}}"#,
        )
        .unwrap();
        assert_eq!(r.metadata_u64("deliverycount"), Some(3));
        assert_eq!(r.metadata_u64("SequenceNumber"), Some(7));
        assert_eq!(r.metadata_u64("Bad"), None);
        assert_eq!(r.metadata_str("MessageId").as_deref(), Some("abc"));
        assert_eq!(r.metadata_str("Bad").as_deref(), Some("x"));
        assert_eq!(r.metadata_str("Null"), None);
        assert_eq!(r.metadata_str("Missing"), None);
    }

    #[test]
    fn test_response_shape() {
        let mut resp = InvocationResponse::default();
        resp.outputs.insert("res".into(), json!({"statusCode": 200}));
        resp.logs.push("hello".into());
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"Outputs":{"res":{"statusCode":200}},"Logs":["hello"],"ReturnValue":null})
        );
    }
}
