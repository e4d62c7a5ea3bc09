//! The engine alone, in process, against the fake Trendyol: items/s of an `itemsUrl` sync with
//! the documented rate limit lifted (the end-to-end figure is `bench/sync.sh`'s).
//! `cargo run --release -p meschain-marketplace --example engine_bench -- 100000`

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meschain_marketplace::connector::{Connector, Order};
use meschain_marketplace::engine::{Engine, Options, Outcome, Reporter, SyncEvent};
use meschain_marketplace::progress::{BatchReport, Progress};
use meschain_marketplace::rate_limit::RateLimit;
use meschain_marketplace::request::validate;
use meschain_marketplace::trendyol::{Trendyol, TrendyolConfig};
use tokio::time::Instant;

struct Count(std::sync::atomic::AtomicU64);

#[async_trait]
impl Reporter for Count {
    async fn progress(&self, _: &Progress) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    async fn batch(&self, _: &BatchReport) {}
    async fn order(&self, _: &str, _: &Order) {}
    async fn event(&self, _: &SyncEvent) {}
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = meschain_fake_trendyol::start(
        meschain_fake_trendyol::Config { rate_limit: None, ..Default::default() },
        listener,
    )
    .await
    .unwrap();
    let c = fake.config();
    let conn: Arc<dyn Connector> = Arc::new(Trendyol::new(
        TrendyolConfig {
            base_url: url::Url::parse(&fake.base_url()).unwrap(),
            seller_id: c.seller_id.clone(),
            api_key: c.api_key.clone(),
            api_secret: c.api_secret.clone(),
            integrator: "Bench".into(),
            rate_limit: RateLimit { requests: 10_000, per: Duration::from_secs(1) },
            concurrency: 4,
        },
        reqwest::Client::new(),
    ));
    let body = serde_json::json!({"marketplace": "trendyol", "operation": "inventory", "itemsUrl": fake.items_url(n), "syncId": "bench"});
    let plan = validate(&body, None, time::OffsetDateTime::now_utc()).unwrap();
    let reporter = Arc::new(Count(Default::default()));
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine {
        store: Arc::new(
            meschain_store::embedded::EmbeddedStore::open(dir.path(), Duration::from_secs(3600)).await.unwrap(),
        ),
        connector: conn,
        reporter: reporter.clone(),
        http: meschain_marketplace::net_guard::ItemsHttp::new(
            meschain_marketplace::net_guard::UrlPolicy::loopback_only(),
        ),
        catalog: None,
        options: Options {
            first_poll: Duration::from_millis(20),
            max_poll_interval: Duration::from_millis(200),
            ..Options::new("bench", Instant::now() + Duration::from_secs(600))
        },
        clock: Arc::new(meschain_model::clock::SystemClock),
    };
    let started = Instant::now();
    let outcome = engine.run(&plan).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(matches!(outcome, Outcome::Completed(_)), "{outcome:?}");
    println!(
        "{n} items in {secs:.2} s: {:.0} items/s, {} progress messages",
        n as f64 / secs,
        reporter.0.load(std::sync::atomic::Ordering::Relaxed)
    );
    fake.shutdown().await;
}
