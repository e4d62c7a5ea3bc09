//! `marketplace-sync`: one delivery of a queued sync request.
//!
//! The request is checked first (every problem at once); an invalid one fails the invocation
//! with the reason, so the host redelivers it until it is dead-lettered with that reason, and
//! the admins get one `systemAlert`, on the first delivery only (`DeliveryCount` 1). A valid
//! one is run by [`meschain_marketplace::engine`], which owns exactly-once batches and
//! resumption; this module only adapts the host to it: the trigger payload in, progress and
//! results out to SignalR ([`reporter`]), and at the time budget a continuation message on
//! the same queue through the `continuation` output binding.

use std::sync::Arc;

use meschain_functions_protocol::{Context, InvocationRequest, TriggerFailure};
use meschain_marketplace::catalog;
use meschain_marketplace::engine::{Engine, EngineError, Options, Outcome, continuation_body};
use meschain_marketplace::request::{ItemsSpec, validate};
use meschain_model::clock::{self, Clock};
use meschain_store::{Recorder, Store};
use serde_json::json;
use tokio::time::Instant;

use crate::signalr_rest::SignalRRest;

pub mod reporter;

pub use crate::sync_runtime::SyncRuntime;

/// The Service Bus trigger's binding name in `marketplace-sync/function.json`.
pub const TRIGGER_BINDING: &str = "message";
/// The Service Bus output (same queue) continuation messages are written to.
pub const CONTINUATION_OUTPUT: &str = "continuation";

/// What `marketplace-sync` needs: its connectors and sync settings, the store syncs are kept
/// in, where progress goes (SignalR's REST API) and analytics (the recorder), and its clock.
pub struct Deps {
    runtime: Arc<SyncRuntime>,
    store: Arc<dyn Store>,
    recorder: Recorder,
    rest: Arc<SignalRRest>,
    clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(
        runtime: Arc<SyncRuntime>,
        store: Arc<dyn Store>,
        recorder: Recorder,
        rest: Arc<SignalRRest>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Deps { runtime, store, recorder, rest, clock }
    }
}

pub async fn run(deps: &Deps, ctx: &mut Context, envelope: &InvocationRequest) -> Result<(), TriggerFailure> {
    let started = Instant::now();
    let raw = envelope.binding(TRIGGER_BINDING).map_err(|e| TriggerFailure::bad_input(e.to_string()))?;
    let body = meschain_functions_protocol::envelope::decode_data(raw);
    let message_id = envelope.metadata_str("MessageId");
    let delivery = envelope.metadata_u64("DeliveryCount").unwrap_or(1);
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(deps.clock.now_ms()) * 1_000_000)
        .map_err(|e| TriggerFailure::unavailable(format!("clock out of range: {e}")))?;
    let plan = match validate(&body, message_id.as_deref(), now) {
        Ok(plan) => plan,
        Err(invalid) => return Err(refuse(deps, ctx, delivery, message_id.as_deref(), &invalid.to_string()).await),
    };
    if !ctx.can_write_outputs() {
        return Err(TriggerFailure::bad_input("marketplace-sync needs its continuation output binding".into()));
    }
    let rt = &deps.runtime;
    let connector = match rt.connector(plan.marketplace.name()) {
        Ok(c) => c,
        // A configuration problem, not the message's: fail so it waits in the dead-letter queue
        // for the settings to be fixed, and tell the admins once.
        Err(reason) => return Err(refuse(deps, ctx, delivery, message_id.as_deref(), &reason).await),
    };
    // A request without items reads the store's catalogue: refused like a connector without
    // settings when there is none (the dashboard says so before anyone clicks).
    let catalog = match &plan.items {
        ItemsSpec::Catalog(_) => match rt.catalog() {
            Ok(Some(catalog)) => Some(catalog),
            Ok(None) => {
                return Err(refuse(deps, ctx, delivery, message_id.as_deref(), catalog::settings::NOT_CONFIGURED).await);
            }
            Err(reason) => return Err(refuse(deps, ctx, delivery, message_id.as_deref(), &reason).await),
        },
        _ => None,
    };
    let reporter = reporter::Reporter::new(&deps.rest, deps.recorder.clone(), plan.marketplace, deps.clock.clone());
    let options =
        Options { lease_ttl: rt.lease_ttl, ..Options::new(ctx.invocation_id().to_string(), started + rt.budget) };
    let engine = Engine {
        store: deps.store.clone(),
        connector,
        reporter: Arc::new(reporter),
        http: rt.items_http.clone(),
        catalog,
        options,
        clock: deps.clock.clone(),
    };
    ctx.log(format_args!(
        "sync {} ({} {}), delivery {delivery}, continuation {}",
        plan.sync_id,
        plan.marketplace.name(),
        plan.operation.name(),
        plan.continuation
    ));
    match engine.run(&plan).await {
        Ok(Outcome::Continue) => {
            let next = continuation_body(&body, &plan);
            ctx.outputs().map_err(|e| TriggerFailure::unavailable(e.to_string()))?.push(CONTINUATION_OUTPUT, next);
            ctx.log(format_args!("sync {} continues in a new message", plan.sync_id));
            Ok(())
        }
        Ok(outcome) => {
            ctx.log(describe(&plan.sync_id, &outcome));
            if let Outcome::Failed(summary) = &outcome {
                // The dashboard shows the failed status; the admins also hear why, once.
                let alert = json!({
                    "severity": "error",
                    "source": "marketplace-sync",
                    "title": format!("{} {} sync failed", plan.marketplace.name(), plan.operation.name()),
                    "message": summary.last_error.as_deref().unwrap_or("unknown error"),
                    "syncId": plan.sync_id,
                    "at": clock::rfc3339_millis(deps.clock.now_ms()),
                });
                reporter::alert_admins(&deps.rest, alert).await;
            }
            Ok(())
        }
        Err(EngineError::Store(e)) => Err(TriggerFailure::unavailable(format!("sync store: {e}"))),
        Err(EngineError::Conflicting(reason)) => Err(refuse(deps, ctx, delivery, message_id.as_deref(), &reason).await),
    }
}

fn describe(sync_id: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed(s) => format!(
            "sync {sync_id} completed: {} items, {} failed, {} repeated batches, {} orders",
            s.processed, s.failed_items, s.repeated_batches, s.orders_imported
        ),
        Outcome::Failed(s) => {
            format!("sync {sync_id} failed: {}", s.last_error.as_deref().unwrap_or("unknown error"))
        }
        Outcome::AlreadyFinished(s) => format!("sync {sync_id} had already finished ({:?}); nothing to do", s.status),
        Outcome::RunningElsewhere => format!("sync {sync_id} is running in another delivery; nothing to do"),
        Outcome::Continue => format!("sync {sync_id} continues"),
    }
}

/// Fails the invocation with `reason`; on the first delivery, tells the admins.
async fn refuse(
    deps: &Deps,
    ctx: &mut Context,
    delivery: u64,
    message_id: Option<&str>,
    reason: &str,
) -> TriggerFailure {
    ctx.log(format_args!("sync request refused (delivery {delivery}): {reason}"));
    if delivery <= 1 {
        let alert = json!({
            "severity": "error",
            "source": "marketplace-sync",
            "title": "Sync request refused",
            "message": reason,
            "messageId": message_id,
            "at": clock::rfc3339_millis(deps.clock.now_ms()),
        });
        reporter::alert_admins(&deps.rest, alert).await;
        reporter::record_refused(&deps.recorder, reason, deps.clock.now_ms());
    }
    TriggerFailure::bad_input(reason.to_string())
}
