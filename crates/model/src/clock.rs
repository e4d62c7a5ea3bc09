//! The one wall clock, and a manual clock for tests that need to control time.
//!
//! Code that only stamps "now" calls [`now_ms`] / [`now_secs`]. Code whose decisions depend on
//! time (expiry, rate limits, leases) takes a [`Clock`] so tests can move time with a
//! [`ManualClock`] instead of sleeping; async code that waits should use tokio's paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

/// Milliseconds since the Unix epoch. A clock before 1970 reads as 1970 rather than panicking.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch. A clock before 1970 reads as 1970 rather than panicking.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds, e.g. `2026-12-02T05:42:41.123Z`
/// (the shape JavaScript's `Date.toISOString()` gives and parses).
pub fn rfc3339_millis(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    // Out of `time`'s range only past year 9999; clamp rather than fail on a timestamp.
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or_else(|_| OffsetDateTime::from_unix_timestamp(253_402_300_799).expect("in range"));
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).unwrap_or_default()
}

/// Now as [`rfc3339_millis`].
pub fn now_rfc3339() -> String {
    rfc3339_millis(now_ms())
}

/// A source of wall-clock time, for code whose decisions depend on it.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;

    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// A clock that moves only when told: clones share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn at_ms(ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn test_rfc3339_millis() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(1_796_190_161_123), "2026-12-02T05:42:41.123Z");
        assert_eq!(rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.000Z");
        assert!(now_rfc3339().starts_with("20"));
    }

    #[test]
    fn test_clocks() {
        let before = now_ms();
        assert!(SystemClock.now_ms() >= before);
        assert_eq!(SystemClock.now_secs(), now_ms() / 1000);
        let c = ManualClock::at_ms(1_500);
        let shared = c.clone();
        c.advance(Duration::from_millis(2_600));
        assert_eq!(shared.now_ms(), 4_100);
        assert_eq!(shared.now_secs(), 4);
        shared.set_ms(0);
        assert_eq!(c.now_ms(), 0);
    }
}
