//! Client-side rate limits, one limiter per marketplace endpoint.
//!
//! Trendyol allows 50 requests per 10 s to the same endpoint and answers the 51st with 429.
//! The limiter keeps the exact rule (at most N starts in any window, a sliding log of start
//! times) rather than a smoothed rate, so a burst of N is allowed as the marketplace allows it;
//! and a 429's `Retry-After` pauses the whole endpoint, not just the request that got it, so
//! concurrent requests do not keep hitting a marketplace that asked us to wait. Those two needs
//! are why this is a few lines of our own and not `governor` (GCRA smooths the burst and has no
//! pause).
//!
//! Some marketplaces also limit changes per product (Ozon: one stock update per product and
//! warehouse every 30 s, 10 price changes per product per hour; eBay: 250 revisions per listing
//! per day). [`KeyedWindow`] keeps the same sliding log per key, so a connector can hold back
//! or refuse one item before the marketplace refuses it. It lives in the connector, so it is
//! per handler process.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use smallvec::SmallVec;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    /// Trendyol's documented limit: 50 requests per 10 s per endpoint.
    pub const TRENDYOL: RateLimit = RateLimit { requests: 50, per: Duration::from_secs(10) };

    /// Parses `N/SECONDS` (as in `TRENDYOL_RATE_LIMIT=50/10`).
    pub fn parse(s: &str) -> Result<RateLimit, String> {
        let (n, secs) = s.trim().split_once('/').ok_or_else(|| format!("{s:?} is not N/SECONDS"))?;
        let requests: u32 = n.trim().parse().map_err(|_| format!("{s:?}: N must be a positive integer"))?;
        let secs: u64 = secs.trim().parse().map_err(|_| format!("{s:?}: SECONDS must be a positive integer"))?;
        if requests == 0 || secs == 0 {
            return Err(format!("{s:?}: N and SECONDS must be positive"));
        }
        Ok(RateLimit { requests, per: Duration::from_secs(secs) })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.requests, self.per.as_secs())
    }
}

/// The marketplace counts a request when it arrives, we when it leaves: a start only leaves
/// our window this much after it left theirs, so network jitter cannot put N+1 in theirs.
fn margin(per: Duration) -> Duration {
    (per / 40).max(Duration::from_millis(250))
}

/// The pure bookkeeping of one endpoint's limit.
#[derive(Debug)]
pub struct Window {
    limit: RateLimit,
    /// The window we keep: the marketplace's plus a margin.
    span: Duration,
    starts: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Window {
    pub fn new(limit: RateLimit) -> Self {
        let span = limit.per + margin(limit.per);
        // Capacity grows with use: a high limit must not reserve memory it never needs.
        let capacity = (limit.requests as usize).min(1024);
        Window { limit, span, starts: VecDeque::with_capacity(capacity), paused_until: None }
    }

    /// Records a request starting at `now` if allowed; otherwise how long to wait.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(until - now);
            }
            self.paused_until = None;
        }
        while self.starts.front().is_some_and(|t| now.duration_since(*t) >= self.span) {
            self.starts.pop_front();
        }
        if self.starts.len() < self.limit.requests as usize {
            self.starts.push_back(now);
            return Ok(());
        }
        let oldest = *self.starts.front().expect("full window has a start");
        Err(self.span - now.duration_since(oldest))
    }

    /// Holds every request until `until` (a 429's `Retry-After`).
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

