//! `meschain`: local tooling. One module per subcommand under `cmd/`; the work itself lives in
//! the library crates (`meschain-signalr-service`, `meschain-functions-host`) so tests can run
//! it in-process.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "meschain", version, about = "MesChain Realtime local tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local Azure SignalR Service (serverless mode).
    Signalr(cmd::signalr::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Signalr(args) => cmd::signalr::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
