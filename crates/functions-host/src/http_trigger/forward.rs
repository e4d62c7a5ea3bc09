//! The forwarding path: the request goes to the handler as it came (same method, headers, query,
//! original `/api/...` path) and the handler's answer comes back as it is.
//!
//! The host takes this path only for a function that is exactly httpTrigger-in + http-out with
//! `customHandler.enableForwardingHttpRequest` on: such a function has no other binding whose
//! data would need the `Data`/`Metadata` envelope, so the handler can be an ordinary web server.
//! As the host does, the body is sent only when Content-Length > 0 and redirects are not followed
//! (the caller gets the handler's own). Connection-level headers (hop-by-hop ones, Host,
//! Content-Length) are not copied either way: each side of the proxy sets its own.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};

use super::{HttpState, MAX_BODY, plain};

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
];

pub(super) async fn forward(state: &HttpState, req: Request<Body>) -> Response<Body> {
    let port = match state.invoker.ready_port().await {
        Ok(p) => p,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let (parts, body) = req.into_parts();
    let has_body = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > 0);
    let bytes = if has_body {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        }
    } else {
        bytes::Bytes::new()
    };
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("http://127.0.0.1:{port}{pq}");
    let mut out = state.invoker.forward_client().request(parts.method.clone(), url);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            out = out.header(k, v);
        }
    }
    out = out
        .header("X-Azure-Functions-HostVersion", crate::invoke::HOST_VERSION)
        .header("X-Azure-Functions-InvocationId", crate::envelope::guid());
    if has_body {
        out = out.body(bytes);
    }
    if let Some(t) = state.invoker.timeout() {
        out = out.timeout(t);
    }
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("forwarding to the custom handler failed: {e}");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "the custom handler failed");
        }
    };
    let mut builder = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            builder = builder.header(k, v);
        }
    }
    match resp.bytes().await {
        Ok(b) => builder.body(Body::from(b)).unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "bad response")),
        Err(_) => plain(StatusCode::BAD_GATEWAY, "the custom handler's response was cut off"),
    }
}
