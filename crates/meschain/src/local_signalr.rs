//! The local SignalR service as `meschain dev` runs it: started beside the host, restarted on
//! request (clients must survive Azure SignalR Service restarting or failing over), and with
//! keys that can be listed and regenerated the way ARM's `listKeys` and `regenerateKey` do,
//! so a key rotation can be rehearsed locally exactly as operators run it in Azure.

use std::net::SocketAddr;
use std::time::Duration;

use meschain_signalr_service::{Config, KeyType, RunningService};
use serde::Serialize;
use tokio::sync::Mutex;

/// The running service, replaceable in place by a restart.
pub struct LocalSignalR {
    running: Mutex<Option<RunningService>>,
    config: Config,
    addr: SocketAddr,
}

/// ARM's `listKeys` answer for a SignalR resource (the fields apps and scripts read).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyListing {
    pub primary_key: String,
    pub secondary_key: String,
    pub primary_connection_string: String,
    pub secondary_connection_string: String,
}

impl LocalSignalR {
    /// Starts the service on `listener` with `config` (whose keys it starts with).
    pub async fn start(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<Self> {
        let svc = meschain_signalr_service::start(config.clone(), listener).await?;
        let addr = svc.local_addr();
        Ok(LocalSignalR { running: Mutex::new(Some(svc)), config, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The primary connection string, or `None` once stopped.
    pub async fn connection_string(&self) -> Option<String> {
        self.running.lock().await.as_ref().map(RunningService::connection_string)
    }

    /// Both keys and their connection strings.
    pub async fn keys(&self) -> Result<KeyListing, String> {
        let running = self.running.lock().await;
        let svc = running.as_ref().ok_or("the local SignalR service is not running")?;
        Ok(listing(svc))
    }

    /// Replaces one key with a fresh one; the replaced key stops working at once.
    pub async fn regenerate(&self, which: KeyType) -> Result<KeyListing, String> {
        let running = self.running.lock().await;
        let svc = running.as_ref().ok_or("the local SignalR service is not running")?;
        svc.keys().regenerate(which);
        tracing::info!(key = ?which, "local SignalR service key regenerated");
        Ok(listing(svc))
    }

    /// Stops the service, keeps it down for `down`, and starts it again on the same port with
    /// the same configuration and the keys it had. Every client connection drops.
    pub async fn restart(&self, down: Duration) -> Result<(), String> {
        let mut running = self.running.lock().await;
        let old = running.take().ok_or("the local SignalR service is not running")?;
        let config = Config { access_keys: old.keys().current().to_vec(), ..self.config.clone() };
        old.shutdown().await;
        tokio::time::sleep(down).await;
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|e| format!("cannot listen on {} again: {e}", self.addr))?;
        let svc = meschain_signalr_service::start(config, listener).await.map_err(|e| e.to_string())?;
        tracing::info!("local SignalR service restarted on {}", self.addr);
        *running = Some(svc);
        Ok(())
    }

    pub async fn shutdown(&self) {
        if let Some(svc) = self.running.lock().await.take() {
            svc.shutdown().await;
        }
    }
}

fn listing(svc: &RunningService) -> KeyListing {
    let keys = svc.keys();
    let key = |which| keys.get(which).map(|k| (k.expose().to_owned(), svc.connection_string_with(&k)));
    let (primary_key, primary_connection_string) = key(KeyType::Primary).unwrap_or_default();
    let (secondary_key, secondary_connection_string) = key(KeyType::Secondary).unwrap_or_default();
    KeyListing { primary_key, secondary_key, primary_connection_string, secondary_connection_string }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_keys_survive_a_restart() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = LocalSignalR::start(Config::default(), listener).await.unwrap();
        let before = local.keys().await.unwrap();
        assert_ne!(before.primary_key, before.secondary_key);
        let after = local.regenerate(KeyType::Secondary).await.unwrap();
        assert_eq!(after.primary_key, before.primary_key);
        assert_ne!(after.secondary_key, before.secondary_key);
        assert!(after.secondary_connection_string.contains(&after.secondary_key));

        local.restart(Duration::ZERO).await.unwrap();
        let restarted = local.keys().await.unwrap();
        assert_eq!((restarted.primary_key, restarted.secondary_key), (after.primary_key, after.secondary_key));
        local.shutdown().await;
        assert!(local.keys().await.is_err());
    }
}
