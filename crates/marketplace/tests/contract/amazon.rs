//! The contract suite's Amazon fixture: the live connector against `meschain-fake-amazon`.
//!
//! A push is three calls (create feed document, upload, create feed); the suite's throttling
//! and 5xx land on the first, whose documented bucket refills in 2 s, so the suite stays fast
//! while the connector still honours Amazon's answer (no `Retry-After`: the bucket's rate).
//! Feeds are kept small (500 messages) so that 2.5 batches stay quick in debug builds.

use meschain_fake_amazon::{Config, FakeAmazon};

use crate::suite::Fixture;

pub struct Amazon {
    fake: FakeAmazon,
}

#[async_trait::async_trait]
impl Fixture for Amazon {
    const MARKETPLACE: &'static str = "amazon";

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let config = Config { require_listings: true, ..Config::default() };
        Amazon { fake: meschain_fake_amazon::start(config, listener).await.expect("fake amazon") }
    }

    fn settings(&self) -> Vec<(String, String)> {
        use meschain_model::settings::*;
        let c = self.fake.config();
        [
            (AMAZON_BASE_URL, self.fake.base_url()),
            (AMAZON_TOKEN_URL, self.fake.token_url()),
            (AMAZON_CLIENT_ID, c.client_id.clone()),
            (AMAZON_CLIENT_SECRET, c.client_secret.clone()),
            (AMAZON_REFRESH_TOKEN, c.refresh_token.clone()),
            (AMAZON_SELLER_ID, c.seller_id.clone()),
            (AMAZON_MARKETPLACE_ID, c.marketplace_id.clone()),
            (AMAZON_FEED_MESSAGES, "500".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn credential_setting(&self) -> Option<&'static str> {
        Some(meschain_model::settings::AMAZON_REFRESH_TOKEN)
    }

    fn throttle_pushes(&self, n: u32, _retry_after_secs: u32) {
        // Amazon's 429 carries no Retry-After; the connector waits for its bucket's next token.
        self.fake.with_faults(|f| f.create_document.extend(std::iter::repeat_n(429, n as usize)));
    }

    fn fail_pushes(&self, n: u32) {
        self.fake.with_faults(|f| f.create_document.extend(std::iter::repeat_n(503, n as usize)));
    }

    fn refuse_item(&self, barcode: &str) {
        self.fake.refuse(barcode, "The listing is suppressed and cannot be updated.");
    }

    fn know_items(&self, barcodes: &[String]) {
        self.fake.know_listings(barcodes);
    }

    fn times_applied(&self, barcode: &str) -> u32 {
        self.fake.times_applied(barcode)
    }

    fn stock(&self, barcode: &str) -> Option<u64> {
        self.fake.stock(barcode)
    }

    fn add_orders(&self, n: u32, from_ms: i64, to_ms: i64) {
        self.fake.add_orders(n, from_ms, to_ms);
    }
}
