//! The store test suite, run against both implementations (tests/embedded.rs, tests/cosmos.rs).
//! Each case gets two handles `a` and `b` on one storage: two instances of the app.

use std::sync::Arc;
use std::time::Duration;

use meschain_store::dashboard;
use meschain_store::doc::{self, Retention};
use meschain_store::recorder::now_ms;
use meschain_store::status::{self, MarketplaceStatus, SyncState};
use meschain_store::{Counter, Event, EventKind, Precondition, Recorder, RecorderConfig, Store, StoreError};
use serde_json::json;

pub const HUBS: [&str; 3] = ["MesChainAdminHub", "MesChainMarketplaceHub", "MesChainDashboardHub"];
pub const MARKETPLACES: [&str; 6] = ["trendyol", "hepsiburada", "n11", "amazon", "ebay", "ozon"];

pub type Pair = (Arc<dyn Store>, Arc<dyn Store>);

fn manual(store: &Arc<dyn Store>, capacity: usize) -> Recorder {
    Recorder::unstarted(store.clone(), RecorderConfig { capacity, ..RecorderConfig::default() })
}

pub async fn documents_and_preconditions((a, b): Pair) {
    assert_eq!(a.get_doc("sync", "run-1").await.unwrap(), None);
    let e1 = a.put_doc("sync", "run-1", &json!({"batches": 0}), Precondition::Absent).await.unwrap();
    let again = b.put_doc("sync", "run-1", &json!({"batches": 9}), Precondition::Absent).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    let read = b.get_doc("sync", "run-1").await.unwrap().unwrap();
    assert_eq!((read.value.clone(), read.etag.clone()), (json!({"batches": 0}), e1.clone()));

    let e2 = b.put_doc("sync", "run-1", &json!({"batches": 1}), Precondition::Etag(e1.clone())).await.unwrap();
    assert_ne!(e1, e2);
    let stale = a.put_doc("sync", "run-1", &json!({"batches": 7}), Precondition::Etag(e1.clone())).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "a stale etag must lose: {stale:?}");
    assert_eq!(a.get_doc("sync", "run-1").await.unwrap().unwrap().value, json!({"batches": 1}));

    let e3 = a.put_doc("sync", "run-1", &json!({"batches": 2}), Precondition::Any).await.unwrap();
    assert!(matches!(a.delete_doc("sync", "run-1", Precondition::Etag(e2)).await, Err(StoreError::Conflict { .. })));
    assert!(a.delete_doc("sync", "run-1", Precondition::Etag(e3.clone())).await.unwrap());
    assert!(!a.delete_doc("sync", "run-1", Precondition::Any).await.unwrap());
    assert_eq!(a.get_doc("sync", "run-1").await.unwrap(), None);
    let gone = a.put_doc("sync", "run-1", &json!({}), Precondition::Etag(e3)).await;
    assert!(matches!(gone, Err(StoreError::Conflict { .. })), "replace of a deleted document: {gone:?}");

    for (collection, id) in [("sync", "a/b"), ("", "x"), ("sync", "q?"), ("sync", "")] {
        assert!(matches!(a.get_doc(collection, id).await, Err(StoreError::Invalid(_))), "{collection}/{id}");
    }
    let huge = json!({ "x": "y".repeat(doc::MAX_DOC_BYTES) });
    assert!(matches!(a.put_doc("sync", "big", &huge, Precondition::Any).await, Err(StoreError::Invalid(_))));

    // The typed marketplace status, as the sync engine writes it.
    assert_eq!(status::get(&*a, "ozon").await.unwrap(), None);
    let s = MarketplaceStatus {
        status: SyncState::Running,
        progress: Some(40),
        items_pushed_today: 12,
        sync_id: Some("s1".into()),
        updated_at: "2026-12-02T06:00:00Z".into(),
        ..MarketplaceStatus::idle("ozon")
    };
    status::put(&*a, &s, Precondition::Absent).await.unwrap();
    let raw = b.get_doc(status::COLLECTION, "ozon").await.unwrap().unwrap().value;
    assert_eq!(raw["status"], "running");
    assert_eq!(raw["progress"], 40);
    assert_eq!(raw["lastSuccessAt"], serde_json::Value::Null);
    assert_eq!(status::get(&*b, "ozon").await.unwrap().unwrap().value, s);

    // A connection's marketplace groups, joined on one instance and read on the other.
    use meschain_store::presence;
    presence::joined_group(&*a, HUBS[1], "conn/1", "marketplace:n11").await.unwrap();
    presence::joined_group(&*a, HUBS[1], "conn/1", "marketplace:n11").await.unwrap();
    presence::joined_group(&*b, HUBS[1], "conn/1", "marketplace:ozon").await.unwrap();
    assert_eq!(presence::groups_of(&*b, HUBS[1], "conn/1").await.unwrap(), ["marketplace:n11", "marketplace:ozon"]);
    assert!(presence::groups_of(&*a, HUBS[1], "conn/2").await.unwrap().is_empty());
}

