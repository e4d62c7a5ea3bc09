//! The rolling counters the dashboard reads, and the two documents that hold them.
//!
//! Counters are summed in each process and merged into shared documents by the recorder
//! about once a second (one read and one conditional write per document), so the store sees
//! a handful of writes per second per instance however busy the instance is:
//!
//! - `counters/rates`: a ring of per-minute buckets for the last hour ([`RatesDoc`]): the rated
//!   counters and a negotiate-latency histogram per minute. Gives `lastMinute`, `lastHour`,
//!   `errorsLastMinute`, p50/p95. Kept until deleted (one small document).
//! - `counters/day-YYYY-MM-DD` (UTC day): today's totals ([`DayDoc`]): every counter, including
//!   items pushed per marketplace, orders, revenue, analytics drops. Expires with analytics.
//!
//! Names are stable strings: they are stored, and the dashboard snapshot is built from them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The rolling-counter collection.
pub const COLLECTION: &str = "counters";
/// Id of the per-minute ring.
pub const RATES_ID: &str = "rates";
/// Minutes kept in the ring: an hour and the minute in progress.
pub const RING_MINUTES: u64 = 61;

/// A counter. `name()` is the stored key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Negotiate requests answered (any status).
    Negotiate,
    /// Negotiate requests answered with an error status (4xx/5xx).
    NegotiateErrors,
    /// Hub method invocations handled.
    HubMethods,
    /// Hub method invocations refused or failed.
    HubMethodErrors,
    /// Sync runs started.
    Syncs,
    /// Sync runs failed.
    SyncErrors,
    /// Items pushed to one marketplace.
    ItemsPushed(String),
    /// Orders received.
    Orders,
    /// Revenue in minor units (kuruş, cents): integers, so sums never drift.
    RevenueMinor,
    /// Admin dashboard broadcasts sent.
    Broadcasts,
    /// Analytics events or presence updates that could not be written (buffer full).
    AnalyticsDropped,
}

/// Counters that also get per-minute rates.
pub const RATED: [Counter; 6] = [
    Counter::Negotiate,
    Counter::NegotiateErrors,
    Counter::HubMethods,
    Counter::HubMethodErrors,
    Counter::Syncs,
    Counter::SyncErrors,
];

impl Counter {
    pub fn name(&self) -> String {
        match self {
            Counter::Negotiate => "negotiate".into(),
            Counter::NegotiateErrors => "negotiateErrors".into(),
            Counter::HubMethods => "hubMethods".into(),
            Counter::HubMethodErrors => "hubMethodErrors".into(),
            Counter::Syncs => "syncs".into(),
            Counter::SyncErrors => "syncErrors".into(),
            Counter::ItemsPushed(m) => format!("itemsPushed.{m}"),
            Counter::Orders => "orders".into(),
            Counter::RevenueMinor => "revenueMinor".into(),
            Counter::Broadcasts => "broadcasts".into(),
            Counter::AnalyticsDropped => "analyticsDropped".into(),
        }
    }

    fn is_rated(&self) -> bool {
        RATED.contains(self)
    }
}

/// Upper bounds (ms) of the latency histogram's buckets; the last bucket is open-ended.
pub const LATENCY_BOUNDS_MS: [f64; 15] =
    [0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// One minute's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    /// Negotiate latency histogram: counts per [`LATENCY_BOUNDS_MS`] bucket (+1 open bucket).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<u64>,
}

impl Minute {
    fn merge(&mut self, other: &Minute) {
        for (k, v) in &other.counts {
            *self.counts.entry(k.clone()).or_default() += v;
        }
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }
}

/// `counters/rates`: minute buckets keyed by Unix minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RatesDoc {
    #[serde(default)]
    pub minutes: BTreeMap<u64, Minute>,
}

