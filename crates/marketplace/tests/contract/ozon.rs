//! Ozon's Seller API, as `meschain-fake-ozon` models it.

use async_trait::async_trait;
use meschain_fake_ozon::{Config, FakeOzon};
use meschain_model::settings as names;

pub struct Ozon(FakeOzon);

#[async_trait]
impl super::suite::Fixture for Ozon {
    const MARKETPLACE: &'static str = "ozon";

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Ozon(meschain_fake_ozon::start(Config::default(), listener).await.unwrap())
    }

    fn settings(&self) -> Vec<(String, String)> {
        let c = self.0.config();
        [
            (names::OZON_BASE_URL, self.0.base_url()),
            (names::OZON_CLIENT_ID, c.client_id.clone()),
            (names::OZON_API_KEY, c.api_key.clone()),
            (names::OZON_WAREHOUSE_ID, c.warehouse_id.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn credential_setting(&self) -> Option<&'static str> {
        Some(names::OZON_API_KEY)
    }

    /// The suite's inventory pushes carry stock only: one stocks call per push of up to 100.
    fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        self.0.throttle_pushes(n, retry_after_secs);
    }

    fn fail_pushes(&self, n: u32) {
        self.0.fail_pushes(n);
    }

    fn refuse_item(&self, barcode: &str) {
        self.0.refuse_item(barcode);
    }

    fn know_items(&self, barcodes: &[String]) {
        self.0.know_items(barcodes);
    }

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
