//! `meschain dev`: run the app root under the local Functions host until Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use meschain_functions_host::config::{App, Trigger};
use meschain_functions_host::dev::{DevHost, DevOptions};
use meschain_functions_host::keys::Keys;
use meschain_functions_host::worker::WorkerExit;
use meschain_model::functions::{CONNECTION_EVENTS, NEGOTIATE};
use meschain_model::settings::{MESCHAIN_DATA_DIR, SIGNALR_CONNECTION_STRING, SIGNALR_SECONDARY_CONNECTION_STRING};
use meschain_signalr::ConnectionString;
use meschain_signalr_service::{AccessKey, UpstreamTemplate};

use crate::local_signalr::LocalSignalR;

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
    /// Port of the local SignalR service on 127.0.0.1 [default: the port of a Key Vault-held
    /// local connection string, else any free port]. Not started when the settings name a real
    /// (non-loopback) SignalR instance.
    #[arg(long)]
    pub signalr_port: Option<u16>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let root = args.app_root.canonicalize().map_err(|e| anyhow::anyhow!("{}: {e}", args.app_root.display()))?;
        let app = App::load(&root, &|name| std::env::var(name).ok())?;
        let data_dir = args.data_dir.unwrap_or_else(|| root.join(".data"));
        let port = match args.port.or(app.settings.local_http_port).unwrap_or(7071) {
            0 => free_port()?,
            p => p,
        };
        let keys = Keys::load(&app.settings, &data_dir).with_context(|| format!("keys in {}", data_dir.display()))?;
        // local.settings.json may point at a real vault: its references are read here as the
        // handler reads them (a missing secret stops here, naming the setting and the vault), so
        // the local SignalR service gets the access key the vault holds.
        let values = &app.settings.values;
        let var = |n: &str| std::env::var(n).ok().or_else(|| values.get(n).cloned());
        let secrets = meschain_secrets::settings::resolve(values.iter().map(|(k, v)| (k.as_str(), v.as_str())), var)
            .await
            .context("Key Vault references in the settings")?;
        let configured =
            meschain_secrets::settings::lookup(&secrets, SIGNALR_CONNECTION_STRING, |n| values.get(n).cloned());
        // A connection string in Key Vault naming a local port is followed, not replaced: the
        // service listens on that port with the vault's key as its primary, and the handler reads
        // the reference itself, so a rotation in the vault reaches it as it would in Azure.
        let follow = secrets.get(SIGNALR_CONNECTION_STRING).is_some();
        let signalr =
            start_local_signalr(&app, configured.as_deref().unwrap_or(""), follow, &keys, port, args.signalr_port)
                .await?;
        let mut extra_env = BTreeMap::new();
        if let Some(local) = &signalr
            && !local.follows_settings
        {
            let cs = local.service.connection_string().await.unwrap_or_default();
            extra_env.insert(SIGNALR_CONNECTION_STRING.to_string(), cs);
            // The settings' secondary key belongs to the instance they named, not to ours.
            extra_env.insert(SIGNALR_SECONDARY_CONNECTION_STRING.to_string(), String::new());
        }
        // The handler's embedded store lives in our data folder, unless the settings or the
        // environment name one (several stacks may share a store).
        let store_named =
            app.settings.values.contains_key(MESCHAIN_DATA_DIR) || std::env::var_os(MESCHAIN_DATA_DIR).is_some();
        if !store_named {
            extra_env.insert(MESCHAIN_DATA_DIR.to_string(), data_dir.join("store").display().to_string());
        }
        // Local item sources (a file server, the fake Trendyol's `itemsUrl`) run on loopback, which
        // a deployed handler never fetches from.
        extra_env.insert(meschain_model::settings::ITEMS_URL_ALLOW_LOOPBACK.to_string(), "true".to_string());
        let signalr = signalr.map(|local| local.service);
        let signalr_banner = match &signalr {
            Some(svc) => Some((svc.local_addr().port(), svc.connection_string().await.unwrap_or_default())),
            None => None,
        };
        // Dev tokens follow a rotated login secret as the handler does.
        secrets.spawn_refresh();
        let routes = crate::dev_routes::router(
            Arc::new(app.settings.clone()),
            secrets,
            &root.join("web").join("dist"),
            &app.host.route_prefix,
            signalr.clone(),
        );
        let opts = DevOptions { data_dir, port: Some(port), extra_env, handler: args.handler, routes };
        let mut host = DevHost::start(app, opts).await?;
        print!("{}", host.banner());
        if let Some((_, url, _)) = host.http_urls.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(NEGOTIATE)) {
            println!("  negotiate URL: {url}");
        }
        match &signalr_banner {
            Some((signalr_port, cs)) => {
                println!("  SignalR:       local service on http://localhost:{signalr_port} ({cs})")
            }
            None => println!("  SignalR:       the instance named by {SIGNALR_CONNECTION_STRING}"),
        }
        println!("  Dashboard:     http://localhost:{port}/");
        if host.wait_ready(Duration::from_secs(35)).await {
            println!("Ready in {} ms (listening on {})", started.elapsed().as_millis(), host.local_addr);
        }
        let outcome = tokio::select! {
            exit = host.wait() => Some(exit),
            () = meschain_model::shutdown::signal() => None,
        };
        host.shutdown().await;
        if let Some(svc) = signalr {
            svc.shutdown().await;
        }
        match outcome {
            Some(WorkerExit::GaveUp(reason)) => anyhow::bail!("{reason}"),
            _ => Ok(()),
        }
    })
}