/// A shared limiter for one endpoint.
#[derive(Debug)]
pub struct RateLimiter {
    window: Mutex<Window>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter { window: Mutex::new(Window::new(limit)) }
    }

    /// Waits until a request may start.
    pub async fn acquire(&self) {
        loop {
            let wait = match self.window.lock().await.admit(Instant::now()) {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The marketplace asked us to wait: hold the endpoint for `after`.
    pub async fn pause_for(&self, after: Duration) {
        self.window.lock().await.pause_until(Instant::now() + after);
    }
}

/// The same rule per key (a SKU, a SKU and warehouse pair): at most `requests` changes of one
/// key in any `per`, plus the margin of [`Window`].
///
/// Kept per key for every SKU a sync touches (100,000 and more), so its storage is compact: the
/// key boxed, and the first change inline (most keys change once in a window; a `VecDeque` would
/// allocate room for four on its first push).
#[derive(Debug)]
pub struct KeyedWindow {
    limit: RateLimit,
    span: Duration,
    starts: HashMap<Box<str>, SmallVec<[Instant; 1]>>,
    /// Size of `starts` after the last sweep; the next sweep runs when it has doubled.
    swept_at_len: usize,
}

impl KeyedWindow {
    pub fn new(limit: RateLimit) -> Self {
        KeyedWindow { limit, span: limit.per + margin(limit.per), starts: HashMap::new(), swept_at_len: 1024 }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whether `key` may change at `now`; otherwise how long until it may.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(q) = self.starts.get(key) else { return Ok(()) };
        let live: Vec<&Instant> = q.iter().filter(|t| now.duration_since(**t) < self.span).collect();
        if live.len() < self.limit.requests as usize {
            return Ok(());
        }
        // The oldest live change must leave the window for one more to fit.
        let oldest = live[live.len() - self.limit.requests as usize];
        Err(self.span - now.duration_since(*oldest))
    }

    /// Records a change of `key` at `now` (whether or not [`KeyedWindow::check`] allowed it).
    pub fn record(&mut self, key: &str, now: Instant) {
        let span = self.span;
        // Looked up before inserting so that a known key costs no allocation.
        if !self.starts.contains_key(key) {
            self.starts.insert(key.into(), SmallVec::new());
        }
        let q = self.starts.get_mut(key).expect("inserted above");
        let left = q.iter().take_while(|t| now.duration_since(**t) >= span).count();
        q.drain(..left);
        q.push(now);
        if self.starts.len() >= self.swept_at_len * 2 {
            // Keys whose changes all left the window hold nothing worth keeping.
            self.starts.retain(|_, q| q.last().is_some_and(|t| now.duration_since(*t) < span));
            self.swept_at_len = self.starts.len().max(1024);
        }
    }

    /// Keys currently tracked (for tests and memory checks).
    pub fn tracked(&self) -> usize {
        self.starts.len()
    }
}

/// A token bucket: `rate` requests per second refilled continuously, at most `burst` at once.
/// Amazon's SP-API documents each operation's limit this way (a per-seller, per-application
/// bucket), so a sliding window of N per period would either waste its burst or overrun its rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub rate: f64,
    pub burst: u32,
}

/// The pure bookkeeping of one bucket.
#[derive(Debug)]
pub struct BucketState {
    limit: Bucket,
    tokens: f64,
    at: Instant,
}

impl BucketState {
    /// A full bucket, as the marketplace's is after a quiet period.
    pub fn new(limit: Bucket, now: Instant) -> Self {
        BucketState { limit, tokens: f64::from(limit.burst), at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.rate).min(f64::from(self.limit.burst));
        self.at = now;
    }

    fn until_one(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0) / self.limit.rate).min(86_400.0))
    }

    /// Takes a token at `now` if there is one; otherwise how long until there is.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.until_one())
        }
    }

    /// The marketplace said our bucket is empty (a 429 after a restart, or another client of the
    /// same seller): empty ours too, and say how long until the next token.
    pub fn drain(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens = 0.0;
        self.until_one()
    }
}

/// A shared token bucket for one operation.
#[derive(Debug)]
pub struct BucketLimiter {
    state: Mutex<BucketState>,
}

impl BucketLimiter {
    pub fn new(limit: Bucket) -> Self {
        BucketLimiter { state: Mutex::new(BucketState::new(limit, Instant::now())) }
    }

