//! `azure_core`'s HTTP transport over the process's reqwest client.
//!
//! The whole workspace is on azure_core's reqwest (0.13, rustls on aws-lc-rs), so this adapter
//! is no longer what keeps one TLS stack; it stays because it shares the process's client (its
//! pool and trusted roots, the fake vault's CA in tests), drops URLs from errors, and bounds
//! bodies, which azure_core's built-in transport does not.
//!
//! Response bodies are read whole, up to [`MAX_BODY`]: a secret is at most 25 KB, and a
//! misbehaving server must not make the process buffer without end.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, ExponentialRetryOptions, HttpClient, Request, RetryOptions, Transport,
};

/// The largest response body accepted (Key Vault's secret size limit is 25 KB).
pub const MAX_BODY: usize = 1024 * 1024;

/// `azure_core`'s [`HttpClient`] over the process's reqwest client.
#[derive(Debug, Clone)]
pub struct ReqwestTransport(pub reqwest::Client);

impl ReqwestTransport {
    /// As an `azure_core` [`Transport`], for `ClientOptions::transport`.
    pub fn transport(http: reqwest::Client) -> Transport {
        Transport::new(Arc::new(ReqwestTransport(http)))
    }
}

/// Pipeline options for identity credentials: this transport, and few quick retries. Their
/// callers (a vault read, a SignalR REST call) have their own time budgets, and a token fetch
/// that retried for a minute would only eat them.
pub fn identity_client_options(http: reqwest::Client) -> ClientOptions {
    ClientOptions {
        transport: Some(ReqwestTransport::transport(http)),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(100),
            max_retries: 2,
            max_total_elapsed: azure_core::time::Duration::seconds(10),
            max_delay: azure_core::time::Duration::seconds(2),
        }),
        ..Default::default()
    }
}

#[async_trait]
impl HttpClient for ReqwestTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|_| Error::with_message(ErrorKind::Other, "unsupported HTTP method"))?;
        let mut req = self.0.request(method, request.url().as_str());
        for (name, value) in request.headers().iter() {
            req = req.header(name.as_str(), value.as_str());
        }
        req = match request.body() {
            Body::Bytes(bytes) => req.body(bytes.clone()),
            Body::SeekableStream(_) => {
                return Err(Error::with_message(ErrorKind::Other, "streamed request bodies are not supported"));
            }
        };
        // The URL may carry a query; reqwest's error Display includes the URL, so drop it.
        let mut resp = req.send().await.map_err(|e| io_error(e, "request failed"))?;
        let status = resp.status().as_u16();
        let headers: HashMap<HeaderName, HeaderValue> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((HeaderName::from(k.as_str().to_owned()), HeaderValue::from(v.to_str().ok()?.to_owned())))
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| io_error(e, "response unreadable"))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::with_message(ErrorKind::Io, "response body larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(AsyncRawResponse::from_bytes(status.into(), Headers::from(headers), body))
    }
}

fn io_error(e: reqwest::Error, what: &'static str) -> Error {
    let kind = if e.is_connect() { ErrorKind::Connection } else { ErrorKind::Io };
    Error::with_error(kind, e.without_url(), what)
}
