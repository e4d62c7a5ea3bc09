//! The store suite against Cosmos DB: `@vercel/cosmosdb-server` from npm, started here on a
//! free port with a fault-injecting front (tests/support/cosmosdb-server.mjs). Plus what only
//! Cosmos DB shows: the container's TTL, 429s with retry-after, an outage.
//!
//! Its own `main` (harness = false): the SDK reads its settings from the environment, which is
//! set here before any thread exists. Cases run one after another; each gets its own
//! container. A server that does not start fails the run.

#[path = "common/cosmos_server.rs"]
mod cosmos_server;
#[path = "common/suite.rs"]
mod suite;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmos_server::CosmosServer;
use meschain_model::clock::now_ms;
use meschain_store::cosmos::CosmosStore;
use meschain_store::settings::CosmosSettings;
use meschain_store::{Event, EventKind, Recorder, RecorderConfig, Store, StoreError, dashboard};

const TTL: Duration = Duration::from_secs(7 * 24 * 3600);

fn settings(server: &CosmosServer, container: &str) -> CosmosSettings {
    CosmosSettings {
        endpoint: server.endpoint(),
        key: Some("C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==".into()),
        database: "meschain".into(),
        container: container.into(),
        create_if_missing: true,
    }
}

async fn open(server: &CosmosServer, container: &str) -> Arc<CosmosStore> {
    Arc::new(CosmosStore::open(&settings(server, container), TTL).await.expect("open the Cosmos store"))
}

async fn pair(server: &CosmosServer, container: &str) -> suite::Pair {
    (open(server, container).await, open(server, container).await)
}

async fn case<F: Future<Output = ()>>(name: &str, failures: &mut Vec<String>, f: F) {
    let start = Instant::now();
    match futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(f)).await {
        Ok(()) => println!("test {name} ... ok ({} ms)", start.elapsed().as_millis()),
        Err(_) => {
            println!("test {name} ... FAILED");
            failures.push(name.to_string());
        }
    }
}

