//! The request-path half of the recorder: counts kept in per-thread shards, drained by the
//! recorder's background task.
//!
//! Negotiate runs tens of thousands of times a second on two cores. A single locked buffer
//! (one mutex, a `String` per counter name, a formatted day id, an event per request) made
//! analytics cost a fifth of its throughput: the lock bounced between the cores and the
//! background task wrote one SQLite row per request. Here a request costs a few relaxed atomic
//! adds on its own thread's cache line, plus an uncontended per-shard lock to note who
//! negotiated (no allocation when that caller was already seen in this interval). The
//! background task swaps the shards to zero about once a second and turns them into the same
//! counter deltas and events as before: one `negotiate.ok` event per (hub, user) per interval,
//! whose `count` says how many times.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::counters::{Counter, LATENCY_BOUNDS_MS, latency_bucket};

/// Counters with a fixed slot (every counter but the per-marketplace ones).
const FIXED: [Counter; 10] = [
    Counter::Negotiate,
    Counter::NegotiateErrors,
    Counter::HubMethods,
    Counter::HubMethodErrors,
    Counter::Syncs,
    Counter::SyncErrors,
    Counter::Orders,
    Counter::RevenueMinor,
    Counter::Broadcasts,
    Counter::AnalyticsDropped,
];
const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The slot of `counter`, or `None` for counters with a name chosen at run time.
fn slot(counter: &Counter) -> Option<usize> {
    FIXED.iter().position(|c| c == counter)
}

/// Negotiations seen in one interval, per hub and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiations {
    /// Unix ms of the first one in the interval.
    pub first_at_ms: u64,
    pub count: u64,
    /// Slowest, in ms.
    pub max_duration_ms: u64,
}

/// Failed negotiations seen in one interval, per reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures {
    pub first_at_ms: u64,
    pub count: u64,
}

#[derive(Default)]
struct Seen {
    /// hub → user → negotiations. Nested so a lookup by `&str` needs no allocation.
    ok: HashMap<&'static str, HashMap<String, Negotiations>>,
    failed: HashMap<String, Failures>,
}

/// One thread's counters, on cache lines of their own so two cores never write the same one.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    counts: [AtomicU64; FIXED.len()],
    latency: [AtomicU64; LATENCY_BUCKETS],
    seen: Mutex<Seen>,
}

/// What one drain took out of the shards.
#[derive(Debug, Default, PartialEq)]
pub struct Drained {
    pub counts: Vec<(Counter, u64)>,
    /// Negotiate latency histogram over [`LATENCY_BOUNDS_MS`] (+1 open bucket); empty when none.
    pub latency: Vec<u64>,
    pub negotiated: Vec<(&'static str, String, Negotiations)>,
    pub failed: Vec<(String, Failures)>,
}

impl Drained {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.latency.is_empty() && self.negotiated.is_empty() && self.failed.is_empty()
    }
}

pub struct Tally {
    shards: Box<[Shard]>,
}

/// Which shard this thread uses: threads take shards in turn, once.
fn shard_index(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        if mine.get() == usize::MAX {
            mine.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        mine.get() % shards
    })
}

impl Default for Tally {
    fn default() -> Self {
        // More shards than cores, so Tokio's workers and the blocking pool rarely share one.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let n = (cores * 4).clamp(4, 64);
        Tally { shards: (0..n).map(|_| Shard::default()).collect() }
    }
}

impl Tally {
    fn shard(&self) -> &Shard {
        &self.shards[shard_index(self.shards.len())]
    }

