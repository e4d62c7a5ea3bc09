//! Calls a marketplace has answered, remembered by the digest of their exact body for a while.
//!
//! One engine batch may take several calls (Ozon: up to ten stock calls of 100 pairs; eBay:
//! bulk calls of 25 SKUs). If a later call fails transiently, the engine pushes the batch again;
//! the calls already answered are then served from here instead of being sent twice. Neither
//! marketplace has an idempotency key, and a repeat is not free: Ozon refuses a stock pair
//! updated less than 30 s ago and counts every price change, eBay counts every revision.
//! Per process, like the connectors' other limits.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

pub type BodyDigest = [u8; 32];

pub fn digest(body: &[u8]) -> BodyDigest {
    Sha256::digest(body).into()
}

/// Answers of recent calls, at most `capacity`, each kept for `ttl`.
#[derive(Debug)]
pub struct AnsweredCalls<T> {
    ttl: Duration,
    capacity: usize,
    by_digest: HashMap<BodyDigest, (Instant, T)>,
    order: VecDeque<BodyDigest>,
}

impl<T: Clone> AnsweredCalls<T> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        AnsweredCalls { ttl, capacity: capacity.max(1), by_digest: HashMap::new(), order: VecDeque::new() }
    }

    /// The answer of a call with this body, if it was answered within the ttl.
    pub fn get(&mut self, digest: &BodyDigest, now: Instant) -> Option<T> {
        self.expire(now);
        self.by_digest.get(digest).map(|(_, answer)| answer.clone())
    }

    pub fn put(&mut self, digest: BodyDigest, now: Instant, answer: T) {
        if self.by_digest.insert(digest, (now, answer)).is_none() {
            self.order.push_back(digest);
        }
        self.expire(now);
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            let live = self.by_digest.get(oldest).is_some_and(|(at, _)| now.duration_since(*at) < self.ttl);
            if live && self.order.len() <= self.capacity {
                break;
            }
            let oldest = self.order.pop_front().expect("front exists");
            self.by_digest.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn test_remembers_within_ttl_and_capacity() {
        let mut calls = AnsweredCalls::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        calls.put(digest(b"a"), t0, 1);
        assert_eq!(calls.get(&digest(b"a"), t0 + Duration::from_secs(9)), Some(1));
        assert_eq!(calls.get(&digest(b"a"), t0 + Duration::from_secs(10)), None, "expired");
        calls.put(digest(b"b"), t0, 2);
        calls.put(digest(b"c"), t0, 3);
        calls.put(digest(b"d"), t0, 4);
        assert_eq!(calls.len(), 2, "the oldest is dropped past the capacity");
        assert_eq!(calls.get(&digest(b"b"), t0), None);
        assert_eq!(calls.get(&digest(b"d"), t0), Some(4));
    }
}
