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

use std::sync::Arc;

use serde_json::Value;

use meschain_functions_protocol::{Context, Escaped, InvocationRequest, TriggerFailure};
use meschain_model::clock::Clock;
use meschain_model::{client_methods, groups};
use meschain_signalr::rest::Operation;
use meschain_store::{Counter, Event, EventKind, Recorder};

use crate::dashboard::{self, Built, Snapshots};
use crate::hubs::Hub;
use crate::signalr_rest::SignalRRest;

/// The timer binding's name in `admin-broadcast/function.json`.
pub const TIMER_BINDING: &str = "timer";
/// The client handler the snapshot is sent to.
pub const TARGET: &str = client_methods::UPDATE_ADMIN_DASHBOARD;
/// The client handler of the per-metric updates.
pub const METRICS_TARGET: &str = client_methods::METRICS_UPDATE;

/// What `admin-broadcast` reads (the snapshot's sources), where it sends (SignalR's REST API),
/// what it writes (analytics), and its clock.
pub struct Deps {
    snapshots: Arc<Snapshots>,
    rest: Arc<SignalRRest>,
    recorder: Recorder,
    clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(snapshots: Arc<Snapshots>, rest: Arc<SignalRRest>, recorder: Recorder, clock: Arc<dyn Clock>) -> Self {
        Deps { snapshots, rest, recorder, clock }
    }
}

pub async fn run(deps: &Deps, ctx: &mut Context, envelope: &InvocationRequest) -> Result<(), TriggerFailure> {
    let timer = envelope.binding(TIMER_BINDING).map_err(|e| TriggerFailure::bad_input(e.to_string()))?;
    let Value::Object(timer) = timer else {
        return Err(TriggerFailure::bad_input("binding \"timer\" must be a TimerInfo object".into()));
    };
    if timer.get("IsPastDue").and_then(Value::as_bool) == Some(true) {
        ctx.log("timer is past due: broadcasting a current snapshot");
    }

    let now = deps.clock.now_ms();
    let Built { snapshot, store_error } = deps.snapshots.build(now).await;
    if let Some(e) = store_error {
        ctx.log(format_args!("store unavailable, broadcasting the last known numbers: {e}"));
    }

    let op = Operation::SendToGroup { group: groups::ADMINS, excluded: &[] };
    if let Err(e) = deps.rest.send(Hub::Admin.name(), op, TARGET, std::slice::from_ref(&snapshot)).await {
        let message = format!("SignalR service unreachable, dashboard not sent: {}", Escaped(&e.to_string()));
        ctx.log(message.clone());
        deps.recorder.record(Event::new(EventKind::Error, now).with_name("admin-broadcast").with_detail(&message));
        return Err(TriggerFailure::unavailable(message));
    }
    let updates = dashboard::metric_updates(&snapshot);
    let sends = updates.iter().map(|(group, update)| {
        let op = Operation::SendToGroup { group, excluded: &[] };
        deps.rest.send(Hub::Dashboard.name(), op, METRICS_TARGET, std::slice::from_ref(update))
    });
    let failed = futures_util::future::join_all(sends).await.into_iter().filter(Result::is_err).count();
    deps.recorder.add(Counter::Broadcasts, 1);
    deps.recorder.record(
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
    ctx.log(format_args!("dashboard snapshot sent to admins and {} metric groups", updates.len()));
    Ok(())
}
