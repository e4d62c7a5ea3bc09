//! A local stand-in for Azure Key Vault's secrets API, for tests, benchmarks and `meschain dev`.
//!
//! Nothing here can run the real Key Vault, and no maintained emulator runs on these machines
//! (see https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret), so this follows the documented contract: the
//! challenge-based bearer flow, `GET /secrets/{name}[/{version}]`, the documented error bodies
//! (not found, disabled, forbidden, throttled), integer times. It listens on two loopback ports:
//!
//! - the vault, over HTTPS with a certificate for `*.vault.azure.net` signed by a CA made at
//!   start ([`tls`]). Clients trust that CA and send the vault host to this port; every other
//!   check (hostname, chain, Key Vault's challenge-resource check) stays on.
//! - a plain-HTTP side: App Service's managed-identity endpoint (`/msi/token`), so the real
//!   `ManagedIdentityCredential` can be used, and a control API for tests ([`control`]).
//!
//! Every vault host name reaches the same set of secrets.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let vault = meschain_fake_keyvault::FakeVault::start(Default::default()).await?;
//! vault.state().set_secret("jwt", "s3cr3t");
//! println!("{} via {}", vault.vault_url("myvault"), vault.address());
//! vault.stop().await;
//! # Ok(()) }
//! ```

pub mod control;
pub mod tls;
pub mod vault;

use std::net::{Ipv4Addr, SocketAddr};

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use vault::{Fault, FaultKind, Stats, VaultState};

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bearer tokens the vault accepts besides those its identity endpoint issues.
    pub accepted_tokens: Vec<String>,
    /// The `IDENTITY_HEADER` secret the identity endpoint requires.
    pub identity_header: String,
}

impl Default for Options {
    fn default() -> Self {
        Options { accepted_tokens: Vec::new(), identity_header: uuid::Uuid::new_v4().simple().to_string() }
    }
}

/// A running fake vault; stop it with [`FakeVault::stop`].
pub struct FakeVault {
    address: SocketAddr,
    side: SocketAddr,
    ca_pem: String,
    identity_header: String,
    state: VaultState,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeVault {
    /// Starts both listeners on free loopback ports.
    pub async fn start(options: Options) -> anyhow::Result<FakeVault> {
        let tls = tls::generate()?;
        let state = VaultState::default();
        for token in &options.accepted_tokens {
            state.accept_token(token);
        }
        let (shutdown, rx) = watch::channel(false);

        let vault_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = vault_listener.local_addr()?;
        let vault_task = tokio::spawn(serve_tls(
            vault_listener,
            TlsAcceptor::from(tls.server),
            vault::router(state.clone()),
            rx.clone(),
        ));

        let side_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let side = side_listener.local_addr()?;
        let app = control::router(state.clone(), options.identity_header.clone());
        let mut side_rx = rx;
        let side_task = tokio::spawn(async move {
            let serve = axum::serve(side_listener, app).with_graceful_shutdown(async move {
                let _ = side_rx.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "fake Key Vault control side stopped");
            }
        });
        Ok(FakeVault {
            address,
            side,
            ca_pem: tls.ca_pem,
            identity_header: options.identity_header,
            state,
            shutdown,
            tasks: vec![vault_task, side_task],
        })
    }

    /// Where the vault listens (HTTPS). Send vault hosts here.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The URL a client uses for the vault `name`: the real host name, without this port
    /// (the client resolves the host to [`FakeVault::address`]).
    pub fn vault_url(&self, name: &str) -> String {
        format!("https://{name}.vault.azure.net")
    }

    /// The CA to trust, in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// `IDENTITY_ENDPOINT` for a process that should use the managed-identity credential.
    pub fn identity_endpoint(&self) -> String {
        format!("http://{}/msi/token", self.side)
    }

    /// `IDENTITY_HEADER` to go with it.
    pub fn identity_header(&self) -> &str {
        &self.identity_header
    }

    /// The base URL of the control API.
    pub fn control_url(&self) -> String {
        format!("http://{}/control", self.side)
    }

    /// The secrets, faults and counters, for in-process tests.
    pub fn state(&self) -> &VaultState {
        &self.state
    }

    /// Stops both listeners and drops open connections (hung requests included).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(app);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "fake Key Vault accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let serve = async {
                // A client that never finishes its handshake must not hold a task forever.
                let tls =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await.ok()?.ok()?;
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await.ok()
            };
            tokio::select! {
                _ = serve => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}
