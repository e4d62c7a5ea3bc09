//! What watchers are told about a sync, and how often.
//!
//! `marketplaceSyncUpdate` goes to every browser following the marketplace and to the admins:
//! the first and the last always, at most four a second in between (SignalR bills per message
//! and a dashboard cannot show more), always in order. [`Throttle`] holds back the latest
//! update rather than dropping it, so a sync that stalls still shows where it stopped.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::connector::ItemResult;

/// At most this many progress messages per second between the first and the last.
pub const MAX_PER_SECOND: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Queued,
    Running,
    Completed,
    Failed,
}

/// The `marketplaceSyncUpdate` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub sync_id: String,
    pub marketplace: String,
    pub operation: String,
    pub status: SyncStatus,
    pub processed: u64,
    pub total: Option<u64>,
    /// 0-100.
    pub progress: u8,
    pub failed_items: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub requested_by: Option<String>,
    /// Set on the update sent when the marketplace throttled us and the sync waits (a 429 with
    /// `Retry-After`, or the connector's own documented limit): the dashboard shows "waiting N s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

/// A wait the marketplace imposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    /// Whole seconds, rounded up.
    pub seconds: u64,
    /// When the sync goes on (RFC 3339).
    pub until: String,
    /// The marketplace's answer, as the connector words it.
    pub reason: String,
}

/// Percent done, rounded down so 100 means finished.
pub fn percent(processed: u64, total: Option<u64>) -> u8 {
    match total {
        Some(0) => 100,
        Some(t) => ((processed.min(t) as u128 * 100) / t as u128) as u8,
        None => 0,
    }
}

/// The `inventoryUpdate` payload: one batch's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReport {
    pub sync_id: String,
    pub marketplace: String,
    pub operation: String,
    pub batch: u64,
    pub items: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Pushed but with no readable result (a repeat refused as a duplicate, or results that
    /// never came).
    pub unconfirmed: u64,
    /// The failed items with reasons, at most [`BatchReport::MAX_FAILURES`].
    pub failures: Vec<ItemResult>,
}

impl BatchReport {
    pub const MAX_FAILURES: usize = 100;
}

/// Spaces progress messages; pure, driven by the caller's clock.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last_sent: Option<Instant>,
    held: Option<Progress>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { interval: Duration::from_secs(1) / MAX_PER_SECOND, last_sent: None, held: None }
    }
}

impl Throttle {
    /// The first or last update: always sent, and it replaces anything held.
    pub fn always(&mut self, now: Instant, update: Progress) -> Progress {
        self.last_sent = Some(now);
        self.held = None;
        update
    }

    /// An update in between: returned if it may be sent now, else held (replacing older).
    pub fn offer(&mut self, now: Instant, update: Progress) -> Option<Progress> {
        if self.last_sent.is_none_or(|t| now.duration_since(t) >= self.interval) {
            self.last_sent = Some(now);
            self.held = None;
            Some(update)
        } else {
            self.held = Some(update);
            None
        }
    }

    /// The held update, once it may be sent.
    pub fn due(&mut self, now: Instant) -> Option<Progress> {
        if self.held.is_some() && self.last_sent.is_none_or(|t| now.duration_since(t) >= self.interval) {
            self.last_sent = Some(now);
            return self.held.take();
        }
        None
    }

    /// When the held update becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.as_ref().map(|_| self.last_sent.map_or_else(Instant::now, |t| t + self.interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(processed: u64) -> Progress {
        Progress {
            sync_id: "s".into(),
            marketplace: "trendyol".into(),
            operation: "inventory".into(),
            status: SyncStatus::Running,
            processed,
            total: Some(100),
            progress: percent(processed, Some(100)),
            failed_items: 0,
            started_at: "t".into(),
            finished_at: None,
            requested_by: None,
            waiting: None,
        }
    }

    #[test]
    fn test_percent() {
        assert_eq!(percent(0, Some(5000)), 0);
        assert_eq!(percent(4999, Some(5000)), 99);
        assert_eq!(percent(5000, Some(5000)), 100);
        assert_eq!(percent(7, Some(0)), 100);
        assert_eq!(percent(7, None), 0);
        assert_eq!(percent(u64::MAX, Some(u64::MAX)), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn test_at_most_four_per_second_in_order_last_always() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let mut sent = vec![t.always(t0, update(0)).processed];
        // 100 updates over one second, 10 ms apart.
        for i in 1..=100u64 {
            let now = t0 + Duration::from_millis(10 * i);
            if let Some(u) = t.due(now) {
                sent.push(u.processed);
            }
            if let Some(u) = t.offer(now, update(i)) {
                sent.push(u.processed);
            }
        }
        let last = t.always(t0 + Duration::from_millis(1005), update(100));
        sent.push(last.processed);
        assert!(sent.len() <= 1 + 4 + 1, "{sent:?}");
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "in order: {sent:?}");
        assert_eq!((sent[0], *sent.last().unwrap()), (0, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn test_held_update_is_sent_when_due() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        t.always(t0, update(0));
        assert!(t.offer(t0 + Duration::from_millis(100), update(5)).is_none());
        assert_eq!(t.next_due(), Some(t0 + Duration::from_millis(250)));
        assert!(t.due(t0 + Duration::from_millis(200)).is_none());
        assert_eq!(t.due(t0 + Duration::from_millis(250)).unwrap().processed, 5);
        assert!(t.due(t0 + Duration::from_millis(900)).is_none(), "sent once");
    }
}