/// Writers on two instances increment one document; none of the 40 updates is lost.
pub async fn concurrent_writers((a, b): Pair) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                doc::update_doc::<serde_json::Value, _>(&*store, "leases", "counter", Retention::Keep, |v| {
                    let n = v.and_then(|v| v["n"].as_u64()).unwrap_or(0);
                    Some(json!({ "n": n + 1 }))
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.get_doc("leases", "counter").await.unwrap().unwrap().value["n"], 40);
}

/// Events, counters and presence from two instances add up in one snapshot.
pub async fn events_counters_and_presence_from_two_instances((a, b): Pair) {
    let since = now_ms() - 1;
    let (ra, rb) = (manual(&a, 10_000), manual(&b, 10_000));
    for (i, r) in [&ra, &rb].into_iter().enumerate() {
        for n in 0..50u64 {
            r.record(Event::new(EventKind::Negotiated, now_ms()).with_hub(HUBS[0]).with_user(Some("alice")));
            r.add(Counter::Negotiate, 1);
            r.observe_negotiate_latency(Duration::from_micros(if n < 40 { 900 } else { 4_000 }));
        }
        r.add(Counter::NegotiateErrors, 2);
        r.record(Event::new(EventKind::SyncStarted, now_ms()).with_marketplace("n11").with_sync("s1"));
        r.add(Counter::Syncs, 1);
        r.add(Counter::HubMethods, 3);
        r.add(Counter::ItemsPushed("n11".into()), 25);
        r.add(Counter::Orders, 4);
        r.add(Counter::RevenueMinor, 12_345);
        // Alice on both instances (two tabs), bob on one, one anonymous dashboard viewer.
        r.connected(HUBS[0], &format!("alice-{i}"), Some("alice"));
        r.connected(HUBS[2], &format!("anon-{i}"), None);
    }
    ra.connected(HUBS[0], "bob-0", Some("bob"));
    ra.connected(HUBS[0], "bob-0", Some("bob")); // repeated event: counted once
    ra.flush().await.unwrap();
    rb.flush().await.unwrap();
    assert_eq!(ra.stats().written, 51);
    assert_eq!(a.count_events(None, since).await.unwrap(), 102);
    assert_eq!(b.count_events(Some(EventKind::Negotiated), since).await.unwrap(), 100);

    let d = dashboard::read(&*a, &HUBS, &MARKETPLACES, now_ms()).await.unwrap();
    assert_eq!((d.hubs[0].connections, d.hubs[0].users), (3, 2), "{:?}", d.hubs);
    assert_eq!((d.hubs[2].connections, d.hubs[2].users), (2, 0), "anonymous connections are not users");
    assert_eq!(d.rates.negotiate.last_hour, 100);
    assert_eq!(d.rates.negotiate.errors_last_minute, 4);
    assert!(d.rates.negotiate.last_minute >= 100 && d.rates.negotiate.last_minute <= 104, "{:?}", d.rates);
    assert_eq!((d.rates.syncs.last_hour, d.rates.hub_methods.last_hour), (2, 6));
    assert_eq!(d.negotiate_p50_ms, Some(1.0));
    assert_eq!(d.negotiate_p95_ms, Some(5.0));
    assert_eq!(d.today.get(&Counter::ItemsPushed("n11".into())), 50);
    assert_eq!((d.orders_today(), d.revenue_today()), (8, meschain_model::money::Money::new(24690, 2)));
    assert_eq!(d.marketplaces.len(), 6);
    assert!(d.marketplaces.iter().all(|m| m.status == SyncState::Idle && m.progress.is_none()));

    // A disconnect seen by the other instance; one that overtakes its connect is not undone.
    rb.disconnected(HUBS[0], "alice-0", Some("alice"));
    rb.disconnected(HUBS[0], "bob-0", Some("bob"));
    rb.disconnected(HUBS[0], "carol-0", Some("carol"));
    rb.flush().await.unwrap();
    ra.connected(HUBS[0], "carol-0", Some("carol"));
    ra.flush().await.unwrap();
    let d = dashboard::read(&*b, &HUBS, &MARKETPLACES, now_ms()).await.unwrap();
    assert_eq!((d.hubs[0].connections, d.hubs[0].users), (1, 1), "{:?}", d.hubs);
}

