//! Where a sync's news goes: SignalR for the people watching (the marketplace's group on
//! `MesChainMarketplaceHub` and `admins` on `MesChainAdminHub`), the store's recorder for
//! analytics events and the dashboard's counters. A failed send is logged and the sync goes
//! on: watchers miss an update, the marketplace still gets every item.

use async_trait::async_trait;
use meschain_marketplace::connector::Order;
use meschain_marketplace::engine::{self, EventKind as SyncEventKind, SyncEvent};
use meschain_marketplace::progress::{BatchReport, Progress};
use meschain_model::client_methods::{INVENTORY_UPDATE, MARKETPLACE_SYNC_UPDATE, ORDER_NOTIFICATION, SYSTEM_ALERT};
use meschain_model::groups::ADMINS;
use meschain_model::marketplace::Marketplace;
use meschain_model::money;
use meschain_signalr::rest::Operation;
use meschain_store::{Counter, Event, EventKind, Recorder};
use serde_json::Value;

use crate::hubs::Hub;
use crate::signalr_rest::SignalRRest;

pub struct Reporter<'a> {
    rest: &'a SignalRRest,
    recorder: Recorder,
    marketplace: Marketplace,
}

impl<'a> Reporter<'a> {
    pub fn new(rest: &'a SignalRRest, recorder: Recorder, marketplace: Marketplace) -> Self {
        Reporter { rest, recorder, marketplace }
    }

    /// Sends to the marketplace's followers, then to the admins (in this order, awaited, so
    /// updates arrive in the order they were made).
    async fn send(&self, target: &str, value: Value) {
        let group = self.marketplace.group();
        for (hub, group) in [(Hub::Marketplace, group.as_str()), (Hub::Admin, ADMINS)] {
            let op = Operation::SendToGroup { group, excluded: &[] };
            if let Err(e) = self.rest.send(hub.name(), op, target, std::slice::from_ref(&value)).await {
                tracing::warn!(hub = hub.name(), group, target, error = %e, "sync update not sent");
            }
        }
    }
}

#[async_trait]
impl engine::Reporter for Reporter<'_> {
    async fn progress(&self, update: &Progress) {
        self.send(MARKETPLACE_SYNC_UPDATE, serde_json::to_value(update).unwrap_or_default()).await;
    }

    async fn batch(&self, report: &BatchReport) {
        self.send(INVENTORY_UPDATE, serde_json::to_value(report).unwrap_or_default()).await;
    }

    async fn order(&self, marketplace: &str, order: &Order) {
        self.recorder.add(Counter::Orders, 1);
        // Minor units (kuruş, cents), as the store counts revenue; a negative total (a refund
        // some marketplaces report as an order) adds nothing rather than wrapping.
        self.recorder.add(Counter::RevenueMinor, money::to_minor_units(order.total).unwrap_or(0));
        let mut value = serde_json::to_value(order).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("marketplace".into(), Value::from(marketplace));
        }
        self.send(ORDER_NOTIFICATION, value).await;
    }

    async fn event(&self, event: &SyncEvent) {
        let kind = match event.kind {
            SyncEventKind::Started => {
                self.recorder.add(Counter::Syncs, 1);
                EventKind::SyncStarted
            }
            SyncEventKind::Resumed | SyncEventKind::Continued => EventKind::SyncStarted,
            SyncEventKind::Batch => {
                let pushed = event.items.saturating_sub(event.failed);
                self.recorder.add(Counter::ItemsPushed(event.marketplace.clone()), pushed);
                EventKind::SyncBatch
            }
            SyncEventKind::Completed => EventKind::SyncCompleted,
            SyncEventKind::Failed => {
                self.recorder.add(Counter::SyncErrors, 1);
                EventKind::SyncFailed
            }
        };
        let mut e = Event::new(kind, meschain_store::recorder::now_ms())
            .with_marketplace(&event.marketplace)
            .with_sync(&event.sync_id)
            .with_name(match event.kind {
                SyncEventKind::Resumed => "resumed",
                SyncEventKind::Continued => "continued",
                _ => &event.operation,
            })
            .with_count(event.items);
        if let Some(error) = &event.error {
            e = e.with_detail(error);
        }
        self.recorder.record(e);
    }
}

/// One `systemAlert` to the admins.
pub async fn alert_admins(rest: &SignalRRest, alert: Value) {
    let op = Operation::SendToGroup { group: ADMINS, excluded: &[] };
    if let Err(e) = rest.send(Hub::Admin.name(), op, SYSTEM_ALERT, &[alert]).await {
        tracing::warn!(error = %e, "systemAlert not sent");
    }
}

/// A refused request, for analytics and the error rate.
pub fn record_refused(recorder: &Recorder, reason: &str) {
    recorder.add(Counter::SyncErrors, 1);
    recorder.record(Event::new(EventKind::SyncFailed, meschain_store::recorder::now_ms()).with_detail(reason));
}
