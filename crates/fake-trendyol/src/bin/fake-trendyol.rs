//! `fake-trendyol`: the fake Trendyol seller API as a process, for end-to-end tests and the
//! sync benchmark. Prints one JSON line `{"baseUrl", "itemsUrl"}` once it listens; stops on
//! SIGINT/SIGTERM.

use std::time::Duration;

use clap::Parser;
use meschain_fake_trendyol::Config;

#[derive(Parser)]
#[command(about = "A local fake of Trendyol's seller API (stock/price push, batch results, orders).")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "123456")]
    seller_id: String,
    #[arg(long, default_value = "fake-api-key")]
    api_key: String,
    #[arg(long, default_value = "fake-api-secret")]
    api_secret: String,
    /// Requests per window per endpoint, as `N/SECONDS` (Trendyol: 50/10); `off` disables it.
    #[arg(long, default_value = "50/10")]
    rate_limit: String,
    /// Polls of each batch answering IN_PROGRESS before results are ready.
    #[arg(long, default_value_t = 0)]
    result_polls_in_progress: u32,
    /// Synthetic orders served by the orders endpoint.
    #[arg(long, default_value_t = 0)]
    orders: u32,
    /// Latency added to every push, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

fn parse_rate_limit(s: &str) -> Result<Option<(u32, Duration)>, String> {
    if s == "off" {
        return Ok(None);
    }
    let (n, secs) = s.split_once('/').ok_or("expected N/SECONDS or off")?;
    let n: u32 = n.parse().map_err(|_| "N must be a positive integer")?;
    let secs: u64 = secs.parse().map_err(|_| "SECONDS must be a positive integer")?;
    if n == 0 || secs == 0 {
        return Err("N and SECONDS must be positive".into());
    }
    Ok(Some((n, Duration::from_secs(secs))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let rate_limit = parse_rate_limit(&args.rate_limit)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--rate-limit: {e}")))?;
    let config = Config {
        seller_id: args.seller_id,
        api_key: args.api_key,
        api_secret: args.api_secret,
        rate_limit,
        result_polls_in_progress: args.result_polls_in_progress,
        orders: args.orders,
        latency: Duration::from_millis(args.latency_ms),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let fake = meschain_fake_trendyol::start(config, listener).await?;
    println!(
        "{}",
        serde_json::json!({ "baseUrl": fake.base_url(), "itemsUrl": format!("http://{}/items", fake.addr()) })
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    fake.shutdown().await;
    Ok(())
}
