//! `meschain`: local tooling. One module per subcommand under `cmd/`; the work itself lives in
//! the library crates (`meschain-signalr-service`, `meschain-functions-host`) so tests can run
//! it in-process. What is specific to this app about running it locally is here: development
//! login tokens (`dev_token`), the function names and settings (from `meschain-model`) that
//! `meschain dev` wires the local SignalR service and the banner with. It never depends on the
//! handler crate.

use clap::{Parser, Subcommand};

mod cmd;
mod dev_routes;
mod dev_token;
mod local_signalr;

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
    /// Run the app under the local Functions host (handler, triggers, durable queue).
    Dev(cmd::dev::Args),
    /// Put a marketplace sync request on the local queue or an Azure Service Bus queue.
    Enqueue(Box<cmd::enqueue::Args>),
    /// Inspect the local queue of a running `meschain dev`.
    Queue(cmd::queue::Args),
    /// Mint a development login token from the local identity settings.
    Token(cmd::token::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Signalr(args) => cmd::signalr::run(args),
        Command::Dev(args) => cmd::dev::run(args),
        Command::Enqueue(args) => cmd::enqueue::run(*args),
        Command::Queue(args) => cmd::queue::run(args),
        Command::Token(args) => cmd::token::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
