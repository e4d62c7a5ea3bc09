//! `fake-keyvault`: runs the local fake Key Vault until stdin closes or SIGTERM/Ctrl-C.
//!
//! Prints one JSON line with what a client needs: the vault address to send vault hosts to, the
//! CA file to trust, the managed-identity endpoint and header, and the control API's URL.

use std::path::PathBuf;

use clap::Parser;
use meschain_fake_keyvault::{FakeVault, Options};

#[derive(Parser)]
#[command(about = "A local HTTPS stand-in for Azure Key Vault's secrets API, for tests")]
struct Args {
    /// Where to write the CA certificate (PEM) that clients must trust.
    #[arg(long)]
    ca_file: PathBuf,
    /// A bearer token the vault accepts (besides the ones its identity endpoint issues).
    #[arg(long = "accept-token")]
    accept_tokens: Vec<String>,
    /// `NAME=VALUE` secrets to create at start (test values only: they are visible in `ps`).
    #[arg(long = "secret")]
    secrets: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let args = Args::parse();
    let vault = FakeVault::start(Options { accepted_tokens: args.accept_tokens, ..Options::default() }).await?;
    for pair in &args.secrets {
        let (name, value) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("--secret takes NAME=VALUE"))?;
        vault.state().set_secret(name, value);
    }
    std::fs::write(&args.ca_file, vault.ca_pem())?;
    let ready = serde_json::json!({
        "address": vault.address().to_string(),
        "caFile": args.ca_file,
        "identityEndpoint": vault.identity_endpoint(),
        "identityHeader": vault.identity_header(),
        "control": vault.control_url(),
    });
    println!("{ready}");

    let stdin_closed = async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = stdin_closed => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    vault.stop().await;
    Ok(())
}
