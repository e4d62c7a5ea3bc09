//! The wrapped path: the request becomes `Data.req` {Url, Method, Query, Headers, Params,
//! Identities, Body} in a `POST /{FunctionName}` invocation, and the function's `http` output
//! object {statusCode, body, headers} becomes the response.
//!
//! The host wraps every HTTP function that is not plain httpTrigger-in + http-out (and all of them
//! when forwarding is off): the other bindings' data travels in the same envelope, so the handler
//! sees one shape for every trigger. The envelope keeps the host's spellings (ASP.NET header
//! names, repeated query keys joined with commas, base64 for binary bodies) so that a handler
//! written against the real host reads it unchanged; `http_invocation_body` and
//! `http_output_response` are pure, and the tests below hold them to the reference payloads in
//! `tests/fixtures/host/`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use base64::Engine;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{HttpRoute, HttpState, MAX_BODY, plain};
use crate::config::{AuthLevel, Function};
use crate::envelope::{add_body_properties, serialized_string, sys};
use crate::invoke::InvocationResult;

/// ASP.NET's spelling of common header names (hyper lower-cases everything on receipt).
fn header_display_name(name: &HeaderName) -> String {
    const KNOWN: &[&str] = &[
        "Accept",
        "Accept-Charset",
        "Accept-Encoding",
        "Accept-Language",
        "Authorization",
        "Cache-Control",
        "Connection",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "Cookie",
        "Expect",
        "Host",
        "If-Match",
        "If-Modified-Since",
        "If-None-Match",
        "Origin",
        "Pragma",
        "Range",
        "Referer",
        "Transfer-Encoding",
        "Upgrade",
        "User-Agent",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name.as_str()))
        .map(|k| k.to_string())
        .unwrap_or_else(|| name.as_str().to_string())
}

/// Pure: the `Data`/`Metadata` body for a wrapped HTTP invocation.
#[allow(clippy::too_many_arguments)]
pub fn http_invocation_body(
    function: &Function,
    binding: &str,
    method: &Method,
    url: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    body: &[u8],
    level: Option<AuthLevel>,
    now: OffsetDateTime,
) -> Value {
    let mut q = Map::new();
    for (k, v) in form_pairs(query.unwrap_or("")) {
        match q.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                q.insert(k, Value::String(v));
            }
        }
    }
    let mut h_arrays: Map<String, Value> = Map::new();
    let mut h_flat: Map<String, Value> = Map::new();
    for name in headers.keys() {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).to_string()).collect();
        let display = header_display_name(name);
        h_flat.insert(display.clone(), Value::String(values.join(",")));
        h_arrays.insert(display, Value::Array(values.into_iter().map(Value::String).collect()));
    }
    let p: Map<String, Value> = params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let identities = match level {
        Some(l) => json!([{
            "AuthenticationType": "WebJobsAuthLevel",
            "IsAuthenticated": true,
            "Actor": null,
            "BootstrapContext": null,
            "Claims": [{
                "Issuer": "LOCAL AUTHORITY",
                "OriginalIssuer": "LOCAL AUTHORITY",
                "Properties": {},
                "Type": "http://schemas.microsoft.com/2017/07/functions/claims/authlevel",
                "Value": if l == AuthLevel::Admin { "Admin" } else { "Function" },
                "ValueType": "http://www.w3.org/2001/XMLSchema#string"
            }],
            "Label": null,
            "Name": null,
            "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            "RoleClaimType": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
        }]),
        None => json!([]),
    };
    let mut req = Map::new();
    req.insert("Url".into(), Value::String(url.to_string()));
    req.insert("Method".into(), Value::String(method.as_str().to_string()));
    req.insert("Query".into(), Value::Object(q.clone()));
    req.insert("Headers".into(), Value::Object(h_arrays));
    req.insert("Params".into(), Value::Object(p.clone()));
    req.insert("Identities".into(), identities);
    if !body.is_empty() {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let b = if ct.starts_with("application/octet-stream") || ct.starts_with("multipart/") {
            base64::engine::general_purpose::STANDARD.encode(body)
        } else {
            String::from_utf8_lossy(body).to_string()
        };
        req.insert("Body".into(), Value::String(b));
    }
    let mut data = Map::new();
    data.insert(binding.to_string(), Value::Object(req));
    let mut md = Map::new();
    md.insert("Query".into(), Value::Object(q));
    md.insert("Headers".into(), Value::Object(h_flat));
    md.insert("Params".into(), Value::Object(p));
    for (k, v) in params {
        if !md.contains_key(k) {
            md.insert(k.clone(), serialized_string(v));
        }
    }
    md.insert("sys".into(), sys(&function.name, now));
    add_body_properties(&mut md, body);
    json!({ "Data": data, "Metadata": md })
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let d =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().to_string();
            (d(k), d(v))
        })
        .collect()
}

pub(super) async fn wrapped(
    state: &HttpState,
    route: &HttpRoute,
    req: Request<Body>,
    params: BTreeMap<String, String>,
    level: Option<AuthLevel>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    // The host only reads a body announced with Content-Length > 0.
    let bytes = if declared.is_some_and(|n| n > 0) { bytes } else { bytes::Bytes::new() };
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{pq}", state.public_base);
    let body = http_invocation_body(
        &route.function,
        &route.binding,
        &parts.method,
        &url,
        parts.uri.query(),
        &parts.headers,
        &params,
        &bytes,
        level,
        OffsetDateTime::now_utc(),
    );
    let result = match state.invoker.invoke(&route.function.name, &body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(function = %route.function.name, "invocation failed: {e}");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "the function failed");
        }
    };
    if let Err(e) = crate::outputs::apply(&route.function, &result, &state.queues).await {
        tracing::error!(function = %route.function.name, "outputs failed: {e}");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "the function's outputs failed");
    }
    match http_output_response(&route.function, &result) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(function = %route.function.name, "{e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "the function returned an invalid http output")
        }
    }
}

