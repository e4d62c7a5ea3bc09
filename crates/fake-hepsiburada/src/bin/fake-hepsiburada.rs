//! `fake-hepsiburada`: the fake Hepsiburada listing and order APIs as a process, for end-to-end
//! tests and the sync benchmark. Prints one JSON line `{"baseUrl", "merchantId", "serviceKey",
//! "integrator"}` once it listens; stops on SIGINT/SIGTERM.

use std::time::Duration;

use clap::Parser;
use meschain_fake_hepsiburada::Config;

#[derive(Parser)]
#[command(about = "A local fake of Hepsiburada's listing uploads (stock, price, results) and order listing.")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long)]
    merchant_id: Option<String>,
    #[arg(long)]
    service_key: Option<String>,
    #[arg(long)]
    integrator: Option<String>,
    /// Listing requests per second before 403 and a block (Hepsiburada: 100); 0 disables it.
    #[arg(long, default_value_t = 100)]
    listing_rate_limit: u32,
    /// Polls of each upload answering Processing before its result is ready.
    #[arg(long, default_value_t = 0)]
    result_polls_in_progress: u32,
    /// Paid order lines to serve, dated over the last `--orders-hours` hours.
    #[arg(long, default_value_t = 0)]
    orders: u32,
    #[arg(long, default_value_t = 6)]
    orders_hours: u32,
    /// Latency added to every upload, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let defaults = Config::default();
    let config = Config {
        merchant_id: args.merchant_id.unwrap_or(defaults.merchant_id),
        service_key: args.service_key.unwrap_or(defaults.service_key),
        integrator: args.integrator.unwrap_or(defaults.integrator),
        listing_rate_limit: (args.listing_rate_limit > 0).then_some(args.listing_rate_limit),
        result_polls_in_progress: args.result_polls_in_progress,
        latency: Duration::from_millis(args.latency_ms),
        ..defaults
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let fake = meschain_fake_hepsiburada::start(config, listener).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    fake.add_orders(args.orders, now - i64::from(args.orders_hours) * 3_600_000, now - 60_000);
    let c = fake.config();
    println!(
        "{}",
        serde_json::json!({
            "baseUrl": fake.base_url(),
            "merchantId": c.merchant_id,
            "serviceKey": c.service_key,
            "integrator": c.integrator,
        })
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    fake.shutdown().await;
    Ok(())
}
