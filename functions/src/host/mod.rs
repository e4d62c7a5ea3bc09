//! The Azure Functions custom-handler protocol, kept apart from business logic.
//!
//! The host starts this process, polls `GET /` until it answers, then POSTs each invocation to
//! `/{FunctionName}` as a JSON envelope ([`envelope`]), or forwards plain HTTP requests to their
//! route under `/api/` for functions that are only an HTTP trigger and an HTTP output
//! (`enableForwardingHttpRequest`). [`server`] maps both onto the functions in
//! [`crate::functions`], which see only [`http::HttpRequest`]/[`http::HttpResponse`] or the
//! decoded envelope: a function never knows which way its request travelled.

pub mod envelope;
pub mod http;
pub mod server;

/// What a function may record about one invocation. Lines go to `tracing` and, for enveloped
/// invocations, into the response's `Logs`, which the host attaches to the invocation.
#[derive(Debug)]
pub struct InvocationContext {
    pub invocation_id: String,
    pub function: &'static str,
    /// Whether the invocation came in the envelope, so output bindings will be honoured.
    pub enveloped: bool,
    logs: Vec<String>,
}

impl InvocationContext {
    pub fn new(invocation_id: String, function: &'static str, enveloped: bool) -> Self {
        InvocationContext { invocation_id, function, enveloped, logs: Vec::new() }
    }

    /// Records a line. Callers must never pass secrets or tokens. Traced at debug level: the
    /// per-invocation summary line is the info-level record, these detail it.
    pub fn log(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::debug!(function = self.function, invocation_id = %self.invocation_id, "{line}");
        self.logs.push(line);
    }

    pub fn into_logs(self) -> Vec<String> {
        self.logs
    }
}
