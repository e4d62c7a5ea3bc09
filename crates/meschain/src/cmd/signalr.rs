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
    /// Access key (give it twice for a primary and a secondary key). Two random keys when omitted.
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
        meschain_model::shutdown::signal().await;
        tracing::info!("shutting down");
        service.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("signalr").chain(argv.iter().copied())).unwrap().args
    }

    #[test]
    fn test_keys_and_upstream() {
        let cfg = config(&args(&["--access-key", "a", "--access-key", "b", "--upstream", "http://x/{event}"])).unwrap();
        assert_eq!(cfg.access_keys, vec![AccessKey::new("a"), AccessKey::new("b")]);
        assert_eq!(cfg.upstream, vec![UpstreamTemplate::any("http://x/{event}")]);
        assert!(config(&args(&["--access-key", "a", "--access-key", "b", "--access-key", "c"])).is_err());
        assert!(config(&args(&["--access-key", " "])).is_err());
        let random = config(&args(&[])).unwrap();
        assert_eq!(random.access_keys.len(), 2, "a primary and a secondary, as in Azure");
        assert_ne!(random.access_keys[0], random.access_keys[1]);
        assert_eq!(args(&[]).port, 8888);
    }

    #[test]
    fn test_settings_file() {
        let path = std::env::temp_dir().join(format!("meschain-settings-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"UpstreamSettings":{"Templates":[{"UrlTemplate":"http://u","HubPattern":"chat"}]}}"#)
            .unwrap();
        let cfg = config(&args(&["--settings", path.to_str().unwrap()])).unwrap();
        assert_eq!(cfg.upstream.len(), 1);
        assert!(cfg.upstream[0].matches("chat", "messages", "x") && !cfg.upstream[0].matches("news", "messages", "x"));
        std::fs::write(&path, "{not json").unwrap();
        assert!(config(&args(&["--settings", path.to_str().unwrap()])).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(config(&args(&["--settings", "/nonexistent/settings.json"])).is_err());
        assert!(Cli::try_parse_from(["signalr", "--settings", "f", "--upstream", "u"]).is_err());
    }
}
