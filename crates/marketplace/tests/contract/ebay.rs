//! eBay's Sell APIs, as `meschain-fake-ebay` models them.

use async_trait::async_trait;
use meschain_fake_ebay::{Config, FakeEbay};
use meschain_model::settings as names;

pub struct Ebay(FakeEbay);

/// The suite throttles and fails pushes of at most 50 items; the connector sends such a push as
/// two bulk calls of 25 (at once), so each of the suite's pushes is two of eBay's calls.
const CALLS_PER_SUITE_PUSH: u32 = 2;

#[async_trait]
impl super::suite::Fixture for Ebay {
    const MARKETPLACE: &'static str = "ebay";

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Ebay(meschain_fake_ebay::start(Config::default(), listener).await.unwrap())
    }

    fn settings(&self) -> Vec<(String, String)> {
        let c = self.0.config();
        [
            (names::EBAY_BASE_URL, self.0.base_url()),
            (names::EBAY_CLIENT_ID, c.client_id.clone()),
            (names::EBAY_CLIENT_SECRET, c.client_secret.clone()),
            (names::EBAY_REFRESH_TOKEN, c.refresh_token.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn credential_setting(&self) -> Option<&'static str> {
        Some(names::EBAY_REFRESH_TOKEN)
    }

    fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        self.0.throttle_pushes(n * CALLS_PER_SUITE_PUSH, retry_after_secs);
    }

    fn fail_pushes(&self, n: u32) {
        self.0.fail_pushes(n * CALLS_PER_SUITE_PUSH);
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
