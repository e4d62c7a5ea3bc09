//! The `handler` executable the Functions host starts (`host.json` → `customHandler`).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use meschain_functions::app::{AppState, app};
use meschain_functions::log_output;
use meschain_functions::settings::{Settings, names};
use meschain_functions_protocol::Limits;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const USAGE: &str = "usage: handler [--port PORT]\n\
    Serves the MesChain Realtime functions on 127.0.0.1:PORT (default: $FUNCTIONS_CUSTOMHANDLER_PORT).\n\
    Settings are read from the environment; see README.md.";

/// mimalloc rather than the C library's allocator: with glibc's, upstream invocations ran a
/// quarter fewer per second and their p99 was higher (43k against 59k, alternating runs of
/// `bench/upstream.sh`); negotiate was within the noise. Tasks move between tokio's worker
/// threads, so memory is often freed on another thread than the one that allocated it, which
/// mimalloc's per-thread heaps handle without a shared lock. The static package (musl) uses it
/// too (there the gain measured smaller: 55k against 60k upstream invocations/s).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (filter, filter_error) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_target(false).with_writer(log_output::Stdout))
        .with(filter)
        .init();
    if let Some(e) = filter_error {
        tracing::warn!("RUST_LOG ignored, logging at info: {e}");
    }
    // Panic messages can carry request data; log where, not what (the server fails only that invocation).
    meschain_functions_protocol::install_panic_hook();

    let port = match port_from(std::env::args().skip(1), std::env::var(names::CUSTOMHANDLER_PORT).ok()) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(log_output::worker_parked)
        .on_thread_stop(log_output::worker_stopping)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("handler: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Any setting may be a Key Vault reference App Service left unresolved (or Core Tools never
    // resolves): read them all before anything else, and stop, naming setting and vault, if
    // one cannot be read.
    let secrets = match runtime.block_on(meschain_secrets::settings::resolve_process_env()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("handler: {e}");
            return ExitCode::from(1);
        }
    };
    let settings = match Settings::from_lookup(|name| {
        meschain_secrets::settings::lookup(&secrets, name, |n| std::env::var(n).ok())
    }) {
        Ok(s) => s,
        Err(e) => {
            eprint!("handler: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(port, settings, secrets)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handler: {e}");
            ExitCode::from(1)
        }
    }
}

/// The log filter from `RUST_LOG`: a level (`debug`) or `target=level` directives
/// (`info,meschain_store=debug`). `Targets` rather than `EnvFilter`: the handler has no use for span
/// or field filters, and `EnvFilter` brings a regex engine (for field values) into the binary and
/// per-span bookkeeping into every event. Unset means `info`; an unreadable value also means
/// `info`, with the reason, since the handler must start either way.
fn log_filter(rust_log: Option<&str>) -> (Targets, Option<String>) {
    let info = || Targets::new().with_default(tracing::Level::INFO);
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => (info(), None),
        Some(value) => match value.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (info(), Some(e.to_string())),
        },
    }
}

/// `--port N` wins over the host's variable; one of them is required.
fn port_from(mut args: impl Iterator<Item = String>, env: Option<String>) -> Result<u16, String> {
    let mut port = None;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--port" => args.next().ok_or("--port needs a value")?,
            s if s.starts_with("--port=") => s["--port=".len()..].to_string(),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        };
        port = Some(value);
    }
    let raw = port.or(env).ok_or(format!("no port: pass --port or set {}", names::CUSTOMHANDLER_PORT))?;
    raw.trim().parse().map_err(|_| format!("port must be a number from 0 to 65535, not {raw:?}"))
}

