//! Transient marketplace errors (429, 5xx, timeouts) retried with backoff or the marketplace's
//! `Retry-After`, within the time a window may spend.

use std::time::Duration;

use tokio::time::Instant;

use crate::connector::ConnectorError;

/// Longest single backoff, whatever the attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured before giving the window back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A call's fate after retries.
pub(super) enum Attempted<T> {
    Done(T),
    GaveUp(String),
    Fatal(String),
}

/// Retries transient failures of `call` until `until`; returns the fate and the retries made.
/// Before waiting out a throttling answer (one that says how long: `retry_after`), `on_throttled`
/// is told the wait and the reason, so watchers see why nothing moves.
pub(super) async fn retrying<T, F, Fut, W, WFut>(until: Instant, mut call: F, on_throttled: W) -> (Attempted<T>, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectorError>>,
    W: Fn(Duration, String) -> WFut,
    WFut: std::future::Future<Output = ()>,
{
    let mut attempt: u32 = 0;
    loop {
        match call().await {
            Ok(v) => return (Attempted::Done(v), u64::from(attempt)),
            Err(ConnectorError::Fatal(reason)) => return (Attempted::Fatal(reason), u64::from(attempt)),
            Err(ConnectorError::Transient { reason, retry_after }) => {
                let throttled = retry_after.is_some();
                let wait = match retry_after {
                    Some(d) => d,
                    None => {
                        let base = Duration::from_millis(250).saturating_mul(2u32.saturating_pow(attempt.min(10)));
                        base.min(MAX_BACKOFF).mul_f64(0.5 + rand::random::<f64>() / 2.0)
                    }
                };
                if wait > MAX_RETRY_AFTER || Instant::now() + wait > until {
                    return (Attempted::GaveUp(reason), u64::from(attempt));
                }
                tracing::debug!(%reason, wait_ms = wait.as_millis() as u64, "transient marketplace error; retrying");
                if throttled {
                    on_throttled(wait, reason).await;
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}