    /// Waits until a request may start.
    pub async fn acquire(&self) {
        loop {
            let wait = match self.state.lock().await.admit(Instant::now()) {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Empties the bucket after a throttling answer; returns the wait until the next token.
    pub async fn drain(&self) -> Duration {
        self.state.lock().await.drain(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse() {
        assert_eq!(RateLimit::parse("50/10").unwrap(), RateLimit::TRENDYOL);
        assert_eq!(RateLimit::TRENDYOL.to_string(), "50/10s");
        for bad in ["", "50", "0/10", "5/0", "x/1", "1/y"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn test_window_allows_burst_then_waits_for_oldest() {
        let mut w = Window::new(RateLimit { requests: 3, per: Duration::from_secs(10) });
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(w.admit(t0 + Duration::from_secs(i)).is_ok());
        }
        let span = Duration::from_millis(10_250);
        assert_eq!(w.admit(t0 + Duration::from_secs(4)), Err(span - Duration::from_secs(4)));
        assert!(w.admit(t0 + span).is_ok(), "the first start left the window (with the margin)");
        assert!(w.admit(t0 + span).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn test_pause_holds_every_request() {
        let mut w = Window::new(RateLimit::TRENDYOL);
        let t0 = Instant::now();
        w.pause_until(t0 + Duration::from_secs(2));
        w.pause_until(t0 + Duration::from_secs(1));
        assert_eq!(w.admit(t0), Err(Duration::from_secs(2)), "a shorter pause does not shorten a longer one");
        assert!(w.admit(t0 + Duration::from_secs(2)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn test_limiter_spaces_requests() {
        let limiter = RateLimiter::new(RateLimit { requests: 2, per: Duration::from_secs(1) });
        let t0 = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // 5 starts at 2 per second (plus the 250 ms margin): the fifth waits two windows.
        assert_eq!(Instant::now() - t0, Duration::from_millis(2 * 1250));
    }

    #[tokio::test(start_paused = true)]
    async fn test_keyed_window_limits_each_key_alone() {
        let mut w = KeyedWindow::new(RateLimit { requests: 2, per: Duration::from_secs(60) });
        let t0 = Instant::now();
        w.record("a", t0);
        w.record("a", t0 + Duration::from_secs(10));
        assert!(w.check("b", t0 + Duration::from_secs(10)).is_ok(), "another key is not limited");
        // Span 61.5 s (60 s plus the 1.5 s margin): the first change leaves it at t0 + 61.5 s.
        assert_eq!(w.check("a", t0 + Duration::from_secs(11)), Err(Duration::from_millis(50_500)));
        assert!(w.check("a", t0 + Duration::from_millis(61_500)).is_ok());
        w.record("a", t0 + Duration::from_millis(61_500));
        assert!(w.check("a", t0 + Duration::from_millis(61_500)).is_err(), "two live changes again");
    }

    #[tokio::test(start_paused = true)]
    async fn test_keyed_window_forgets_idle_keys() {
        let mut w = KeyedWindow::new(RateLimit { requests: 1, per: Duration::from_secs(1) });
        let t0 = Instant::now();
        // The first sweep at 2,048 keys keeps them all (live); the next at 4,096 drops the idle.
        for i in 0..4095 {
            w.record(&format!("k{i}"), t0);
        }
        w.record("late", t0 + Duration::from_secs(5));
        assert_eq!(w.tracked(), 1, "expired keys were swept");
    }

    #[tokio::test(start_paused = true)]
    async fn test_bucket_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = BucketState::new(Bucket { rate: 0.5, burst: 3 }, t0);
        for _ in 0..3 {
            assert!(b.admit(t0).is_ok());
        }
        assert_eq!(b.admit(t0), Err(Duration::from_secs(2)), "one token every 2 s once the burst is spent");
        assert!(b.admit(t0 + Duration::from_secs(2)).is_ok());
        assert!(b.admit(t0 + Duration::from_secs(3)).is_err());
        assert!(b.admit(t0 + Duration::from_secs(60)).is_ok());
        assert!(b.admit(t0 + Duration::from_secs(60)).is_ok());
        assert!(b.admit(t0 + Duration::from_secs(60)).is_ok());
        assert!(b.admit(t0 + Duration::from_secs(60)).is_err(), "refills to the burst, never beyond");
    }

    #[tokio::test(start_paused = true)]
    async fn test_bucket_drain_waits_one_token() {
        let limiter = BucketLimiter::new(Bucket { rate: 2.0, burst: 15 });
        assert_eq!(limiter.drain().await, Duration::from_millis(500));
        let t0 = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
    }
}
