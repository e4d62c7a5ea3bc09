//! One invocation's panic fails that invocation only. Without this, a panic in a handler either
//! aborts the process (`panic = "abort"`), failing every invocation in flight with it, or
//! (unwinding) kills the connection's task, so the host sees a reset instead of an answer.
//! The server runs each handler call through [`isolated`]: 500 for HTTP, a failed invocation
//! (non-2xx) for other triggers, one log line with the invocation id, and the server serves on.
//! Requires `panic = "unwind"`, which the workspace's release profile sets for this reason.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use http::StatusCode;

use crate::context::Escaped;
use crate::response::HttpResponse;

/// Runs one invocation's handler code; `None` if it panicked. The panic is logged with the
/// function and invocation id, never its message: a message formatted at runtime may carry the
/// payload (`unwrap` on a parse error prints the input).
///
/// `AssertUnwindSafe`: what the future borrows (the invocation's context and request) is
/// dropped with the failed invocation and never read again. State the handler shares across
/// invocations may be left half-updated; std locks poison on a panic and say so, which is the
/// handler's own contract to keep.
pub(crate) async fn isolated<T>(function: &str, id: &str, call: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(done) => Some(done),
        Err(_panic) => {
            tracing::error!(function, invocation_id = %Escaped(id), "handler panicked: invocation failed, serving on");
            None
        }
    }
}

/// The answer to an invocation whose handler panicked.
pub(crate) fn panicked() -> HttpResponse {
    HttpResponse::error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the function failed unexpectedly")
}

/// Replaces the process's panic hook with one that logs where a panic happened and its message
/// only when that is a string literal (`panic!("...")`, `expect("...")`): a formatted message
/// (`unwrap` on an error, `panic!("{x}")`) can carry request data, which must never reach the
/// logs. The default hook prints every message to stderr. For binaries that serve untrusted input.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_else(|| "-".into());
        let message = info.payload().downcast_ref::<&'static str>().copied().unwrap_or("(formatted message withheld)");
        tracing::error!(location, "panic: {message}");
    }));
}
