//! `meschain dev`: run the app root under the local Functions host until Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use meschain_functions_host::config::App;
use meschain_functions_host::dev::{DevHost, DevOptions};
use meschain_functions_host::worker::WorkerExit;

/// Options of `meschain dev`.
#[derive(clap::Args)]
pub struct Args {
    /// The Functions app root (host.json, */function.json, local.settings.json).
    #[arg(long, default_value = ".")]
    pub app_root: PathBuf,
    /// Where the durable queue, timer status and keys live [default: <app-root>/.data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTP port on 127.0.0.1 [default: Host.LocalHttpPort from the settings, else 7071; 0 = any].
    #[arg(long)]
    pub port: Option<u16>,
    /// The custom handler executable, instead of host.json's defaultExecutablePath
    /// (e.g. target/debug/handler before it is copied into the app root).
    #[arg(long)]
    pub handler: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let root = args.app_root.canonicalize().map_err(|e| anyhow::anyhow!("{}: {e}", args.app_root.display()))?;
        let app = App::load(&root, &|name| std::env::var(name).ok())?;
        let data_dir = args.data_dir.unwrap_or_else(|| root.join(".data"));
        let opts = DevOptions { data_dir, port: args.port, extra_env: BTreeMap::new(), handler: args.handler };
        let mut host = DevHost::start(app, opts).await?;
        print!("{}", host.banner());
        if host.wait_ready(Duration::from_secs(35)).await {
            println!("Ready in {} ms (listening on {})", started.elapsed().as_millis(), host.local_addr);
        }
        let outcome = tokio::select! {
            exit = host.wait() => Some(exit),
            _ = shutdown_signal() => None,
        };
        host.shutdown().await;
        match outcome {
            Some(WorkerExit::GaveUp(reason)) => anyhow::bail!("{reason}"),
            _ => Ok(()),
        }
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
