//! N11's REST API (product tasks, orders), as `meschain-fake-n11` models it.

use async_trait::async_trait;
use meschain_fake_n11::{Config, FakeN11, Faults};
use meschain_model::settings as names;

pub struct N11(FakeN11);

#[async_trait]
impl super::suite::Fixture for N11 {
    const MARKETPLACE: &'static str = "n11";

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        N11(meschain_fake_n11::start(Config::default(), listener).await.unwrap())
    }

    fn settings(&self) -> Vec<(String, String)> {
        let c = self.0.config();
        [
            (names::N11_BASE_URL, self.0.base_url()),
            (names::N11_APP_KEY, c.app_key.clone()),
            (names::N11_APP_SECRET, c.app_secret.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn credential_setting(&self) -> Option<&'static str> {
        Some(names::N11_APP_SECRET)
    }

    fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        self.0.inject(Faults {
            push: vec![429; n as usize],
            retry_after_seconds: Some(u64::from(retry_after_secs)),
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