/// A free loopback port for `--port 0`: the host's URL must be known before it starts, because
/// the local SignalR service's upstream template points at it. (Another process could take the
/// port in between; locally that is a negligible risk.)
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a connection string names a real SignalR instance rather than a local stand-in.
fn names_real_instance(cs: &str) -> bool {
    cs.parse::<ConnectionString>().is_ok_and(|cs| match cs.endpoint.host() {
        Some(url::Host::Domain(d)) => !d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        None => false,
    })
}

/// The local SignalR service `meschain dev` started.
struct Started {
    service: Arc<LocalSignalR>,
    /// Whether the handler keeps the settings' connection string (a Key Vault reference to this
    /// service) instead of being handed this service's.
    follows_settings: bool,
}

/// Starts the local SignalR service unless the settings name a real instance. It keeps the
/// settings' access key as its primary when they carry one (so tokens minted elsewhere with it
/// stay valid), has a random secondary as every Azure instance does, and sends every upstream
/// event to `connection-events` with the host's function key. With `follow` (the setting is a
/// Key Vault reference) and a port in the connection string, it listens on that port.
async fn start_local_signalr(
    app: &App,
    configured: &str,
    follow: bool,
    keys: &Keys,
    host_port: u16,
    port: Option<u16>,
) -> anyhow::Result<Option<Started>> {
    if names_real_instance(configured) {
        return Ok(None);
    }
    let parsed = configured.parse::<ConnectionString>().ok();
    let mut config = meschain_signalr_service::Config::default();
    if let Some(key) = parsed.as_ref().and_then(|cs| cs.access_key().cloned()) {
        config.access_keys[0] = AccessKey::new(key.expose());
    }
    let named_port = parsed.as_ref().and_then(|cs| cs.endpoint.port());
    let follows_settings = follow && named_port.is_some() && port.is_none_or(|p| Some(p) == named_port);
    let port = if follows_settings { named_port } else { port };
    let upstream =
        app.functions.iter().find(|f| f.name.eq_ignore_ascii_case(CONNECTION_EVENTS)).and_then(|f| match &f.trigger {
            Trigger::Http { route, .. } => Some(route.clone()),
            _ => None,
        });
    match upstream {
        Some(route) => {
            let prefix = &app.host.route_prefix;
            let path = if prefix.is_empty() { route } else { format!("{prefix}/{route}") };
            let url = format!("http://127.0.0.1:{host_port}/{path}?code={}", keys.function);
            config.upstream = vec![UpstreamTemplate::any(url)];
        }
        None => {
            tracing::warn!("no {CONNECTION_EVENTS} HTTP function: the local SignalR service will not call upstream")
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))
        .await
        .with_context(|| format!("binding the local SignalR service on 127.0.0.1:{}", port.unwrap_or(0)))?;
    let service = Arc::new(LocalSignalR::start(config, listener).await?);
    Ok(Some(Started { service, follows_settings }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_real_instance() {
        assert!(names_real_instance("Endpoint=https://mine.service.signalr.net;AccessKey=k;Version=1.0;"));
        assert!(!names_real_instance("Endpoint=http://localhost;Port=8888;AccessKey=k;Version=1.0;"));
        assert!(!names_real_instance("Endpoint=http://127.0.0.1:8888;AccessKey=k;Version=1.0;"));
        assert!(!names_real_instance("Endpoint=http://[::1]:8888;AccessKey=k;Version=1.0;"));
        assert!(!names_real_instance(""));
        assert!(!names_real_instance("garbage"));
    }
}