    /// Adds `n` to a fixed counter; `false` if `counter` has no slot (the caller keeps it).
    pub fn add(&self, counter: &Counter, n: u64) -> bool {
        match slot(counter) {
            Some(i) => {
                self.shard().counts[i].fetch_add(n, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    pub fn observe_latency(&self, d: Duration) {
        self.shard().latency[latency_bucket(d)].fetch_add(1, Ordering::Relaxed);
    }

    /// A successful negotiate by `user_id` on `hub` at `now_ms`, taking `took`.
    pub fn negotiated(&self, hub: &'static str, user_id: &str, took: Duration, now_ms: impl FnOnce() -> u64) {
        let ms = took.as_millis() as u64;
        let mut seen = self.shard().seen.lock().unwrap_or_else(|p| p.into_inner());
        let users = seen.ok.entry(hub).or_default();
        match users.get_mut(user_id) {
            Some(n) => {
                n.count += 1;
                n.max_duration_ms = n.max_duration_ms.max(ms);
            }
            None => {
                users
                    .insert(user_id.to_string(), Negotiations { first_at_ms: now_ms(), count: 1, max_duration_ms: ms });
            }
        }
    }

    /// A refused negotiate, by its reason (the error's own words, never the input).
    pub fn negotiate_failed(&self, reason: &str, now_ms: impl FnOnce() -> u64) {
        let mut seen = self.shard().seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.failed.get_mut(reason) {
            Some(f) => f.count += 1,
            None => {
                seen.failed.insert(reason.to_string(), Failures { first_at_ms: now_ms(), count: 1 });
            }
        }
    }

    /// Takes everything counted so far, leaving the shards at zero.
    pub fn drain(&self) -> Drained {
        let mut counts = [0u64; FIXED.len()];
        let mut latency = [0u64; LATENCY_BUCKETS];
        let mut negotiated: HashMap<(&'static str, String), Negotiations> = HashMap::new();
        let mut failed: HashMap<String, Failures> = HashMap::new();
        for shard in &self.shards {
            for (sum, a) in counts.iter_mut().zip(&shard.counts) {
                *sum += a.swap(0, Ordering::Relaxed);
            }
            for (sum, a) in latency.iter_mut().zip(&shard.latency) {
                *sum += a.swap(0, Ordering::Relaxed);
            }
            let seen = std::mem::take(&mut *shard.seen.lock().unwrap_or_else(|p| p.into_inner()));
            for (hub, users) in seen.ok {
                for (user, n) in users {
                    negotiated
                        .entry((hub, user))
                        .and_modify(|m| {
                            m.first_at_ms = m.first_at_ms.min(n.first_at_ms);
                            m.count += n.count;
                            m.max_duration_ms = m.max_duration_ms.max(n.max_duration_ms);
                        })
                        .or_insert(n);
                }
            }
            for (reason, f) in seen.failed {
                failed
                    .entry(reason)
                    .and_modify(|m| {
                        m.first_at_ms = m.first_at_ms.min(f.first_at_ms);
                        m.count += f.count;
                    })
                    .or_insert(f);
            }
        }
        let mut negotiated: Vec<_> = negotiated.into_iter().map(|((hub, user), n)| (hub, user, n)).collect();
        negotiated.sort_by_key(|(_, _, n)| n.first_at_ms);
        let mut failed: Vec<_> = failed.into_iter().collect();
        failed.sort_by_key(|(_, f)| f.first_at_ms);
        Drained {
            counts: FIXED.iter().cloned().zip(counts).filter(|(_, n)| *n > 0).collect(),
            latency: if latency.iter().any(|n| *n > 0) { latency.to_vec() } else { Vec::new() },
            negotiated,
            failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_counts_from_many_threads_add_up_and_drain_to_zero() {
        let tally = std::sync::Arc::new(Tally::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let tally = tally.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        assert!(tally.add(&Counter::Negotiate, 1));
                        tally.observe_latency(Duration::from_micros(100));
                        tally.negotiated(
                            "MesChainAdminHub",
                            &format!("user{}", t % 2),
                            Duration::from_millis(i % 7),
                            || 1_000 + t,
                        );
                    }
                    tally.negotiate_failed("token expired", || 5);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!tally.add(&Counter::ItemsPushed("n11".into()), 1), "named at run time: no slot");
        let d = tally.drain();
        assert_eq!(d.counts, vec![(Counter::Negotiate, 8000)]);
        assert_eq!(d.latency[0], 8000);
        assert_eq!(d.latency.iter().sum::<u64>(), 8000);
        assert_eq!(d.negotiated.len(), 2);
        for (hub, user, n) in &d.negotiated {
            assert_eq!(*hub, "MesChainAdminHub");
            assert_eq!(n.count, 4000, "{user}");
            assert_eq!(n.max_duration_ms, 6);
        }
        let first: Vec<u64> = d.negotiated.iter().map(|(_, _, n)| n.first_at_ms).collect();
        assert_eq!(first, vec![1_000, 1_001], "earliest first time of each user, in order");
        assert_eq!(d.failed, vec![("token expired".to_string(), Failures { first_at_ms: 5, count: 8 })]);
        assert!(tally.drain().is_empty(), "a drain leaves nothing behind");
    }
}