/// 429s: the SDK retries a few itself, then the recorder waits the retry-after and tries again;
/// the event is written once, and the waits add up to at least the retry-afters served.
async fn throttling_honours_retry_after(server: &CosmosServer) {
    let store = open(server, "throttle").await;
    let since = now_ms() - 1;
    let before = server.throttled().await;
    let r = Recorder::start(
        store.clone(),
        RecorderConfig { flush_interval: Duration::from_millis(20), ..Default::default() },
    );
    server.throttle(6, 250).await;
    let start = Instant::now();
    // One event, so the attempts (and their waits) follow one another.
    r.record(Event::new(EventKind::SyncBatch, now_ms()).with_count(100));
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.stats().written < 1 {
        assert!(Instant::now() < deadline, "throttled events never written: {:?}", r.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served = server.throttled().await - before;
    assert_eq!(served, 6, "every injected 429 was met");
    assert!(start.elapsed() >= Duration::from_millis(6 * 250), "retry-after not honoured: {:?}", start.elapsed());
    assert!(r.stats().throttled >= 1, "the SDK gave up once and the recorder waited: {:?}", r.stats());
    assert_eq!(store.count_events(Some(EventKind::SyncBatch), since).await.unwrap(), 1, "no duplicates");

    // Seen directly: a throttled write is Unavailable with the service's retry-after.
    server.throttle(4, 300).await;
    let e = store.put_doc("sync", "t", &serde_json::json!({}), meschain_store::Precondition::Any).await.unwrap_err();
    assert_eq!(
        e,
        StoreError::Unavailable {
            reason: "Cosmos DB throttled the request (429)".into(),
            retry_after: Some(Duration::from_millis(300))
        }
    );
    r.shutdown(Duration::from_secs(5)).await;
}

/// An outage: reads fail as Unavailable (the dashboard shows the store down), the recorder
/// keeps events buffered, and writes them once the store is back.
async fn outage_then_recovery(server: &CosmosServer) {
    let store = open(server, "outage").await;
    let r = Recorder::unstarted(store.clone(), RecorderConfig::default());
    server.set_down(true).await;
    let start = Instant::now();
    let read = dashboard::read(&*store, &suite::HUBS, &suite::MARKETPLACES, now_ms()).await;
    assert!(matches!(read, Err(StoreError::Unavailable { .. })), "{read:?}");
    println!("  dashboard read during the outage failed after {} ms", start.elapsed().as_millis());
    r.record(Event::new(EventKind::Error, now_ms()).with_detail("during the outage"));
    assert!(r.flush().await.is_err());
    assert_eq!(r.stats().pending, 1);
    server.set_down(false).await;
    r.flush().await.unwrap();
    assert_eq!(r.stats().pending, 0);
}

/// An account key rotated through `open_with_key_updates`: the new key is used from the next
/// request on, without reopening, and the store keeps working once the old key is regenerated.
async fn account_key_rotation(server: &CosmosServer) {
    const NEW_KEY: &str = "bmV3LWtleS1mb3ItdGhlLWNvc21vcy1yb3RhdGlvbi10ZXN0LTAxMjM0NTY3ODk=";
    let old_key = settings(server, "rotation").key.unwrap();
    let store_settings = meschain_store::StoreSettings {
        backend: meschain_store::Backend::Cosmos(settings(server, "rotation")),
        analytics_ttl: TTL,
        ..meschain_store::StoreSettings::embedded("unused")
    };
    let (tx, rx) = tokio::sync::watch::channel(old_key.clone());
    let store = meschain_store::open_with_key_updates(&store_settings, rx).await.unwrap();
    server.accept_keys(&[&old_key]).await;
    let doc = serde_json::json!({"n": 1});
    store.put_doc("rotation", "a", &doc, meschain_store::Precondition::Any).await.expect("signed with the old key");

    // A key the account does not accept, or one that is not a key at all, is not switched to:
    // the store keeps working with the old one.
    for bad in ["bm90LWFuLWFjY2VwdGVkLWtleQ==", "%% not base64 %%"] {
        tx.send(bad.to_string()).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let still = store.get_doc("rotation", "a").await;
        assert!(matches!(&still, Ok(Some(v)) if v.value == doc), "after a bad key {bad:?}: {still:?}");
    }

    // The new key is not accepted by the account yet: the check is real.
    server.accept_keys(&[NEW_KEY]).await;
    let refused = store.get_doc("rotation", "a").await;
    assert!(matches!(&refused, Err(StoreError::Unavailable { reason, .. }) if reason.contains("401")), "{refused:?}");

    // Both keys valid (the operator regenerated the secondary), the vault gets the new one.
    server.accept_keys(&[&old_key, NEW_KEY]).await;
    tx.send(NEW_KEY.to_string()).unwrap();
    // Then the old one is regenerated: only the new key works, and so does the store.
    server.accept_keys(&[NEW_KEY]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get_doc("rotation", "a").await {
            Ok(Some(v)) => {
                assert_eq!(v.value, doc);
                break;
            }
            other if Instant::now() > deadline => panic!("the store never switched to the new key: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    store.put_doc("rotation", "b", &doc, meschain_store::Precondition::Any).await.expect("signed with the new key");
    server.accept_keys(&[]).await;
}

async fn run() -> Vec<String> {
    let server = CosmosServer::start().await;
    let mut failures = Vec::new();
    case("documents_and_preconditions", &mut failures, async {
        suite::documents_and_preconditions(pair(&server, "docs").await).await
    })
    .await;
    case("concurrent_writers", &mut failures, async {
        suite::concurrent_writers(pair(&server, "concurrent").await).await
    })
    .await;
    case("events_counters_and_presence_from_two_instances", &mut failures, async {
        suite::events_counters_and_presence_from_two_instances(pair(&server, "scaleout").await).await
    })
    .await;
    case("buffer_overflow_is_counted", &mut failures, async {
        suite::buffer_overflow_is_counted(pair(&server, "overflow").await).await
    })
    .await;
    case("recording_does_not_wait_for_the_store", &mut failures, async {
        suite::recording_does_not_wait_for_the_store(pair(&server, "noblock").await).await
    })
    .await;
    case("background_flush_and_shutdown", &mut failures, async {
        suite::background_flush_and_shutdown(pair(&server, "background").await).await
    })
    .await;
    case("disabled_recorder_records_nothing", &mut failures, async {
        suite::disabled_recorder_records_nothing(pair(&server, "disabled").await).await
    })
    .await;
    case("ttl_setting", &mut failures, async {
        let store = open(&server, "ttl").await;
        assert_eq!(store.default_ttl().await.unwrap(), Some(TTL.as_secs() as u32), "container default TTL");
        suite::ttl_setting((store.clone(), store), TTL).await
    })
    .await;
    case("throttling_honours_retry_after", &mut failures, throttling_honours_retry_after(&server)).await;
    case("outage_then_recovery", &mut failures, outage_then_recovery(&server)).await;
    case("account_key_rotation", &mut failures, account_key_rotation(&server)).await;
    server.stop().await;
    failures
}

fn main() {
    for (name, value) in cosmos_server::SDK_ENV {
        // SAFETY: no other thread exists yet: the runtime is built below.
        unsafe { std::env::set_var(name, value) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let failures = runtime.block_on(run());
    if !failures.is_empty() {
        eprintln!("Cosmos suite: {} failed: {}", failures.len(), failures.join(", "));
        std::process::exit(1);
    }
    println!("Cosmos suite: all passed");
}