/// Time given to the analytics still buffered at shutdown.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve(port: u16, settings: Settings, secrets: meschain_secrets::Secrets) -> std::io::Result<()> {
    // A Cosmos DB key held in Key Vault is followed through rotations.
    let opened = match cosmos_key_updates(&secrets) {
        Some(updates) => meschain_store::open_with_key_updates(&settings.store, updates).await,
        None => meschain_store::open(&settings.store).await,
    };
    let store = opened
        .map_err(|e| std::io::Error::other(format!("cannot open the store ({:?}): {e}", settings.store.backend)))?;
    tracing::info!(store = store.kind().as_str(), "store open");
    let state = AppState::with_secrets(settings, store, secrets)
        .map_err(|e| std::io::Error::other(format!("cannot set up the SignalR credential: {e}")))?;
    let recorder = state.recorder().clone();
    // 127.0.0.1, not localhost: the host connects to 127.0.0.1 and localhost may resolve to ::1.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    tracing::info!(addr = %listener.local_addr()?, "handler listening");
    // With Entra ID, the client-token signing key is fetched now, not on the first negotiate.
    state.start_background();
    // Fetch the identity provider's keys now rather than on the first login, without delaying
    // readiness: the host starts routing as soon as GET / answers.
    let authenticator = state.authenticator().clone();
    tokio::spawn(async move {
        if let Err(e) = authenticator.warm_up().await {
            tracing::warn!("login keys not loaded yet: {}", e.description());
        }
    });
    meschain_functions_protocol::serve(listener, app(state), &Limits::default(), shutdown_signal()).await?;
    // What the recorder still holds is written now (the host allows a few seconds after SIGTERM).
    let stats = recorder.shutdown(SHUTDOWN_FLUSH).await;
    if stats.pending > 0 {
        tracing::warn!(unwritten = stats.pending, "analytics not written at shutdown");
    }
    tracing::info!("handler stopped");
    Ok(())
}

/// Each new value of `COSMOS_KEY` when it is a Key Vault reference.
fn cosmos_key_updates(secrets: &meschain_secrets::Secrets) -> Option<tokio::sync::watch::Receiver<String>> {
    let mut handle = secrets.get(names::COSMOS_KEY)?;
    let (tx, rx) = tokio::sync::watch::channel(handle.current().expose().to_owned());
    tokio::spawn(async move {
        while handle.changed().await.is_ok() {
            if tx.send(handle.current().expose().to_owned()).is_err() {
                break;
            }
        }
    });
    Some(rx)
}

/// SIGTERM (the host stopping us) or Ctrl-C; in-flight requests then get the protocol
/// layer's grace period ([`Limits::shutdown_grace`]) to finish.
async fn shutdown_signal() {
    meschain_model::shutdown::signal().await;
    tracing::info!("shutdown requested: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter().map(|s| s.to_string()).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn test_port_from() {
        assert_eq!(port_from(args(&["--port", "7"]), Some("9".into())), Ok(7));
        assert_eq!(port_from(args(&["--port=8"]), None), Ok(8));
        assert_eq!(port_from(args(&[]), Some("9".into())), Ok(9));
        assert!(port_from(args(&[]), None).is_err());
        assert!(port_from(args(&["--port"]), None).is_err());
        assert!(port_from(args(&["--port", "x"]), None).is_err());
        assert!(port_from(args(&["--port", "70000"]), None).is_err());
        assert!(port_from(args(&["--verbose"]), None).is_err());
    }

    #[test]
    fn test_log_filter() {
        use tracing::Level;
        let level = |rust_log, target| log_filter(rust_log).0.would_enable(target, &Level::DEBUG);
        assert!(!level(None, "meschain_functions"));
        assert!(!level(Some("  "), "meschain_functions"));
        assert!(level(Some("debug"), "meschain_functions"));
        assert!(level(Some("info,meschain_store=debug"), "meschain_store::recorder"));
        assert!(!level(Some("info,meschain_store=debug"), "meschain_functions"));
        assert!(log_filter(Some("info")).1.is_none());
        let (filter, error) = log_filter(Some("meschain=loud"));
        assert!(error.is_some());
        assert!(filter.would_enable("meschain_functions", &Level::INFO));
        assert!(!filter.would_enable("meschain_functions", &Level::DEBUG));
    }
}
