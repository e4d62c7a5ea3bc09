//! When to retry a REST call to the SignalR service, and after how long.
//!
//! Retried: 429, 5xx, timeouts and connection failures, the failures that mean "try again
//! later". Never retried: other 4xx, which mean the request itself is wrong. Delays grow
//! exponentially with full jitter (so many instances retrying together spread out), honour
//! `Retry-After` when the service sends one, and the whole call, retries included, stays
//! within a fixed budget so a caller (an upstream request, a timer) is never held hostage.

use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    Timeout,
    ConnectFailed,
}

impl Attempt {
    pub fn is_transient(self) -> bool {
        match self {
            Attempt::Status(s) => s == 429 || s == 408 || (500..=599).contains(&s),
            Attempt::Timeout | Attempt::ConnectFailed => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Time allowed for one attempt.
    pub attempt_timeout: Duration,
    /// Time allowed for the whole call, retries and waits included.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(5),
            budget: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt number `attempt + 1` (attempts count from 1), or `None` to give
    /// up. `jitter` is a uniform draw from [0, 1); `elapsed` is the time spent so far.
    pub fn next_delay(
        &self,
        attempt: u32,
        outcome: Attempt,
        retry_after: Option<Duration>,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if !outcome.is_transient() || attempt >= self.max_attempts {
            return None;
        }
        let exp = self.base_delay.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.max_delay);
        let delay = match retry_after {
            Some(ra) => ra.min(self.max_delay),
            None => exp.mul_f64(jitter.clamp(0.0, 1.0)),
        };
        // Only retry if the wait and at least a short attempt still fit in the budget.
        let remaining = self.budget.checked_sub(elapsed)?;
        (delay + Duration::from_millis(50) <= remaining).then_some(delay)
    }

    /// The timeout for the next attempt: the per-attempt limit, cut to what the budget has left.
    pub fn attempt_timeout(&self, elapsed: Duration) -> Option<Duration> {
        let remaining = self.budget.checked_sub(elapsed)?;
        (!remaining.is_zero()).then(|| remaining.min(self.attempt_timeout))
    }
}

/// Parses `Retry-After` in its delta-seconds form (the form the service uses); HTTP dates and
/// garbage are ignored, which falls back to exponential backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(1),
        budget: Duration::from_secs(5),
    };

    #[test]
    fn test_which_outcomes_are_retried() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(P.next_delay(1, Attempt::Status(s), None, Duration::ZERO, 0.5).is_some(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413] {
            assert_eq!(P.next_delay(1, Attempt::Status(s), None, Duration::ZERO, 0.5), None, "{s}");
        }
        assert!(P.next_delay(1, Attempt::Timeout, None, Duration::ZERO, 0.5).is_some());
        assert!(P.next_delay(1, Attempt::ConnectFailed, None, Duration::ZERO, 0.5).is_some());
    }

    #[test]
    fn test_exponential_full_jitter_and_cap() {
        assert_eq!(P.next_delay(1, Attempt::Timeout, None, Duration::ZERO, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(P.next_delay(2, Attempt::Timeout, None, Duration::ZERO, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(P.next_delay(3, Attempt::Timeout, None, Duration::ZERO, 0.5), Some(Duration::from_millis(200)));
        assert_eq!(P.next_delay(4, Attempt::Timeout, None, Duration::ZERO, 1.0), None, "attempts exhausted");
        let big = RetryPolicy { max_attempts: 30, ..P };
        assert_eq!(big.next_delay(20, Attempt::Timeout, None, Duration::ZERO, 1.0), Some(Duration::from_secs(2)));
        assert_eq!(P.next_delay(1, Attempt::Timeout, None, Duration::ZERO, 0.0), Some(Duration::ZERO));
    }

    #[test]
    fn test_retry_after_and_budget() {
        assert_eq!(
            P.next_delay(1, Attempt::Status(429), Some(Duration::from_secs(1)), Duration::ZERO, 0.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            P.next_delay(1, Attempt::Status(429), Some(Duration::from_secs(60)), Duration::ZERO, 0.0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            P.next_delay(1, Attempt::Status(503), Some(Duration::from_secs(1)), Duration::from_millis(4_500), 0.0),
            None
        );
        assert_eq!(P.attempt_timeout(Duration::from_millis(4_800)), Some(Duration::from_millis(200)));
        assert_eq!(P.attempt_timeout(Duration::from_secs(6)), None);
    }

    #[test]
    fn test_parse_retry_after() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
