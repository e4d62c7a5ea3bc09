//! The catalogue alone: how fast a sync reads OpenCart's products, without a marketplace.
//! Reads the settings from the environment (`CATALOG_MYSQL_URL`, `CATALOG_MYSQL_CA_FILE`, ...),
//! takes a snapshot and reads every batch as the engine would, and prints the time to the first
//! batch, products read per second and the growth of the process's peak RSS.
//! `bench/catalog.sh` starts MariaDB with 1,000,000 products and runs it:
//! `cargo run --release -p meschain-marketplace --example catalog_bench -- full|changed [SINCE]`

use std::time::Instant;

use meschain_marketplace::catalog::{Catalog, CatalogSettings, Mode};
use meschain_marketplace::request::Operation;

/// The process's resident set now and at its peak, in KiB (`/proc/self/status`).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("changed") => Mode::Changed,
        Some("full") | None => Mode::Full,
        Some(other) => panic!("mode must be full or changed, not {other}"),
    };
    let since = args.next();
    let batch_size: u64 = std::env::var("BATCH_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let settings = CatalogSettings::from_lookup(&|k| std::env::var(k).ok())
        .unwrap_or_else(|p| panic!("catalogue settings: {p:?}"))
        .expect("CATALOG_MYSQL_URL is required");
    let catalog = Catalog::new(settings).expect("catalogue");
    let (rss_before, _) = rss_kib();

    let started = Instant::now();
    let snapshot = catalog.snapshot(Operation::Inventory, mode, since, batch_size).await.expect("snapshot");
    let snapshot_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut first_batch_ms = None;
    let (mut read, mut invalid) = (0u64, 0u64);
    for k in 0..snapshot.boundaries.len() {
        let (items, refused) = catalog.batch(&snapshot, k, Operation::Inventory).await.expect("batch");
        first_batch_ms.get_or_insert(started.elapsed().as_secs_f64() * 1000.0);
        read += items.len() as u64;
        invalid += refused.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    let (_, peak) = rss_kib();
    println!(
        "mode={} products={} (valid {read}, refused {invalid}) batches={} snapshot_ms={snapshot_ms:.0} first_batch_ms={:.0} total_s={secs:.2} products_per_s={:.0} rss_growth_mib={:.1}",
        mode.name(),
        snapshot.total,
        snapshot.boundaries.len(),
        first_batch_ms.unwrap_or(0.0),
        (read + invalid) as f64 / secs,
        peak.saturating_sub(rss_before) as f64 / 1024.0,
    );
}
