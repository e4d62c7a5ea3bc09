//! `fake-ozon`: the fake Ozon Seller API as a process, for end-to-end tests and the sync
//! benchmark. Prints one JSON line `{"baseUrl", "itemsUrl", "clientId", "warehouseId"}` once it
//! listens; stops on SIGINT/SIGTERM.

use clap::Parser;
use meschain_fake_ozon::Config;

#[derive(Parser)]
#[command(about = "A local fake of Ozon's Seller API (stocks, prices, FBS postings).")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "836")]
    client_id: String,
    #[arg(long, default_value = "fake-ozon-api-key")]
    api_key: String,
    #[arg(long, default_value_t = 22_142_605_386_000)]
    warehouse_id: i64,
    /// Stocks calls per minute (Ozon: 80); 0 disables the limit.
    #[arg(long, default_value_t = 80)]
    stocks_per_minute: u32,
    /// Calls per second of the other methods (Ozon: 50); 0 disables the limit.
    #[arg(long, default_value_t = 50)]
    calls_per_second: u32,
    /// Every product is known (otherwise products must be made known through /_fake/faults).
    #[arg(long)]
    know_every_product: bool,
    /// Products whose updates are refused per item.
    #[arg(long, value_delimiter = ',')]
    refuse: Vec<String>,
    /// FBS postings served, changed once a minute up to now.
    #[arg(long, default_value_t = 0)]
    orders: u32,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = Config {
        client_id: args.client_id,
        api_key: args.api_key,
        warehouse_id: args.warehouse_id,
        stocks_per_minute: (args.stocks_per_minute > 0).then_some(args.stocks_per_minute),
        calls_per_second: (args.calls_per_second > 0).then_some(args.calls_per_second),
        know_every_product: args.know_every_product,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let fake = meschain_fake_ozon::start(config, listener).await?;
    for offer_id in &args.refuse {
        fake.refuse_item(offer_id);
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
            "warehouseId": fake.config().warehouse_id.to_string(),
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
