//! `fake-amazon`: the fake Amazon SP-API as a process, for end-to-end tests and the sync
//! benchmark. Prints one JSON line `{"baseUrl", "tokenUrl"}` once it listens (the values of
//! `AMAZON_BASE_URL` and `AMAZON_TOKEN_URL`); stops on SIGINT/SIGTERM.

use std::time::Duration;

use clap::Parser;
use meschain_fake_amazon::Config;

#[derive(Parser)]
#[command(about = "A local fake of Amazon's Selling Partner API (LWA tokens, JSON_LISTINGS_FEED feeds, searchOrders).")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "amzn1.application-oa2-client.fake")]
    client_id: String,
    #[arg(long, default_value = "fake-client-secret")]
    client_secret: String,
    #[arg(long, default_value = "Atzr|fake-refresh-token")]
    refresh_token: String,
    #[arg(long, default_value = "A2FAKESELLER")]
    seller_id: String,
    #[arg(long, default_value = "A33AVAJ2PDY3EV")]
    marketplace_id: String,
    #[arg(long, default_value = "TRY")]
    currency: String,
    /// Access token lifetime in seconds (Amazon: 3600).
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Disable Amazon's documented per-operation token buckets.
    #[arg(long)]
    no_rate_limits: bool,
    /// getFeed polls answering IN_QUEUE/IN_PROGRESS before DONE.
    #[arg(long, default_value_t = 0)]
    feed_polls_in_progress: u32,
    /// Serve processing reports gzip-compressed.
    #[arg(long)]
    gzip_reports: bool,
    /// SKUs starting with this are refused with an issue.
    #[arg(long, default_value = "FAIL-")]
    failing_sku_prefix: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = Config {
        client_id: args.client_id,
        client_secret: args.client_secret,
        refresh_token: args.refresh_token,
        seller_id: args.seller_id,
        marketplace_id: args.marketplace_id,
        currency: args.currency,
        token_lifetime: Duration::from_secs(args.token_lifetime),
        rate_limits: !args.no_rate_limits,
        feed_polls_in_progress: args.feed_polls_in_progress,
        gzip_reports: args.gzip_reports,
        failing_sku_prefix: args.failing_sku_prefix,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let fake = meschain_fake_amazon::start(config, listener).await?;
    println!("{}", serde_json::json!({ "baseUrl": fake.base_url(), "tokenUrl": fake.token_url() }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    fake.shutdown().await;
    Ok(())
}
