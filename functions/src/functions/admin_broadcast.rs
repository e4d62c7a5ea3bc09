//! `admin-broadcast`: on its timer, the dashboard snapshot to every admin in `admins`.
//!
//! One REST call per tick whatever the number of admins (a group send): the service fans it
//! out. A tick whose send fails is reported as a failed invocation, so the host's monitoring
//! shows it; the next tick sends a fresh snapshot, so nothing is retried here.

use serde_json::Value;

use meschain_functions_protocol::{Context, InvocationRequest, TriggerFailure};
use meschain_signalr::rest::Operation;

use super::connection_events::hub_methods::ADMINS_GROUP;
use crate::app::AppState;
use crate::hubs::Hub;

/// The timer binding's name in `admin-broadcast/function.json`.
pub const TIMER_BINDING: &str = "timer";
/// The client handler the snapshot is sent to.
pub const TARGET: &str = meschain_model::client_methods::UPDATE_ADMIN_DASHBOARD;

pub async fn run(state: &AppState, ctx: &mut Context, envelope: &InvocationRequest) -> Result<(), TriggerFailure> {
    let timer = envelope.binding(TIMER_BINDING).map_err(|e| TriggerFailure::bad_input(e.to_string()))?;
    let Value::Object(timer) = timer else {
        return Err(TriggerFailure::bad_input("binding \"timer\" must be a TimerInfo object".into()));
    };
    if timer.get("IsPastDue").and_then(Value::as_bool) == Some(true) {
        ctx.log("timer is past due: broadcasting a current snapshot");
    }
    let snapshot = crate::dashboard::snapshot(&state.presence, meschain_model::clock::now_ms());
    let op = Operation::SendToGroup { group: ADMINS_GROUP, excluded: &[] };
    state
        .rest
        .send(Hub::Admin.name(), op, TARGET, &[snapshot])
        .await
        .map_err(|e| TriggerFailure::unavailable(e.to_string()))?;
    ctx.log("dashboard snapshot sent to admins");
    Ok(())
}