/// A full buffer drops and counts; the count itself reaches the store.
pub async fn buffer_overflow_is_counted((a, _b): Pair) {
    let r = manual(&a, 100);
    for _ in 0..150 {
        r.record(Event::new(EventKind::HubMethodCalled, now_ms()).with_name("JoinMarketplace"));
    }
    r.connected(HUBS[1], "c-over", Some("m"));
    let s = r.stats();
    assert_eq!((s.pending, s.dropped), (100, 51));
    r.flush().await.unwrap();
    let s = r.stats();
    assert_eq!((s.pending, s.dropped, s.written), (0, 51, 100));
    let d = dashboard::read(&*a, &HUBS, &MARKETPLACES, now_ms()).await.unwrap();
    assert!(d.analytics_dropped_today() >= 51, "{:?}", d.today);
}

/// Analytics off: nothing is buffered, counted or written.
pub async fn disabled_recorder_records_nothing((a, _b): Pair) {
    let r = Recorder::disabled(a.clone());
    r.record(Event::new(EventKind::Negotiated, now_ms()));
    r.add(Counter::Negotiate, 1);
    r.connected(HUBS[0], "x", Some("y"));
    r.flush().await.unwrap();
    assert_eq!(r.stats(), meschain_store::RecorderStats::default());
}

/// Recording is memory only: a synchronous call that returns with nothing written (the store
/// is not touched until a flush), and the counters are summed, not queued.
pub async fn recording_does_not_wait_for_the_store((a, _b): Pair) {
    let since = now_ms() - 1;
    let r = manual(&a, 200_000);
    for _ in 0..100_000 {
        r.record(Event::new(EventKind::Negotiated, now_ms()));
        r.add(Counter::Negotiate, 1);
    }
    let s = r.stats();
    assert_eq!((s.pending, s.written, s.dropped), (100_000, 0, 0));
    assert_eq!(a.count_events(None, since).await.unwrap(), 0);
}

/// The background task writes by itself, and shutdown writes what is left.
pub async fn background_flush_and_shutdown((a, _b): Pair) {
    let r =
        Recorder::start(a.clone(), RecorderConfig { flush_interval: Duration::from_millis(50), ..Default::default() });
    let since = now_ms() - 1;
    for _ in 0..10 {
        r.record(Event::new(EventKind::BroadcastSent, now_ms()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while r.stats().written < 10 {
        assert!(tokio::time::Instant::now() < deadline, "not written in the background: {:?}", r.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        r.record(Event::new(EventKind::BroadcastSent, now_ms()));
    }
    let s = r.shutdown(Duration::from_secs(10)).await;
    assert_eq!((s.pending, s.written), (0, 15));
    assert_eq!(a.count_events(Some(EventKind::BroadcastSent), since).await.unwrap(), 15);
}

/// Analytics retention follows the TTL setting.
pub async fn ttl_setting((a, _b): Pair, expected: Duration) {
    assert_eq!(a.analytics_ttl(), expected);
}
