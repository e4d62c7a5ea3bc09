//! The one wall clock, and a manual clock for tests that need to control time.
//!
//! Code that only stamps "now" calls [`now_ms`] / [`now_secs`]. Code whose decisions depend on
//! time (expiry, rate limits, leases, cache ages) takes a [`SharedClock`] (production: the
//! default, [`SystemClock`]) so tests move time with a [`ManualClock`] instead of sleeping.
//!
//! Two kinds of time, and which to use where:
//! - *Decisions against wall time* ("is this older than N?", "may I fetch again?", timestamps
//!   written to the store) read a [`Clock`]. A test sets it, and the same test can still talk
//!   to real servers on loopback, because nothing else about time is faked.
//! - *Waiting* (`sleep`, `interval`, `timeout`) stays on tokio's timers. A test whose parts are
//!   all in-process pauses tokio time (`#[tokio::test(start_paused = true)]`, `advance`); that
//!   cannot be combined with real sockets, whose own timeouts would then fire at once.
//!
//! A wall clock can step backwards (NTP): [`Clock::elapsed_since`] then answers `None`, and
//! [`Clock::at_least_since`] answers `true`, so a cache refreshes (still rate limited from the
//! new reading) rather than freezing until the clock catches up.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    /// Time since `earlier_ms` (a reading of this clock); `None` if the clock is now behind it.
    fn elapsed_since(&self, earlier_ms: u64) -> Option<Duration> {
        self.now_ms().checked_sub(earlier_ms).map(Duration::from_millis)
    }

    /// Whether at least `d` has passed since `earlier_ms`; also `true` when the clock stepped
    /// back behind `earlier_ms` (see the module docs).
    fn at_least_since(&self, earlier_ms: u64, d: Duration) -> bool {
        self.elapsed_since(earlier_ms).is_none_or(|e| e >= d)
    }
}

/// The clock a component was given: cheap to clone, [`SystemClock`] by default, printable in
/// the `Debug` of option structs. Tests build one with `SharedClock::new(manual.clone())` and
/// keep the [`ManualClock`] to move it.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    pub fn new(clock: impl Clock) -> Self {
        SharedClock(Arc::new(clock))
    }

    pub fn system() -> Self {
        SharedClock::new(SystemClock)
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        SharedClock::system()
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedClock")
    }
}

impl Clock for SharedClock {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
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

    pub fn advance(&self, by: Duration) {
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

    #[test]
    fn test_shared_clock_follows_the_manual_clock_and_step_backs() {
        let manual = ManualClock::at_ms(10_000);
        let shared = SharedClock::new(manual.clone());
        assert_eq!(format!("{shared:?}"), "SharedClock");
        let mark = shared.now_ms();
        assert_eq!(shared.elapsed_since(mark), Some(Duration::ZERO));
        assert!(!shared.at_least_since(mark, Duration::from_secs(1)));
        manual.advance(Duration::from_millis(999));
        assert!(!shared.at_least_since(mark, Duration::from_secs(1)));
        manual.advance(Duration::from_millis(1));
        assert_eq!(shared.elapsed_since(mark), Some(Duration::from_secs(1)));
        assert!(shared.at_least_since(mark, Duration::from_secs(1)));
        // A step back: nothing is known to have passed, and waiting decisions let work through.
        manual.set_ms(5_000);
        assert_eq!(shared.elapsed_since(mark), None);
        assert!(shared.at_least_since(mark, Duration::from_secs(3600)));
        assert!(SharedClock::default().now_ms() >= mark);
    }
}
