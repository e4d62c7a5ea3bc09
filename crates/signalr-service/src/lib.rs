//! A local Azure SignalR Service in serverless mode: the client endpoints (negotiate,
//! WebSockets, Server-Sent Events, long polling, JSON and MessagePack hub protocols), the
//! data-plane REST API, and upstream webhook calls, following
//! the documented contract (https://learn.microsoft.com/azure/azure-signalr/signalr-reference-data-plane-rest-api,
//! https://learn.microsoft.com/azure/azure-signalr/concept-upstream). Where the real service and Microsoft's emulator
//! differ, this follows the real service (token expiry enforced, audiences checked,
//! `x-ms-error-code` on 404s).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let service = meschain_signalr_service::start(Default::default(), listener).await?;
//! println!("{}", service.connection_string());
//! service.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod config;
pub mod connection;
pub mod keys;
pub mod registry;
pub mod rest;
pub mod server;
pub mod service;
pub mod session;
pub mod transports;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Config, Pattern, UpstreamTemplate};
pub use keys::{AccessKeys, KeyType};
pub use meschain_signalr::AccessKey;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often expired pending tokens and user→group memberships are dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to finish their Close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A service running on a listener; stop it with [`RunningService::shutdown`].
pub struct RunningService {
    addr: SocketAddr,
    service: Arc<service::Service>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

/// Starts serving on `listener` (bind it to a loopback address).
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<RunningService> {
    if config.access_keys.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "at least one access key is required"));
    }
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let svc = Arc::new(service::Service::new(config, rx.clone()));
    let app = server::app(svc.clone());
    let mut server_rx = rx;
    let server = tokio::spawn(async move {
        // Hub messages are small and latency matters more than segment count.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = server_rx.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "SignalR service stopped with an error");
        }
    });
    let sweep_svc = svc.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            sweep_svc.sweep(std::time::Instant::now());
        }
    });
    Ok(RunningService { addr, service: svc, shutdown: tx, server, sweeper })
}

impl RunningService {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `Endpoint=http://localhost;Port=<port>;AccessKey=<primary>;Version=1.0;` — what the
    /// handler's `ConnectionString` parser accepts.
    pub fn connection_string(&self) -> String {
        self.connection_string_with(&self.service.keys.primary())
    }

    /// The connection string carrying `key` (the portal's primary/secondary connection strings).
    pub fn connection_string_with(&self, key: &AccessKey) -> String {
        format!("Endpoint=http://localhost;Port={};AccessKey={};Version=1.0;", self.addr.port(), key.expose())
    }

    /// The keys accepted now; regenerate one with [`AccessKeys::regenerate`].
    pub fn keys(&self) -> &AccessKeys {
        &self.service.keys
    }

    /// Client connections currently counted against the quota (pending and connected).
    pub fn connection_count(&self) -> usize {
        self.service.connection_count()
    }

    /// Closes every client connection (Close message first), stops accepting, and waits a
    /// short grace period for everything to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.sweeper.abort();
        self.service.clear_pending();
        let mut server = self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await.is_err() {
            server.abort();
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.service.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
