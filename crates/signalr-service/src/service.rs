//! Shared state of one running service: configuration, hubs, negotiated-but-not-connected
//! connection tokens, live HTTP transports, and the connection quota.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use meschain_signalr::token::ValidatedClaims;
use tokio::sync::watch;

use crate::config::Config;
use crate::keys::AccessKeys;
use crate::registry::Registry;
use crate::transports::HttpConnection;

/// One unit of the connection quota, held from negotiate until the connection ends.
pub struct Slot {
    count: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A negotiated connection waiting for its transport request.
pub struct Pending {
    pub connection_id: String,
    pub hub: String,
    pub claims: ValidatedClaims,
    pub created: Instant,
    pub slot: Slot,
}

/// A connection token in use by a transport.
#[derive(Clone)]
pub enum Live {
    WebSocket,
    Http(Arc<HttpConnection>),
}

pub struct Service {
    pub config: Arc<Config>,
    /// Starts as `config.access_keys`; keys can be regenerated while the service runs.
    pub keys: Arc<AccessKeys>,
    pub registry: Registry,
    pub http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
    live: Mutex<HashMap<String, Live>>,
    count: Arc<AtomicUsize>,
    /// Flips to true on shutdown; connection tasks close their clients.
    pub shutdown: watch::Receiver<bool>,
}

impl Service {
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> Service {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.upstream_timeout)
            .build()
            .expect("a plain HTTP client builds");
        Service {
            keys: Arc::new(AccessKeys::new(config.access_keys.clone())),
            config: Arc::new(config),
            registry: Registry::default(),
            http,
            pending: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            count: Arc::new(AtomicUsize::new(0)),
            shutdown,
        }
    }

    /// Takes a quota slot, or `None` when the service is full (429).
    pub fn take_slot(&self) -> Option<Slot> {
        let max = self.config.max_connections;
        self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot { count: self.count.clone() })
    }

    pub fn connection_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn add_pending(&self, token: String, pending: Pending) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(token, pending);
    }

    /// Claims a pending token for a transport; `None` if unknown or expired (404).
    pub fn take_pending(&self, token: &str, now: Instant) -> Option<Pending> {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(token)?;
        (now.duration_since(p.created) <= self.config.pending_timeout).then_some(p)
    }

    pub fn live(&self, token: &str) -> Option<Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }

    pub fn set_live(&self, token: &str, live: Live) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(token.to_string(), live);
    }

    pub fn remove_live(&self, token: &str) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(token);
    }

    /// Forgets every negotiated-but-unused token (shutdown).
    pub fn clear_pending(&self) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Periodic housekeeping: expired pending tokens and user→group memberships.
    pub fn sweep(&self, now: Instant) {
        let timeout = self.config.pending_timeout;
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, p| now.duration_since(p.created) <= timeout);
        self.registry.sweep(now);
    }
}
