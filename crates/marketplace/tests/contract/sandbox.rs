//! The sandbox, scripted (`sandbox::Script`) so the suite can drive it like a fake. It is built
//! directly rather than from settings: settings select it (`MARKETPLACE_SANDBOX`) but cannot
//! hand the test its script.

use std::sync::Arc;

use async_trait::async_trait;
use meschain_marketplace::connector::Connector;
use meschain_marketplace::rate_limit::RateLimit;
use meschain_marketplace::sandbox::{Sandbox, SandboxConfig, Script};

pub struct Scripted(Arc<Script>);

#[async_trait]
impl super::suite::Fixture for Scripted {
    const MARKETPLACE: &'static str = "n11";

    async fn start() -> Self {
        Scripted(Arc::new(Script::default()))
    }

    fn settings(&self) -> Vec<(String, String)> {
        vec![(meschain_model::settings::MARKETPLACE_SANDBOX.to_string(), Self::MARKETPLACE.to_string())]
    }

    fn credential_setting(&self) -> Option<&'static str> {
        None
    }

    fn throttle_pushes(&self, n: u32, retry_after_secs: u32) {
        self.0.throttle_pushes(n, retry_after_secs);
    }

    fn fail_pushes(&self, n: u32) {
        self.0.fail_pushes(n);
    }

    fn refuse_item(&self, barcode: &str) {
        self.0.refuse_item(barcode);
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

    fn connector(&self, _settings: &[(String, String)]) -> Result<Arc<dyn Connector>, String> {
        let config = SandboxConfig {
            latency: std::time::Duration::ZERO,
            throttle_every: 0,
            reject_one_in: 0,
            rate_limit: RateLimit::TRENDYOL,
            script: Some(self.0.clone()),
            ..SandboxConfig::default()
        };
        Ok(Arc::new(Sandbox::new(Self::MARKETPLACE, config)))
    }
}
