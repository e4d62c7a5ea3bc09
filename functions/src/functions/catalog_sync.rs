//! `catalog-sync`: on `CATALOG_SYNC_SCHEDULE`, a changed-items stock sync and a prices sync per
//! configured marketplace, read from the store's catalogue, enqueued like any other request
//! (so `marketplace-sync` runs them with its leases and exactly-once batches).
//!
//! The timer is off unless `AzureWebJobs.catalog-sync.Disabled` is `false` (the host's own
//! switch: a timer needs a valid schedule even when off). A tick's sync ids are derived from
//! the tick's minute, so a retried tick enqueues the same syncs again and `marketplace-sync`
//! runs each once.

use std::sync::Arc;

use meschain_functions_protocol::{Context, InvocationRequest, TriggerFailure};
use meschain_model::clock::{self, Clock};
use meschain_model::marketplace::{Marketplace, SyncMode, SyncOperation, SyncRequest};

use crate::sync_runtime::SyncRuntime;

/// The timer binding's name in `catalog-sync/function.json`.
pub const TIMER_BINDING: &str = "timer";
/// The Service Bus output the requests are written to.
pub const SYNC_OUTPUT: &str = "syncRequests";
/// Who the requests name as their requester.
pub const REQUESTED_BY: &str = "catalog-sync";

/// What the function needs: the sync runtime (the catalogue, the connectors, and which
/// marketplaces to sync) and its clock.
pub struct Deps {
    sync: Arc<SyncRuntime>,
    clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(sync: Arc<SyncRuntime>, clock: Arc<dyn Clock>) -> Self {
        Deps { sync, clock }
    }
}

/// The requests of the tick at `now_ms`.
pub fn requests(marketplaces: &[Marketplace], now_ms: u64) -> Vec<SyncRequest> {
    let minute = clock::rfc3339_millis(now_ms - now_ms % 60_000);
    let stamp: String = minute[..16].chars().filter(char::is_ascii_digit).collect();
    let mut out = Vec::new();
    for m in marketplaces {
        for op in [SyncOperation::Inventory, SyncOperation::Prices] {
            let mut r = SyncRequest::new(*m, op, REQUESTED_BY);
            r.mode = Some(SyncMode::Changed);
            r.sync_id = Some(format!("catalog-{}-{}-{stamp}", m.name(), op.name()));
            out.push(r);
        }
    }
    out
}

pub async fn run(deps: &Deps, ctx: &mut Context, _payload: &InvocationRequest) -> Result<(), TriggerFailure> {
    let status = deps.sync.catalog_status();
    if !status.configured {
        // An enabled timer with nothing to read is a configuration mistake: fail, saying why.
        return Err(TriggerFailure::bad_input(format!("catalog-sync: {}", status.reason.unwrap_or_default())));
    }
    let marketplaces: Vec<Marketplace> = match &deps.sync.catalog_sync_marketplaces {
        Some(list) => list.clone(),
        None => Marketplace::ALL.into_iter().filter(|m| deps.sync.connector(m.name()).is_ok()).collect(),
    };
    if marketplaces.is_empty() {
        ctx.log("catalog-sync: no marketplace has a configured connector; nothing to enqueue");
        return Ok(());
    }
    let requests = requests(&marketplaces, deps.clock.now_ms());
    let outputs = ctx.outputs().map_err(|e| TriggerFailure::unavailable(e.to_string()))?;
    for r in &requests {
        outputs.push(SYNC_OUTPUT, serde_json::to_value(r).map_err(|e| TriggerFailure::bad_input(e.to_string()))?);
    }
    let names: Vec<&str> = marketplaces.iter().map(|m| m.name()).collect();
    ctx.log(format_args!("catalog-sync: {} changed-items syncs enqueued for {}", requests.len(), names.join(", ")));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_requests_of_a_tick() {
        let at = 1_796_190_161_123; // 2026-12-02T05:42:41.123Z
        let r = requests(&[Marketplace::Trendyol, Marketplace::N11], at);
        assert_eq!(r.len(), 4);
        let v = serde_json::to_value(&r[0]).unwrap();
        assert_eq!(
            (v["marketplace"].as_str(), v["operation"].as_str(), v["mode"].as_str()),
            (Some("trendyol"), Some("inventory"), Some("changed"))
        );
        assert_eq!(v["syncId"], "catalog-trendyol-inventory-202612020542");
        assert!(v.get("items").is_none() && v.get("itemsUrl").is_none());
        assert_eq!(r[3].sync_id.as_deref(), Some("catalog-n11-prices-202612020542"));
        // The same minute: the same syncs (a retried tick pushes nothing twice).
        assert_eq!(requests(&[Marketplace::Trendyol], at + 10_000)[0].sync_id, r[0].sync_id);
        assert_ne!(requests(&[Marketplace::Trendyol], at + 60_000)[0].sync_id, r[0].sync_id);
    }
}