impl RatesDoc {
    /// Adds `delta`'s minutes and forgets minutes older than the ring.
    pub fn merge(&mut self, delta: &RatesDoc, now_minute: u64) {
        for (m, minute) in &delta.minutes {
            self.minutes.entry(*m).or_default().merge(minute);
        }
        let oldest = now_minute.saturating_sub(RING_MINUTES - 1);
        self.minutes.retain(|m, _| *m >= oldest);
    }

    /// Sum of `counter` over the `minutes` minutes ending with `now_minute` (inclusive).
    pub fn sum(&self, counter: &Counter, now_minute: u64, minutes: u64) -> u64 {
        let name = counter.name();
        let from = now_minute.saturating_sub(minutes.saturating_sub(1));
        self.minutes.range(from..=now_minute).filter_map(|(_, m)| m.counts.get(&name)).sum()
    }

    /// Count over the 60 seconds before `now_ms`: the minute in progress plus the part of the
    /// previous minute still inside the window (sliding-window estimate, rounded).
    pub fn last_60s(&self, counter: &Counter, now_ms: u64) -> u64 {
        let minute = now_ms / 60_000;
        let current = self.sum(counter, minute, 1);
        let previous = if minute == 0 { 0 } else { self.sum(counter, minute - 1, 1) };
        let previous_share = (60_000 - now_ms % 60_000) as f64 / 60_000.0;
        current + (previous as f64 * previous_share).round() as u64
    }

    /// Rates of one pair of counters: the last 60 seconds, and the last hour (60 minute buckets).
    pub fn rate(&self, total: &Counter, errors: &Counter, now_ms: u64) -> Rate {
        Rate {
            last_minute: self.last_60s(total, now_ms),
            last_hour: self.sum(total, now_ms / 60_000, 60),
            errors_last_minute: self.last_60s(errors, now_ms),
        }
    }

    /// Negotiate latency percentile over the last `minutes` minutes, from bucket bounds
    /// (the upper bound of the bucket holding the percentile). `None` without samples.
    pub fn latency_percentile(&self, p: f64, now_minute: u64, minutes: u64) -> Option<f64> {
        let from = now_minute.saturating_sub(minutes.saturating_sub(1));
        let mut hist = vec![0u64; LATENCY_BOUNDS_MS.len() + 1];
        for (_, m) in self.minutes.range(from..=now_minute) {
            for (a, b) in hist.iter_mut().zip(&m.latency) {
                *a += b;
            }
        }
        percentile(&hist, p)
    }
}

/// Percentile from a histogram over [`LATENCY_BOUNDS_MS`]; the open bucket reports twice the last bound.
pub fn percentile(hist: &[u64], p: f64) -> Option<f64> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(
                LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2.0),
            );
        }
    }
    None
}

/// Index of the histogram bucket for `d`.
pub fn latency_bucket(d: Duration) -> usize {
    let ms = d.as_secs_f64() * 1000.0;
    LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// Per-minute rates of one activity, as the dashboard shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    pub last_minute: u64,
    pub last_hour: u64,
    pub errors_last_minute: u64,
}

/// `counters/day-YYYY-MM-DD`: the day's totals by counter name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayDoc {
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
}

impl DayDoc {
    pub fn merge(&mut self, delta: &DayDoc) {
        for (k, v) in &delta.counts {
            *self.counts.entry(k.clone()).or_default() += v;
        }
    }

    pub fn get(&self, counter: &Counter) -> u64 {
        self.counts.get(&counter.name()).copied().unwrap_or(0)
    }
}

/// Id of the day document for a Unix time in ms (UTC day).
pub fn day_id(at_ms: u64) -> String {
    let date =
        time::OffsetDateTime::from_unix_timestamp((at_ms / 1000) as i64).map(|t| t.date()).unwrap_or(time::Date::MIN);
    format!("day-{date}")
}

/// Counts summed in one process since the last flush.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deltas {
    pub rates: RatesDoc,
    /// Per day id, so a flush that straddles midnight credits the right day.
    pub days: BTreeMap<String, DayDoc>,
}

