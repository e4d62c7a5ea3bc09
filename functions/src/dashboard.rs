//! The admin dashboard snapshot (`updateAdminDashboard`) and the per-metric updates
//! (`metricsUpdate`), built from the store's reads, the recorder's stats and dependency health.
//!
//! [`admin_snapshot`] is pure: it turns inputs into the JSON the dashboard page is built on
//! (the fields README's "The admin dashboard" lists), so every field and the size bound are unit-tested without I/O. Kept
//! under 2 KB: Azure SignalR bills each 2 KB of a message as one message, per recipient.
//! [`Snapshots`] gathers those inputs (the store read, the SignalR health check) for the two
//! functions that send a snapshot, `admin-broadcast` on its timer and the `requestDashboardUpdate`
//! admin command of `connection-events`, so neither reaches into the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meschain_model::groups;
use meschain_model::hubs::Hub;
use meschain_model::marketplace::Marketplace;
use meschain_secrets::Secrets;
use meschain_store::dashboard::DashboardData;
use meschain_store::{Counter, Recorder, RecorderStats, Store, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::signalr_rest::SignalRRest;

/// Azure SignalR's billing unit; the snapshot must fit in one.
pub const MAX_SNAPSHOT_BYTES: usize = 2048;
/// Longest health `detail` and marketplace `lastError` carried: the 2 KB bound holds with all
/// six marketplaces failed and every dependency down (the full texts are in the logs and in
/// the `marketplace-status` documents).
const MAX_TEXT: usize = 40;
const MAX_ERROR: usize = 28;

pub use meschain_model::health::HealthStatus;

/// One dependency's health as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub status: HealthStatus,
    pub detail: String,
}

impl Health {
    pub fn new(status: HealthStatus, detail: impl Into<String>) -> Self {
        Health { status, detail: detail.into() }
    }
}

/// Everything a snapshot is built from.
pub struct Inputs<'a> {
    pub now_ms: u64,
    pub started_ms: u64,
    /// The store's data: fresh, or the last good read when the store is down (`data_at_ms`).
    pub data: Option<&'a DashboardData>,
    pub data_at_ms: Option<u64>,
    pub signalr: Health,
    pub store: Health,
    pub secrets: Health,
    pub analytics: RecorderStats,
    pub currency: &'a str,
}

