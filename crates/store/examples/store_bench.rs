//! Store benchmark (run by bench/store.sh): events/s into a store, and the time to read one
//! dashboard snapshot with many events stored.
//!
//! `store_bench embedded DIR EVENTS` or `store_bench cosmos ENDPOINT EVENTS`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meschain_model::clock::now_ms;
use meschain_store::settings::CosmosSettings;
use meschain_store::{Counter, Event, EventKind, Recorder, RecorderConfig, Store, dashboard};

const HUBS: [&str; 3] = ["MesChainAdminHub", "MesChainMarketplaceHub", "MesChainDashboardHub"];
const MARKETPLACES: [&str; 6] = ["trendyol", "hepsiburada", "n11", "amazon", "ebay", "ozon"];

fn event(i: u64) -> Event {
    let kinds = [EventKind::Negotiated, EventKind::Connected, EventKind::HubMethodCalled, EventKind::Disconnected];
    Event::new(kinds[(i % 4) as usize], now_ms())
        .with_hub(HUBS[(i % 3) as usize])
        .with_connection(&format!("conn-{i}"))
        .with_user(Some(&format!("user-{}", i % 500)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (kind, target, events) = match args.as_slice() {
        [_, kind, target, events] => (kind.as_str(), target.clone(), events.parse::<u64>().expect("EVENTS")),
        _ => panic!("usage: store_bench embedded|cosmos DIR|ENDPOINT EVENTS"),
    };
    let ttl = Duration::from_secs(30 * 24 * 3600);
    let store: Arc<dyn Store> = match kind {
        "embedded" => Arc::new(meschain_store::embedded::EmbeddedStore::open(target.as_ref(), ttl).await.unwrap()),
        "cosmos" => Arc::new(
            meschain_store::cosmos::CosmosStore::open(
                &CosmosSettings {
                    endpoint: target,
                    // Any key is accepted by the local server; it must still be base64 (HMAC key).
                    key: Some(
                        "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
                            .into(),
                    ),
                    database: "bench".into(),
                    container: "events".into(),
                    create_if_missing: true,
                },
                ttl,
            )
            .await
            .unwrap(),
        ),
        other => panic!("unknown store {other}"),
    };

    // Through the recorder, as the handler writes: record (memory only) while the background
    // task writes batches; the clock stops when the last event is stored.
    let since = now_ms() - 1;
    let recorder =
        Recorder::start(store.clone(), RecorderConfig { capacity: events as usize + 1, ..Default::default() });
    let start = Instant::now();
    for i in 0..events {
        recorder.record(event(i));
        recorder.add(Counter::Negotiate, 1);
        if i % 3 == 0 {
            recorder.observe_negotiate_latency(Duration::from_micros(700 + i % 900));
        }
    }
    let recorded = start.elapsed();
    let stats = recorder.shutdown(Duration::from_secs(600)).await;
    let total = start.elapsed();
    assert_eq!((stats.pending, stats.dropped, stats.written), (0, 0, events), "{stats:?}");
    println!(
        "{kind}: {events} events recorded in {:.0} ms ({:.0}/s into the buffer), stored in {:.2} s: {:.0} events/s",
        recorded.as_secs_f64() * 1000.0,
        events as f64 / recorded.as_secs_f64(),
        total.as_secs_f64(),
        events as f64 / total.as_secs_f64()
    );
    let stored = store.count_events(None, since).await.unwrap();

    // Snapshot reads: median and max of 200.
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let d = dashboard::read(&*store, &HUBS, &MARKETPLACES, now_ms()).await.unwrap();
        times.push(t.elapsed());
        assert!(d.rates.negotiate.last_hour >= events.min(1));
    }
    times.sort();
    println!(
        "{kind}: dashboard snapshot read with {stored} events stored: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (200 reads)",
        times[100].as_secs_f64() * 1000.0,
        times[198].as_secs_f64() * 1000.0,
        times[199].as_secs_f64() * 1000.0
    );
}
