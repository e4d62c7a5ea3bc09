//! `fake-n11`: the fake N11 REST API as a process, for end-to-end tests and the sync benchmark.
//! Prints one JSON line `{"baseUrl", "appKey", "appSecret"}` once it listens; stops on
//! SIGINT/SIGTERM.

use std::time::Duration;

use clap::Parser;
use meschain_fake_n11::Config;

#[derive(Parser)]
#[command(about = "A local fake of N11's price-stock-update tasks, task details and shipment packages.")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long)]
    app_key: Option<String>,
    #[arg(long)]
    app_secret: Option<String>,
    /// Task-detail polls answering IN_QUEUE before a task is PROCESSED.
    #[arg(long, default_value_t = 0)]
    task_polls_in_queue: u32,
    /// Packages to serve, last modified over the last `--orders-hours` hours.
    #[arg(long, default_value_t = 0)]
    orders: u32,
    #[arg(long, default_value_t = 6)]
    orders_hours: u32,
    /// Latency added to every price-stock-update call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let defaults = Config::default();
    let config = Config {
        app_key: args.app_key.unwrap_or(defaults.app_key),
        app_secret: args.app_secret.unwrap_or(defaults.app_secret),
        task_polls_in_queue: args.task_polls_in_queue,
        latency: Duration::from_millis(args.latency_ms),
        ..defaults
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let fake = meschain_fake_n11::start(config, listener).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    fake.add_orders(args.orders, now - i64::from(args.orders_hours) * 3_600_000, now - 60_000);
    let c = fake.config();
    println!("{}", serde_json::json!({ "baseUrl": fake.base_url(), "appKey": c.app_key, "appSecret": c.app_secret }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    fake.shutdown().await;
    Ok(())
}
