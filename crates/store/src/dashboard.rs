//! What the dashboard snapshot needs from the store, in a handful of point reads.
//!
//! `presence/totals`, `counters/rates`, `counters/day-<today>` and the six
//! `marketplace-status/<name>` documents: nine point reads of small documents, issued
//! concurrently, whatever the number of events stored. Nothing here scans.

use meschain_model::money::{self, Money};
use serde::Serialize;

use crate::counters::{self, Counter, DayDoc, Rate, RatesDoc};
use crate::doc;
use crate::presence::{self, HubCount};
use crate::status::{self, MarketplaceStatus};
use crate::{Store, StoreError};

/// Minutes of latency samples behind the percentiles: long enough to have samples on a quiet
/// system, short enough to show a regression within minutes.
pub const LATENCY_WINDOW_MINUTES: u64 = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubConnections {
    pub hub: String,
    pub connections: u64,
    pub users: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    pub negotiate: Rate,
    pub hub_methods: Rate,
    pub syncs: Rate,
}

/// The store's part of the dashboard snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardData {
    /// In the order of the hubs asked for.
    pub hubs: Vec<HubConnections>,
    /// In the order of the marketplaces asked for; absent documents read as idle.
    pub marketplaces: Vec<MarketplaceStatus>,
    pub rates: Rates,
    pub negotiate_p50_ms: Option<f64>,
    pub negotiate_p95_ms: Option<f64>,
    /// Today's (UTC) totals.
    pub today: DayDoc,
}

impl DashboardData {
    /// Nothing known yet: no connections, every marketplace idle, no rates.
    pub fn empty(hubs: &[&str], marketplaces: &[&str]) -> Self {
        let zero = Rate::default();
        DashboardData {
            hubs: hubs.iter().map(|h| HubConnections { hub: h.to_string(), connections: 0, users: 0 }).collect(),
            marketplaces: marketplaces.iter().map(|m| MarketplaceStatus::idle(m)).collect(),
            rates: Rates { negotiate: zero, hub_methods: zero, syncs: zero },
            negotiate_p50_ms: None,
            negotiate_p95_ms: None,
            today: DayDoc::default(),
        }
    }

    pub fn orders_today(&self) -> u64 {
        self.today.get(&Counter::Orders)
    }

    /// Revenue in major units (from integer minor units), exact.
    pub fn revenue_today(&self) -> Money {
        money::from_minor_units(self.today.get(&Counter::RevenueMinor))
    }

    pub fn analytics_dropped_today(&self) -> u64 {
        self.today.get(&Counter::AnalyticsDropped)
    }
}

/// Reads everything the snapshot needs. Any failed read fails the whole: the caller reports
/// the store down rather than a half-true snapshot.
pub async fn read(
    store: &dyn Store,
    hubs: &[&str],
    marketplaces: &[&str],
    now_ms: u64,
) -> Result<DashboardData, StoreError> {
    let day_id = counters::day_id(now_ms);
    let statuses = futures_util::future::try_join_all(marketplaces.iter().map(|m| status::get(store, m)));
    let (presence, rates, today, statuses) = tokio::try_join!(
        presence::totals(store),
        doc::get_typed::<RatesDoc>(store, counters::COLLECTION, counters::RATES_ID),
        doc::get_typed::<DayDoc>(store, counters::COLLECTION, &day_id),
        statuses,
    )?;
    let rates = rates.map(|v| v.value).unwrap_or_default();
    let minute = now_ms / 60_000;
    let count = |c: HubCount| (c.connections.max(0) as u64, c.users.max(0) as u64);
    Ok(DashboardData {
        hubs: hubs
            .iter()
            .map(|h| {
                let (connections, users) = count(presence.hub(h));
                HubConnections { hub: h.to_string(), connections, users }
            })
            .collect(),
        marketplaces: marketplaces
            .iter()
            .zip(statuses)
            .map(|(m, s)| s.map(|v| v.value).unwrap_or_else(|| MarketplaceStatus::idle(m)))
            .collect(),
        rates: Rates {
            negotiate: rates.rate(&Counter::Negotiate, &Counter::NegotiateErrors, now_ms),
            hub_methods: rates.rate(&Counter::HubMethods, &Counter::HubMethodErrors, now_ms),
            syncs: rates.rate(&Counter::Syncs, &Counter::SyncErrors, now_ms),
        },
        negotiate_p50_ms: rates.latency_percentile(50.0, minute, LATENCY_WINDOW_MINUTES),
        negotiate_p95_ms: rates.latency_percentile(95.0, minute, LATENCY_WINDOW_MINUTES),
        today: today.map(|v| v.value).unwrap_or_default(),
    })
}