fn short(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn health(h: &Health) -> Value {
    json!({ "status": h.status, "detail": short(&h.detail, MAX_TEXT) })
}

/// The admin snapshot.
pub fn admin_snapshot(i: &Inputs<'_>) -> Value {
    let empty = DashboardData::empty(&Hub::ALL.map(Hub::name), &Marketplace::ALL.map(Marketplace::name));
    let d = i.data.unwrap_or(&empty);
    let hubs: Vec<Value> =
        d.hubs.iter().map(|h| json!({ "hub": h.hub, "connections": h.connections, "users": h.users })).collect();
    let marketplaces: Vec<Value> = d
        .marketplaces
        .iter()
        .map(|m| {
            json!({
                "marketplace": m.marketplace,
                "status": m.status,
                "progress": m.progress,
                "lastSuccessAt": m.last_success_at,
                "itemsPushedToday": m.items_pushed_today.max(d.today.get(&Counter::ItemsPushed(m.marketplace.clone()))),
                "lastError": m.last_error.as_deref().map(|e| short(e, MAX_ERROR)),
            })
        })
        .collect();
    json!({
        "generatedAt": meschain_model::clock::rfc3339_millis(i.now_ms),
        "uptimeSeconds": i.now_ms.saturating_sub(i.started_ms) / 1000,
        "dataAt": i.data_at_ms.map(meschain_model::clock::rfc3339_millis),
        "connections": {
            "total": d.hubs.iter().map(|h| h.connections).sum::<u64>(),
            // A user on two hubs is counted on each: distinct users are per hub.
            "users": d.hubs.iter().map(|h| h.users).sum::<u64>(),
            "hubs": hubs,
        },
        "marketplaces": marketplaces,
        "rates": d.rates,
        "latency": { "negotiateP50Ms": d.negotiate_p50_ms, "negotiateP95Ms": d.negotiate_p95_ms },
        "health": { "signalr": health(&i.signalr), "store": health(&i.store), "secrets": health(&i.secrets) },
        "business": { "ordersToday": d.orders_today(), "revenueToday": d.revenue_today(), "currency": i.currency },
        "analytics": {
            "pending": i.analytics.pending,
            "dropped": i.analytics.dropped.max(d.analytics_dropped_today()),
        },
    })
}

/// One `metricsUpdate` per metric group `SubscribeToDashboard` offers: `(group, payload)`.
pub fn metric_updates(snapshot: &Value) -> Vec<(String, Value)> {
    let at = &snapshot["generatedAt"];
    groups::METRICS
        .iter()
        .filter_map(|metric| {
            let data = match *metric {
                "performance" => json!({ "rates": snapshot["rates"], "latency": snapshot["latency"], "connections": snapshot["connections"]["total"] }),
                "business" => snapshot["business"].clone(),
                "sync" => snapshot["marketplaces"].clone(),
                "orders" => json!({ "ordersToday": snapshot["business"]["ordersToday"], "revenueToday": snapshot["business"]["revenueToday"], "currency": snapshot["business"]["currency"] }),
                "inventory" => Value::Array(
                    snapshot["marketplaces"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| json!({ "marketplace": m["marketplace"], "itemsPushedToday": m["itemsPushedToday"] }))
                        .collect(),
                ),
                "errors" => json!({
                    "negotiate": snapshot["rates"]["negotiate"]["errorsLastMinute"],
                    "hubMethods": snapshot["rates"]["hubMethods"]["errorsLastMinute"],
                    "syncs": snapshot["rates"]["syncs"]["errorsLastMinute"],
                    "health": snapshot["health"],
                    "analytics": snapshot["analytics"],
                }),
                _ => return None,
            };
            Some((groups::metric(metric)?, json!({ "metric": metric, "generatedAt": at, "data": data })))
        })
        .collect()
}

/// The last good store read, so a tick with the store down still shows the latest numbers
/// (with `dataAt` saying how old they are).
#[derive(Default)]
pub struct DashboardCache(std::sync::Mutex<Option<(DashboardData, u64)>>);

impl DashboardCache {
    pub fn put(&self, data: DashboardData, at_ms: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((data, at_ms));
    }

    pub fn get(&self) -> Option<(DashboardData, u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Longest wait for the store's reads: a snapshot must not be held by a slow store.
const STORE_BUDGET: Duration = Duration::from_secs(2);

/// A snapshot, and why the store could not be read if it could not.
pub struct Built {
    pub snapshot: Value,
    pub store_error: Option<StoreError>,
}

/// What a snapshot is read from: the store, the SignalR service's health endpoint, the
/// recorder's and the secrets' own health, and the last good read (shown while the store is down).
pub struct Snapshots {
    store: Arc<dyn Store>,
    rest: Arc<SignalRRest>,
    recorder: Recorder,
    secrets: Secrets,
    cache: DashboardCache,
    /// When this process started (Unix ms), for `uptimeSeconds`.
    started_ms: u64,
    currency: String,
}

impl Snapshots {
    pub fn new(
        store: Arc<dyn Store>,
        rest: Arc<SignalRRest>,
        recorder: Recorder,
        secrets: Secrets,
        started_ms: u64,
        currency: String,
    ) -> Self {
        Snapshots { store, rest, recorder, secrets, cache: DashboardCache::default(), started_ms, currency }
    }

    /// Reads the store and checks SignalR (concurrently, the store within [`STORE_BUDGET`]) and
    /// builds the admin snapshot at `now`: fresh numbers, or the last good ones with
    /// `health.store` down.
    pub async fn build(&self, now: u64) -> Built {
        let started = Instant::now();
        let hubs = Hub::ALL.map(Hub::name);
        let marketplaces = Marketplace::ALL.map(Marketplace::name);
        let read = tokio::time::timeout(
            STORE_BUDGET,
            meschain_store::dashboard::read(&*self.store, &hubs, &marketplaces, now),
        );
        let (signalr_up, read) = tokio::join!(self.rest.healthy(), read);
        let kind = self.store.kind().as_str();
        let (store, store_error) = match read {
            Ok(Ok(data)) => {
                self.cache.put(data, now);
                let detail = format!("{kind}: read in {} ms", started.elapsed().as_millis());
                (Health::new(HealthStatus::Healthy, detail), None)
            }
            Ok(Err(e)) => (Health::new(HealthStatus::Down, format!("{kind}: {e}")), Some(e)),
            Err(_) => {
                let e = StoreError::unavailable(format!("no answer within {} ms", STORE_BUDGET.as_millis()));
                (Health::new(HealthStatus::Down, format!("{kind}: {e}")), Some(e))
            }
        };
        let signalr = if signalr_up {
            Health::new(HealthStatus::Healthy, "health endpoint answered 200")
        } else {
            // Whether a tick fails is decided by the send; a failed check alone only degrades.
            Health::new(HealthStatus::Degraded, "health endpoint did not answer 200")
        };
        let cached = self.cache.get();
        let snapshot = admin_snapshot(&Inputs {
            now_ms: now,
            started_ms: self.started_ms,
            data: cached.as_ref().map(|(d, _)| d),
            data_at_ms: cached.as_ref().map(|(_, at)| *at),
            signalr,
            store,
            secrets: self.secrets.health().into(),
            analytics: self.recorder.stats(),
            currency: &self.currency,
        });
        Built { snapshot, store_error }
    }
}

/// `health.secrets` is what the secrets layer (Key Vault references) reports.
impl From<meschain_secrets::SecretsHealth> for Health {
    fn from(h: meschain_secrets::SecretsHealth) -> Self {
        Health::new(h.status, h.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meschain_store::MarketplaceStatus;
    use meschain_store::status::SyncState;

    fn worst_case() -> DashboardData {
        let mut d = DashboardData::empty(&Hub::ALL.map(Hub::name), &Marketplace::ALL.map(Marketplace::name));
        for h in &mut d.hubs {
            (h.connections, h.users) = (1_000_000, 999_999);
        }
        for m in &mut d.marketplaces {
            *m = MarketplaceStatus {
                status: SyncState::Failed,
                progress: Some(100),
                last_success_at: Some("2026-12-02T06:00:00.000Z".into()),
                items_pushed_today: 123_456_789,
                last_error: Some("x".repeat(500)),
                sync_id: Some("0123456789abcdef0123456789abcdef".into()),
                ..MarketplaceStatus::idle(&m.marketplace)
            };
        }
        d.negotiate_p50_ms = Some(1000.0);
        d.negotiate_p95_ms = Some(2000.0);
        d
    }

    fn inputs(data: Option<&DashboardData>) -> Inputs<'_> {
        Inputs {
            now_ms: 1_764_655_200_000,
            started_ms: 1_764_655_000_000,
            data,
            data_at_ms: data.map(|_| 1_764_655_199_000),
            signalr: Health::new(HealthStatus::Healthy, "health endpoint answered 200"),
            store: Health::new(HealthStatus::Down, "y".repeat(300)),
            secrets: meschain_secrets::Secrets::empty().health().into(),
            analytics: RecorderStats { pending: 99_999, dropped: 12_345_678, ..Default::default() },
            currency: "TRY",
        }
    }

    #[test]
    fn test_every_field_and_under_2_kb_at_worst() {
        let d = worst_case();
        let s = admin_snapshot(&inputs(Some(&d)));
        let bytes = serde_json::to_vec(&s).unwrap().len();
        assert!(bytes < MAX_SNAPSHOT_BYTES, "{bytes} bytes: {s}");
        assert_eq!(s["generatedAt"], "2025-12-02T06:00:00.000Z");
        assert_eq!(s["uptimeSeconds"], 200);
        assert_eq!(s["connections"]["total"], 3_000_000);
        assert_eq!(s["connections"]["hubs"][2]["hub"], "MesChainDashboardHub");
        assert_eq!(s["marketplaces"].as_array().unwrap().len(), 6);
        assert_eq!(s["marketplaces"][0]["status"], "failed");
        assert_eq!(s["marketplaces"][0]["lastError"].as_str().unwrap().len(), MAX_ERROR);
        for rate in ["negotiate", "hubMethods", "syncs"] {
            for field in ["lastMinute", "lastHour", "errorsLastMinute"] {
                assert!(s["rates"][rate][field].is_u64(), "{rate}.{field}");
            }
        }
        assert_eq!(s["latency"]["negotiateP95Ms"], 2000.0);
        assert_eq!(s["health"]["store"]["status"], "down");
        assert_eq!(s["health"]["secrets"]["status"], "healthy");
        assert_eq!(s["business"]["currency"], "TRY");
        assert_eq!(s["analytics"]["dropped"], 12_345_678);
    }

    #[test]
    fn test_store_never_read_gives_zeros_and_idle() {
        let s = admin_snapshot(&inputs(None));
        assert_eq!(s["connections"]["total"], 0);
        assert_eq!(s["dataAt"], Value::Null);
        assert!(s["marketplaces"].as_array().unwrap().iter().all(|m| m["status"] == "idle" && m["progress"].is_null()));
        assert_eq!(s["latency"]["negotiateP50Ms"], Value::Null);
    }

    #[test]
    fn test_one_update_per_metric_group() {
        let d = worst_case();
        let updates = metric_updates(&admin_snapshot(&inputs(Some(&d))));
        let groups: Vec<&str> = updates.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(
            groups,
            groups::METRICS.map(|m| groups::metric(m).unwrap()).iter().map(String::as_str).collect::<Vec<_>>()
        );
        let (_, inventory) = updates.iter().find(|(g, _)| g == "metrics:inventory").unwrap();
        assert_eq!(inventory["data"][0]["itemsPushedToday"], 123_456_789);
        for (_, u) in &updates {
            assert!(serde_json::to_vec(u).unwrap().len() < MAX_SNAPSHOT_BYTES);
        }
    }
}
