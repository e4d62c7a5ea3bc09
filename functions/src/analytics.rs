//! Analytics events: what happened, for the dashboard and for later analysis.
//!
//! Functions record events through [`AnalyticsSink`]; recording never fails the caller's work
//! (analytics are not worth refusing a connection over), so implementations log their own
//! failures. The Cosmos DB implementation arrives with its issue; [`InMemoryAnalytics`] keeps
//! a bounded window of recent events and serves tests and the local stack.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// One analytics event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsEvent {
    /// e.g. `connection.connected`, `connection.disconnected`, `sync.requested`.
    pub kind: &'static str,
    pub hub: String,
    pub connection_id: Option<String>,
    pub user_id: Option<String>,
    /// Unix milliseconds.
    pub at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[async_trait::async_trait]
pub trait AnalyticsSink: Send + Sync {
    async fn record(&self, event: AnalyticsEvent);
}

/// Keeps the latest `capacity` events in memory.
pub struct InMemoryAnalytics {
    capacity: usize,
    events: Mutex<VecDeque<AnalyticsEvent>>,
}

impl InMemoryAnalytics {
    pub fn new(capacity: usize) -> Self {
        InMemoryAnalytics { capacity, events: Mutex::new(VecDeque::with_capacity(capacity.min(1024))) }
    }

    pub fn recent(&self) -> Vec<AnalyticsEvent> {
        self.events.lock().map(|e| e.iter().cloned().collect()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl AnalyticsSink for InMemoryAnalytics {
    async fn record(&self, event: AnalyticsEvent) {
        if let Ok(mut events) = self.events.lock() {
            if events.len() == self.capacity {
                events.pop_front();
            }
            events.push_back(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> AnalyticsEvent {
        AnalyticsEvent {
            kind: "connection.connected",
            hub: "h".into(),
            connection_id: None,
            user_id: None,
            at_ms: n,
            detail: None,
        }
    }

    #[tokio::test]
    async fn test_bounded_window() {
        let a = InMemoryAnalytics::new(2);
        for n in 0..3 {
            a.record(event(n)).await;
        }
        assert_eq!(a.recent().iter().map(|e| e.at_ms).collect::<Vec<_>>(), vec![1, 2]);
    }
}
