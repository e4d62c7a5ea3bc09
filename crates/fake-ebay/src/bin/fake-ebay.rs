//! `fake-ebay`: the fake eBay Sell APIs as a process, for end-to-end tests and the sync
//! benchmark. Prints one JSON line `{"baseUrl", "itemsUrl", "clientId"}` once it listens; stops
//! on SIGINT/SIGTERM. The client secret and refresh token are the defaults unless given.

use clap::Parser;
use meschain_fake_ebay::Config;

#[derive(Parser)]
#[command(about = "A local fake of eBay's Sell APIs (OAuth refresh, getOffers, bulkUpdatePriceQuantity, getOrders).")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "MesChain-fake-PRD-0000")]
    client_id: String,
    #[arg(long, default_value = "PRD-fake-client-secret")]
    client_secret: String,
    #[arg(long, default_value = "v^1.1#i^1#fake-refresh-token")]
    refresh_token: String,
    /// Every SKU has a published offer (otherwise SKUs must be made known through /_fake/faults).
    #[arg(long)]
    know_every_product: bool,
    /// SKUs whose updates are refused per element.
    #[arg(long, value_delimiter = ',')]
    refuse: Vec<String>,
    /// Orders served, modified once a minute up to now.
    #[arg(long, default_value_t = 0)]
    orders: u32,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = Config {
        client_id: args.client_id,
        client_secret: args.client_secret,
        refresh_token: args.refresh_token,
        know_every_product: args.know_every_product,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let fake = meschain_fake_ebay::start(config, listener).await?;
    for sku in &args.refuse {
        fake.refuse_item(sku);
    }
    if args.orders > 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        fake.add_orders(args.orders, now - i64::from(args.orders - 1) * 60_000, now);
    }
    println!(
        "{}",
        serde_json::json!({
            "baseUrl": fake.base_url(),
            "itemsUrl": format!("http://{}/items", fake.addr()),
            "clientId": fake.config().client_id,
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
