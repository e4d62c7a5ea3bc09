//! Hepsiburada's listing and order APIs, as `meschain-fake-hepsiburada` models them.
//!
//! Hepsiburada throttles the listing API with 429 and `X-RateLimit-Reset` (seconds, by our
//! reading: the unit is not documented), which is where the suite's `Retry-After` goes.

use async_trait::async_trait;
use meschain_fake_hepsiburada::{Config, FakeHepsiburada, Faults};
use meschain_model::settings as names;

pub struct Hepsiburada(FakeHepsiburada);

#[async_trait]
impl super::suite::Fixture for Hepsiburada {
    const MARKETPLACE: &'static str = "hepsiburada";

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Hepsiburada(meschain_fake_hepsiburada::start(Config::default(), listener).await.unwrap())
    }

    fn settings(&self) -> Vec<(String, String)> {
        let c = self.0.config();
        [
            (names::HEPSIBURADA_BASE_URL, self.0.base_url()),
            (names::HEPSIBURADA_ORDERS_BASE_URL, self.0.base_url()),
            (names::HEPSIBURADA_MERCHANT_ID, c.merchant_id.clone()),
            (names::HEPSIBURADA_SERVICE_KEY, c.service_key.clone()),
            (names::HEPSIBURADA_INTEGRATOR, c.integrator.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn credential_setting(&self) -> Option<&'static str> {
        Some(names::HEPSIBURADA_SERVICE_KEY)
    }

    fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        self.0.inject(Faults {
            push: vec![429; n as usize],
            reset_seconds: Some(u64::from(retry_after_secs)),
            ..Faults::default()
        });
    }

    fn fail_pushes(&self, n: u32) {
        self.0.inject(Faults { push: vec![503; n as usize], ..Faults::default() });
    }

    fn refuse_item(&self, barcode: &str) {
        self.0.refuse(barcode);
    }

    fn know_items(&self, _barcodes: &[String]) {}

    fn times_applied(&self, barcode: &str) -> u32 {
        self.0.times_applied(barcode)
    }

    fn stock(&self, barcode: &str) -> Option<u64> {
        self.0.stock(barcode)
    }

    fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        self.0.add_orders(n, from_ms, to_ms);
    }
}
