//! What an app provides: the set of its functions and a [`Handler`] that runs them.

use std::future::Future;

use http::{Method, StatusCode};

use crate::context::Context;
use crate::envelope::InvocationRequest;
use crate::request::HttpRequest;
use crate::response::HttpResponse;

/// How an HTTP-triggered function is bound (its `function.json`): its route under `/api/` and
/// the names of its request and response bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpBinding {
    pub route: &'static str,
    pub request: &'static str,
    pub response: &'static str,
    pub methods: &'static [Method],
}

/// The closed set of functions an app serves, usually a fieldless enum.
pub trait FunctionSet: Copy + Send + Sync + 'static {
    /// Every function, for lookups by name and route.
    const FUNCTIONS: &'static [Self];

    /// The function's name: its folder and its invocation path `/{name}`.
    fn name(self) -> &'static str;

    /// `Some` for an HTTP-triggered function, `None` for any other trigger.
    fn http_binding(self) -> Option<HttpBinding>;

    /// Function names are case-insensitive to the host.
    fn from_name(name: &str) -> Option<Self> {
        Self::FUNCTIONS.iter().copied().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The HTTP function served at `/api/{route}`.
    fn from_route(route: &str) -> Option<Self> {
        let route = route.trim_matches('/');
        Self::FUNCTIONS.iter().copied().find(|f| f.http_binding().is_some_and(|b| b.route.eq_ignore_ascii_case(route)))
    }
}

/// The app behind the protocol: runs one invocation of one of its functions. The server calls
/// [`Handler::call_http`] for functions with an [`HttpBinding`] and [`Handler::call_trigger`]
/// for the others; output bindings go through [`Context::outputs`] in both.
pub trait Handler: Send + Sync + 'static {
    type Function: FunctionSet;

    /// Runs an HTTP-triggered function. Errors are responses (each error type converts into
    /// [`HttpResponse`]): the host passes them to the caller.
    fn call_http(
        &self,
        function: Self::Function,
        ctx: &mut Context,
        req: HttpRequest,
    ) -> impl Future<Output = HttpResponse> + Send;

    /// Runs a function with any other trigger (timer, queue, ...). The payload is the
    /// envelope's `Data` (trigger and input bindings) and `Metadata`.
    fn call_trigger(
        &self,
        function: Self::Function,
        ctx: &mut Context,
        payload: &InvocationRequest,
    ) -> impl Future<Output = Result<(), TriggerFailure>> + Send;
}

/// Why a non-HTTP invocation failed: answered with a non-2xx status, which tells the host the
/// invocation failed (a timer run is recorded as failed; a queue message is redelivered, and
/// dead-lettered after its maximum delivery count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TriggerFailure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl TriggerFailure {
    /// The payload is wrong: retrying the same message cannot help.
    pub fn bad_input(message: String) -> Self {
        TriggerFailure { status: StatusCode::BAD_REQUEST, code: "bad_envelope", message }
    }

    /// A dependency failed: the host's retry (or the next timer tick) may succeed.
    pub fn unavailable(message: String) -> Self {
        TriggerFailure { status: StatusCode::SERVICE_UNAVAILABLE, code: "dependency_unavailable", message }
    }
}

impl From<TriggerFailure> for HttpResponse {
    fn from(f: TriggerFailure) -> Self {
        HttpResponse::error(f.status, f.code, &f.message)
    }
}
