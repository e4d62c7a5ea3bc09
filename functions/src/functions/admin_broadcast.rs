//! `admin-broadcast`: on its timer, the dashboard snapshot to every admin (`updateAdminDashboard`
//! to group `admins` on MesChainAdminHub) and one `metricsUpdate` to each metric group of
//! MesChainDashboardHub.
//!
//! The numbers come from the store (nine point reads, whatever the traffic), so every instance
//! shows the same ones. The store read and the SignalR health check run concurrently, each
//! within a budget. A store that is down does not stop the tick: the last good numbers go out
//! with `health.store` down. A SignalR service that cannot be reached fails the invocation:
//! there is nowhere to send the snapshot, and the host's monitoring should see it. One group
//! send per audience whatever its size: the service fans it out. Nothing is retried here; the
//! next tick sends a fresh snapshot.

use std::time::{Duration, Instant};

use serde_json::Value;

use meschain_functions_protocol::{Context, Escaped, InvocationRequest, TriggerFailure};
use meschain_model::{client_methods, clock, groups};
use meschain_signalr::rest::Operation;
use meschain_store::{Counter, Event, EventKind, StoreError};

use crate::app::AppState;
use crate::dashboard::{self, Health, HealthStatus, Inputs};
use crate::hubs::Hub;
use crate::marketplace::Marketplace;

/// The timer binding's name in `admin-broadcast/function.json`.
pub const TIMER_BINDING: &str = "timer";
/// The client handler the snapshot is sent to.
pub const TARGET: &str = client_methods::UPDATE_ADMIN_DASHBOARD;
/// The client handler of the per-metric updates.
pub const METRICS_TARGET: &str = client_methods::METRICS_UPDATE;
/// Longest wait for the store's reads: a tick must not be held by a slow store.
const STORE_BUDGET: Duration = Duration::from_secs(2);

pub async fn run(state: &AppState, ctx: &mut Context, envelope: &InvocationRequest) -> Result<(), TriggerFailure> {
    let timer = envelope.binding(TIMER_BINDING).map_err(|e| TriggerFailure::bad_input(e.to_string()))?;
    let Value::Object(timer) = timer else {
        return Err(TriggerFailure::bad_input("binding \"timer\" must be a TimerInfo object".into()));
    };
    if timer.get("IsPastDue").and_then(Value::as_bool) == Some(true) {
        ctx.log("timer is past due: broadcasting a current snapshot");
    }

    let now = clock::now_ms();
    let Built { snapshot, store_error } = build_snapshot(state, now).await;
    if let Some(e) = store_error {
        ctx.log(format!("store unavailable, broadcasting the last known numbers: {e}"));
    }

    let op = Operation::SendToGroup { group: groups::ADMINS, excluded: &[] };
    if let Err(e) = state.rest.send(Hub::Admin.name(), op, TARGET, std::slice::from_ref(&snapshot)).await {
        let message = format!("SignalR service unreachable, dashboard not sent: {}", Escaped(&e.to_string()));
        ctx.log(message.clone());
        state.recorder.record(Event::new(EventKind::Error, now).with_name("admin-broadcast").with_detail(&message));
        return Err(TriggerFailure::unavailable(message));
    }
    let updates = dashboard::metric_updates(&snapshot);
    let sends = updates.iter().map(|(group, update)| {
        let op = Operation::SendToGroup { group, excluded: &[] };
        state.rest.send(Hub::Dashboard.name(), op, METRICS_TARGET, std::slice::from_ref(update))
    });
    let failed = futures_util::future::join_all(sends).await.into_iter().filter(Result::is_err).count();
    state.recorder.add(Counter::Broadcasts, 1);
    state.recorder.record(
        Event::new(EventKind::BroadcastSent, now)
            .with_hub(Hub::Admin.name())
            .with_name("updateAdminDashboard")
            .with_count(updates.len() as u64 + 1),
    );
    if failed > 0 {
        let message = format!("{failed} of {} metricsUpdate sends failed", updates.len());
        ctx.log(message.clone());
        return Err(TriggerFailure::unavailable(message));
    }
    ctx.log(format!("dashboard snapshot sent to admins and {} metric groups", updates.len()));
    Ok(())
}

/// A snapshot, and why the store could not be read if it could not.
pub struct Built {
    pub snapshot: Value,
    pub store_error: Option<StoreError>,
}

/// Reads the store and checks SignalR (concurrently, the store within [`STORE_BUDGET`]) and
/// builds the admin snapshot: fresh numbers, or the last good ones with `health.store` down.
pub async fn build_snapshot(state: &AppState, now: u64) -> Built {
    let started = Instant::now();
    let hubs = Hub::ALL.map(Hub::name);
    let marketplaces = Marketplace::ALL.map(Marketplace::name);
    let read =
        tokio::time::timeout(STORE_BUDGET, meschain_store::dashboard::read(&*state.store, &hubs, &marketplaces, now));
    let (signalr_up, read) = tokio::join!(state.rest.healthy(), read);
    let kind = state.store.kind().as_str();
    let (store, store_error) = match read {
        Ok(Ok(data)) => {
            state.dashboard_cache.put(data, now);
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
        // Whether the tick fails is decided by the send; a failed check alone only degrades.
        Health::new(HealthStatus::Degraded, "health endpoint did not answer 200")
    };
    let cached = state.dashboard_cache.get();
    let catalog = state.sync.catalog_status();
    let snapshot = dashboard::admin_snapshot(&Inputs {
        now_ms: now,
        started_ms: state.started_ms,
        data: cached.as_ref().map(|(d, _)| d),
        data_at_ms: cached.as_ref().map(|(_, at)| *at),
        signalr,
        store,
        secrets: state.secrets.health().into(),
        analytics: state.recorder.stats(),
        currency: &state.currency,
        catalog: &catalog,
    });
    Built { snapshot, store_error }
}