impl Deltas {
    pub fn add(&mut self, counter: &Counter, n: u64, at_ms: u64) {
        if n == 0 {
            return;
        }
        let name = counter.name();
        if counter.is_rated() {
            *self.rates.minutes.entry(at_ms / 60_000).or_default().counts.entry(name.clone()).or_default() += n;
        }
        *self.days.entry(day_id(at_ms)).or_default().counts.entry(name).or_default() += n;
    }

    pub fn observe_latency(&mut self, d: Duration, at_ms: u64) {
        let minute = self.rates.minutes.entry(at_ms / 60_000).or_default();
        if minute.latency.is_empty() {
            minute.latency = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        }
        minute.latency[latency_bucket(d)] += 1;
    }

    /// Adds a histogram of latency samples (as counted by the recorder's shards).
    pub fn add_latency_histogram(&mut self, hist: &[u64], at_ms: u64) {
        if hist.iter().all(|n| *n == 0) {
            return;
        }
        let minute = self.rates.minutes.entry(at_ms / 60_000).or_default();
        if minute.latency.len() < LATENCY_BOUNDS_MS.len() + 1 {
            minute.latency.resize(LATENCY_BOUNDS_MS.len() + 1, 0);
        }
        for (a, b) in minute.latency.iter_mut().zip(hist) {
            *a += b;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rates.minutes.is_empty() && self.days.is_empty()
    }

    /// Puts back deltas that could not be written, so the next flush retries them.
    pub fn restore(&mut self, failed: Deltas, now_minute: u64) {
        self.rates.merge(&failed.rates, now_minute);
        for (day, doc) in failed.days {
            self.days.entry(day).or_default().merge(&doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rates_ring_and_windows() {
        let mut d = Deltas::default();
        let now = 1_700_000_000_000u64;
        let minute = now / 60_000;
        d.add(&Counter::Negotiate, 5, now);
        d.add(&Counter::NegotiateErrors, 1, now);
        d.add(&Counter::Negotiate, 7, now - 30 * 60_000);
        d.add(&Counter::Negotiate, 100, now - 90 * 60_000);
        let mut doc = RatesDoc::default();
        doc.merge(&d.rates, minute);
        assert_eq!(
            doc.rate(&Counter::Negotiate, &Counter::NegotiateErrors, minute * 60_000 + 59_999),
            Rate { last_minute: 5, last_hour: 12, errors_last_minute: 1 }
        );
        assert!(doc.minutes.len() == 2, "minutes outside the ring are forgotten");
        // 30 s into the next minute, half of this minute still counts.
        let next = (minute + 1) * 60_000 + 30_000;
        assert_eq!(doc.last_60s(&Counter::Negotiate, next), 3);
        let day = &d.days[&day_id(now)];
        assert_eq!(day.get(&Counter::Negotiate), 112, "the 90-minutes-old count is still today's");
    }

    #[test]
    fn test_items_and_day_ids() {
        assert_eq!(day_id(1_700_000_000_000), "day-2023-11-14");
        assert_eq!(Counter::ItemsPushed("trendyol".into()).name(), "itemsPushed.trendyol");
        let mut d = Deltas::default();
        d.add(&Counter::ItemsPushed("n11".into()), 3, 0);
        assert!(d.rates.minutes.is_empty(), "items are daily totals, not rated");
    }

    #[test]
    fn test_latency_percentiles() {
        let mut d = Deltas::default();
        for ms in [0.2, 0.4, 0.9, 0.9, 1.5, 4.0, 4.0, 4.0, 9.0, 2000.0] {
            d.observe_latency(Duration::from_secs_f64(ms / 1000.0), 60_000);
        }
        let mut doc = RatesDoc::default();
        doc.merge(&d.rates, 1);
        assert_eq!(doc.latency_percentile(50.0, 1, 5), Some(2.0));
        assert_eq!(doc.latency_percentile(95.0, 1, 5), Some(2000.0));
        assert_eq!(doc.latency_percentile(50.0, 100, 5), None);
    }
}
