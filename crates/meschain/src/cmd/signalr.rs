//! `meschain signalr`: run the local SignalR service in the foreground.

/// Options of `meschain signalr`.
#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (loopback only).
    #[arg(long, default_value_t = 8888)]
    pub port: u16,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the local SignalR service is not built yet")
}
