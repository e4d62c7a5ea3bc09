//! A value that is being rotated: the current one, and the previous one until an overlap ends.
//!
//! Why an overlap: when a key rotates, requests signed with the old key are still in flight
//! (tokens already handed to browsers, upstream calls signed by a service that has not switched
//! yet, other instances that refresh later). Accepting both for a while means no request fails;
//! refusing the old one after the overlap means a leaked old key stops working.
//!
//! New work always uses [`Rotating::current`]; checks use [`Rotating::accepted`]. A second
//! rotation during an overlap replaces the previous value: as with SignalR's two access keys,
//! at most two values are valid at once. Time is `tokio::time::Instant`, so tests can pause it.

use std::time::Duration;

use tokio::time::Instant;

/// The current value, and the one it replaced while the overlap lasts.
#[derive(Clone, PartialEq, Eq)]
pub struct Rotating<T> {
    current: T,
    previous: Option<(T, Instant)>,
}

impl<T> Rotating<T> {
    /// A value with nothing before it.
    pub fn new(current: T) -> Self {
        Rotating { current, previous: None }
    }

    /// The value to use for anything new (signing, calling out).
    pub fn current(&self) -> &T {
        &self.current
    }

    /// The previous value, while its overlap lasts at `now`.
    pub fn previous(&self, now: Instant) -> Option<&T> {
        self.previous.as_ref().filter(|(_, until)| now < *until).map(|(v, _)| v)
    }

    /// When the previous value stops being accepted, if one is still pending.
    pub fn overlap_ends(&self) -> Option<Instant> {
        self.previous.as_ref().map(|(_, until)| *until)
    }

    /// The values a check accepts at `now`: the current one first, then the previous one
    /// while its overlap lasts.
    pub fn accepted(&self, now: Instant) -> impl Iterator<Item = &T> {
        std::iter::once(&self.current).chain(self.previous(now))
    }

    /// `next` becomes current; the old current stays accepted until `now + overlap`.
    pub fn rotate(&mut self, next: T, now: Instant, overlap: Duration) {
        let old = std::mem::replace(&mut self.current, next);
        self.previous = (!overlap.is_zero()).then(|| (old, now + overlap));
    }

    /// The same rotation state over a value derived from each side (a parsed key from a
    /// connection string), with the same overlap deadline.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Rotating<U> {
        Rotating { current: f(&self.current), previous: self.previous.as_ref().map(|(v, until)| (f(v), *until)) }
    }

    /// Like [`Rotating::map`], for derivations that can fail: an error on the current value is
    /// returned, an unusable previous value is simply no longer accepted.
    pub fn try_map<U, E>(&self, mut f: impl FnMut(&T) -> Result<U, E>) -> Result<Rotating<U>, E> {
        let current = f(&self.current)?;
        let previous = self.previous.as_ref().and_then(|(v, until)| Some((f(v).ok()?, *until)));
        Ok(Rotating { current, previous })
    }
}

impl<T> std::fmt::Debug for Rotating<T> {
    /// Shows the shape only: the values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotating").field("previous_pending", &self.previous.is_some()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLAP: Duration = Duration::from_secs(600);

    fn accepted(r: &Rotating<&'static str>, now: Instant) -> Vec<&'static str> {
        r.accepted(now).copied().collect()
    }

    #[tokio::test(start_paused = true)]
    async fn test_overlap_accepts_both_then_only_the_new() {
        let start = Instant::now();
        let mut r = Rotating::new("old");
        assert_eq!(accepted(&r, start), ["old"]);
        assert_eq!(r.overlap_ends(), None);

        r.rotate("new", start, OVERLAP);
        assert_eq!(*r.current(), "new");
        assert_eq!(accepted(&r, start), ["new", "old"]);
        assert_eq!(accepted(&r, start + OVERLAP - Duration::from_millis(1)), ["new", "old"]);
        assert_eq!(accepted(&r, start + OVERLAP), ["new"]);
        assert_eq!(r.overlap_ends(), Some(start + OVERLAP));

        tokio::time::advance(OVERLAP + Duration::from_secs(1)).await;
        assert_eq!(accepted(&r, Instant::now()), ["new"]);
        assert_eq!(r.previous(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn test_second_rotation_drops_the_oldest() {
        let t0 = Instant::now();
        let mut r = Rotating::new("a");
        r.rotate("b", t0, OVERLAP);
        r.rotate("c", t0 + Duration::from_secs(10), OVERLAP);
        assert_eq!(accepted(&r, t0 + Duration::from_secs(10)), ["c", "b"]);
        assert_eq!(r.overlap_ends(), Some(t0 + Duration::from_secs(10) + OVERLAP));
    }

    #[tokio::test(start_paused = true)]
    async fn test_zero_overlap_switches_at_once() {
        let mut r = Rotating::new(1);
        r.rotate(2, Instant::now(), Duration::ZERO);
        assert_eq!(r.accepted(Instant::now()).copied().collect::<Vec<_>>(), [2]);
    }

    #[tokio::test(start_paused = true)]
    async fn test_map_and_try_map_keep_the_deadline() {
        let t0 = Instant::now();
        let mut r = Rotating::new("k1=1".to_string());
        r.rotate("k2=2".to_string(), t0, OVERLAP);
        let parsed = r.map(|s| s.len());
        assert_eq!(parsed.overlap_ends(), r.overlap_ends());
        assert_eq!(parsed.accepted(t0).count(), 2);

        let ok = r.try_map(|s| s.split_once('=').map(|(_, v)| v.to_string()).ok_or("bad")).unwrap();
        assert_eq!(ok.accepted(t0).cloned().collect::<Vec<_>>(), ["2", "1"]);

        r.rotate("broken".to_string(), t0, OVERLAP);
        assert_eq!(r.try_map(|s| s.split_once('=').map(|_| ()).ok_or("bad")).unwrap_err(), "bad");
        let mut r2 = Rotating::new("broken".to_string());
        r2.rotate("k=3".to_string(), t0, OVERLAP);
        let only_new = r2.try_map(|s| s.split_once('=').map(|(_, v)| v.to_string()).ok_or("bad")).unwrap();
        assert_eq!(only_new.accepted(t0).cloned().collect::<Vec<_>>(), ["3"]);
    }

    #[test]
    fn test_debug_hides_values() {
        let r = Rotating::new("secret-value");
        assert!(!format!("{r:?}").contains("secret-value"));
    }
}
