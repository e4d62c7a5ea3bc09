//! The store suite against the embedded (SQLite) store, plus what only it can show: restart
//! durability and TTL expiry.

#[path = "common/suite.rs"]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use meschain_model::clock::now_ms;
use meschain_store::embedded::EmbeddedStore;
use meschain_store::{Counter, Event, EventKind, Recorder, RecorderConfig, Retention, Store, StoreSettings, dashboard};
use serde_json::json;

const TTL: Duration = Duration::from_secs(3600);

async fn pair(dir: &tempfile::TempDir) -> suite::Pair {
    let a: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), TTL).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), TTL).await.unwrap());
    (a, b)
}

macro_rules! suite_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            suite::$name(pair(&dir).await).await;
        }
    };
}

suite_case!(documents_and_preconditions);
suite_case!(concurrent_writers);
suite_case!(events_counters_and_presence_from_two_instances);
suite_case!(buffer_overflow_is_counted);
suite_case!(recording_does_not_wait_for_the_store);
suite_case!(background_flush_and_shutdown);
suite_case!(disabled_recorder_records_nothing);

#[tokio::test]
async fn ttl_setting_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::from_lookup(|name| match name {
        "MESCHAIN_DATA_DIR" => Some(dir.path().display().to_string()),
        "ANALYTICS_TTL_SECONDS" => Some("60".into()),
        _ => None,
    })
    .unwrap();
    let store = meschain_store::open(&settings).await.unwrap();
    suite::ttl_setting((store.clone(), store.clone()), Duration::from_secs(60)).await;

    let now = now_ms();
    store
        .append_events(&[Event::new(EventKind::Error, now - 120_000), Event::new(EventKind::Error, now)])
        .await
        .unwrap();
    store
        .put_doc_with("counters", "day-old", &json!({}), meschain_store::Precondition::Any, Retention::Analytics)
        .await
        .unwrap();
    store.put_doc("sync", "kept", &json!({}), meschain_store::Precondition::Any).await.unwrap();
    let embedded = EmbeddedStore::open(dir.path(), Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.count_events(None, 0).await.unwrap(), 1, "the event older than the TTL is purged on open");
    // Two minutes on, the analytics document has expired; the kept one has not.
    embedded.purge_expired(now + 120_000).await.unwrap();
    assert_eq!(store.get_doc("counters", "day-old").await.unwrap(), None);
    assert!(store.get_doc("sync", "kept").await.unwrap().is_some());
}

#[tokio::test]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let since = now_ms() - 1;
    {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), TTL).await.unwrap());
        let r = Recorder::start(store.clone(), RecorderConfig::default());
        r.record(Event::new(EventKind::Connected, now_ms()));
        r.add(Counter::Orders, 3);
        r.connected(suite::HUBS[0], "c1", Some("alice"));
        let s = r.shutdown(Duration::from_secs(5)).await;
        assert_eq!(s.pending, 0);
        store.put_doc("sync", "s1", &json!({"done": 1}), meschain_store::Precondition::Absent).await.unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), TTL).await.unwrap());
    assert_eq!(store.count_events(None, since).await.unwrap(), 1);
    assert_eq!(store.get_doc("sync", "s1").await.unwrap().unwrap().value, json!({"done": 1}));
    let d = dashboard::read(&*store, &suite::HUBS, &suite::MARKETPLACES, now_ms()).await.unwrap();
    assert_eq!((d.orders_today(), d.hubs[0].connections), (3, 1));
}