fn prop<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// Maps the `http` output binding's value to a response (host's `GetHttpOutputBindingResponse`).
pub fn http_output_response(function: &Function, result: &InvocationResult) -> Result<Response<Body>, String> {
    let Some(binding) = function.outputs().find(|b| b.is("http")) else {
        return Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).expect("valid"));
    };
    let value = if binding.name == "$return" { result.return_value.as_ref() } else { result.output(&binding.name) };
    let Some(value) = value else {
        return Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).expect("valid"));
    };
    let Value::Object(o) = value else {
        return Err(format!("output {:?} is not in expected format (an object)", binding.name));
    };
    let status = match prop(o, "statusCode").or_else(|| prop(o, "status")) {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| format!("invalid statusCode {s:?}"))?,
        Some(other) => return Err(format!("invalid statusCode {other}")),
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| s.as_u16() >= 100)
        .ok_or_else(|| format!("invalid statusCode {status}"))?;
    let mut builder = Response::builder().status(status);
    let mut has_ct = false;
    if let Some(Value::Object(headers)) = prop(o, "headers") {
        for (k, v) in headers {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name {k:?}"))?;
            let value = HeaderValue::from_str(&v).map_err(|_| format!("invalid value for header {k:?}"))?;
            has_ct |= name == header::CONTENT_TYPE;
            builder = builder.header(name, value);
        }
    }
    let (body, default_ct) = match prop(o, "body") {
        None | Some(Value::Null) => (Vec::new(), None),
        Some(Value::String(s)) => (s.clone().into_bytes(), Some("text/plain; charset=utf-8")),
        Some(other) => (
            serde_json::to_string_pretty(other).expect("serialisable").into_bytes(),
            Some("application/json; charset=utf-8"),
        ),
    };
    if !has_ct && let Some(ct) = default_ct {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder.body(Body::from(body)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(json: &str) -> Function {
        Function::parse("order", "order/function.json", json, &|_| None).unwrap()
    }

    #[test]
    fn test_wrapped_body_matches_reference_shape() {
        let fixture: Value =
            serde_json::from_str(include_str!("../../../../tests/fixtures/host/http-nonforwarded-fixture-azfunc.json"))
                .unwrap();
        let f = function(
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","methods":["post"]},{"type":"http","direction":"out","name":"res"}]}"#,
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = br#"{"message":"hello","number":2}"#;
        let v = http_invocation_body(
            &f,
            "req",
            &Method::POST,
            "http://localhost:7071/api/endpoint",
            None,
            &headers,
            &BTreeMap::new(),
            body,
            Some(AuthLevel::Admin),
            OffsetDateTime::now_utc(),
        );
        let ours = &v["Data"]["req"];
        let theirs = &fixture["Data"]["req"];
        for k in ["Url", "Method", "Body", "Params", "Query", "Headers", "Identities"] {
            assert_eq!(ours[k], theirs[k], "{k}");
        }
        for k in ["Params", "Query", "Headers"] {
            assert_eq!(v["Metadata"][k], fixture["Metadata"][k], "{k}");
        }
        assert_eq!(v["Metadata"]["message"], "\"hello\"");
    }

    #[test]
    fn test_query_and_missing_body() {
        let f = function(r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"}]}"#);
        let v = http_invocation_body(
            &f,
            "req",
            &Method::GET,
            "u",
            Some("a=1&a=2&b=x+y&c=%2F"),
            &HeaderMap::new(),
            &BTreeMap::from([("id".to_string(), "7".to_string())]),
            b"",
            None,
            OffsetDateTime::now_utc(),
        );
        assert_eq!(v["Data"]["req"]["Query"], json!({"a":"1,2","b":"x y","c":"/"}));
        assert!(v["Data"]["req"].get("Body").is_none());
        assert_eq!(v["Data"]["req"]["Identities"], json!([]));
        assert_eq!(v["Metadata"]["id"], "\"7\"");
    }

    #[test]
    fn test_http_output_mapping() {
        let f = function(
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"},{"type":"http","direction":"out","name":"res"}]}"#,
        );
        let r: InvocationResult = crate::invoke::parse_response(
            Some("application/json"),
            include_bytes!("../../../../tests/fixtures/host/response-http-res-user-report.json"),
        )
        .unwrap();
        let resp = http_output_response(&f, &r).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let r = crate::invoke::parse_response(
            Some("application/json"),
            br#"{"Outputs":{"res":{"statusCode":"201","body":"made"}}}"#,
        )
        .unwrap();
        let resp = http_output_response(&f, &r).unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        let r = crate::invoke::parse_response(Some("application/json"), br#"{"Outputs":{"res":"hello"}}"#).unwrap();
        assert!(http_output_response(&f, &r).is_err());
        let r = crate::invoke::parse_response(Some("application/json"), br#"{"Outputs":{"res":{"statusCode":99999}}}"#)
            .unwrap();
        assert!(http_output_response(&f, &r).is_err());
    }
}
