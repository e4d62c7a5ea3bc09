//! The Azure Functions custom-handler protocol, kept apart from any app, the way
//! `aws-lambda-rust-runtime` keeps its runtime apart from handlers. This crate names no
//! function and no app state; the app implements [`Handler`] and hands it to [`router`].
//!
//! The host starts the handler process, polls `GET /` until it answers, then POSTs each
//! invocation to `/{FunctionName}` as a JSON envelope ([`envelope`]), or forwards plain HTTP
//! requests to their route under `/api/` for functions that are only an HTTP trigger and an
//! HTTP output (`enableForwardingHttpRequest`). The [`server`] turns both into one typed call:
//!
//! - HTTP-triggered functions get an [`HttpRequest`] and return an [`HttpResponse`]
//!   ([`Handler::call_http`]), whichever way the request travelled.
//! - Other triggers (timer, queue, ...) get the envelope's `Data` and `Metadata`
//!   ([`InvocationRequest`]) and return `Ok(())` or a [`TriggerFailure`]
//!   ([`Handler::call_trigger`]); a failure is a non-2xx answer, which the host records
//!   (a queue message is then redelivered).
//! - Both get a [`Context`]: the invocation id, a log that travels back to the host, and the
//!   sink for output bindings ([`Context::outputs`]). Only the envelope carries outputs, so on a
//!   forwarded request `outputs()` answers [`OutputsUnavailable`]; a function asks for the
//!   capability rather than knowing how its request arrived.
//!
//! # Adding a function
//! 1. A folder `<name>/function.json` at the app root with its bindings (see the existing ones).
//! 2. A variant in the app's [`FunctionSet`] enum: its [`FunctionSet::name`] is the folder
//!    name; an HTTP trigger returns its [`HttpBinding`] from [`FunctionSet::http_binding`],
//!    any other trigger returns `None`.
//! 3. One arm in the app's [`Handler`]: `call_http` for HTTP, `call_trigger` otherwise, calling
//!    a plain `async fn run(state, ctx, input)` in the function's own module.
//! 4. Output bindings (a `serviceBus` output for a continuation message, say): write them with
//!    `ctx.outputs()?.push(BINDING, json)`; map [`OutputsUnavailable`] to a refusal if the
//!    function can also be reached forwarded. A function with any output binding is always
//!    enveloped by the host, since forwarding is only for HTTP-in/HTTP-out functions.
//! 5. Errors: give the function's error type a `From<YourError> for HttpResponse` (HTTP) or
//!    build a [`TriggerFailure`] (`bad_input` when retrying cannot help, `unavailable` when
//!    it may), in one place next to the type.
//!
//! Modules, each importing only those above it: [`response`] ← [`envelope`] ← [`request`],
//! [`context`] (no imports), [`function`] (the app's side of the contract), [`isolation`]
//! (a panic fails one invocation), [`server`].

pub mod context;
pub mod envelope;
pub mod function;
pub mod isolation;
pub mod request;
pub mod response;
pub mod server;

pub use context::{Context, Escaped, Outputs, OutputsUnavailable, escape};
pub use envelope::{EnvelopeError, InvocationRequest, InvocationResponse, decode_data};
pub use function::{FunctionSet, Handler, HttpBinding, TriggerFailure};
pub use isolation::install_panic_hook;
pub use request::{HttpRequest, MAX_ENVELOPE_HEADERS};
pub use response::HttpResponse;
pub use server::{BodyError, Limits, MAX_BODY_BYTES, router, router_with_limits, serve};

#[cfg(test)]
mod testing {
    /// The host's payloads (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers): one copy for the whole
    /// repository, read by the app's and the local host's tests too.
    pub const HOST_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/host");
}
