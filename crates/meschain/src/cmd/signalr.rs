//! `meschain signalr`: run the local SignalR service in the foreground until Ctrl-C/SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use meschain_signalr_service::{AccessKey, Config, UpstreamTemplate, config};

/// Options of `meschain signalr`.
#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (loopback only).
    #[arg(long, default_value_t = 8888)]
    pub port: u16,
    /// Access key (give it twice for a primary and a secondary key). Random when omitted.
    #[arg(long = "access-key", value_name = "KEY", num_args = 1)]
    pub access_keys: Vec<String>,
    /// Upstream URL template matching every hub, category and event (may be repeated).
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "settings")]
    pub upstream: Vec<String>,
    /// Microsoft emulator settings file with `UpstreamSettings.Templates`.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
}

fn config(args: &Args) -> anyhow::Result<Config> {
    anyhow::ensure!(args.access_keys.len() <= 2, "at most two access keys (primary and secondary) may be given");
    anyhow::ensure!(args.access_keys.iter().all(|k| !k.trim().is_empty()), "an access key must not be empty");
    let mut cfg = Config::default();
    if !args.access_keys.is_empty() {
        cfg.access_keys = args.access_keys.iter().map(|k| AccessKey::new(k.trim())).collect();
    }
    cfg.upstream = match &args.settings {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            config::parse_settings(&text).with_context(|| format!("reading {}", path.display()))?
        }
        None => args.upstream.iter().map(UpstreamTemplate::any).collect(),
    };
    Ok(cfg)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
        let service = meschain_signalr_service::start(cfg, listener).await?;
        // The connection string is the one line tools read from stdout.
        println!("{}", service.connection_string());
        tracing::info!(addr = %service.local_addr(), "SignalR service listening");
        wait_for_signal().await?;
        tracing::info!("shutting down");
        service.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
