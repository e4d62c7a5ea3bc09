//! What `marketplace-sync` keeps between invocations: one connector per marketplace (its rate
//! limiters must outlive a delivery to mean anything), the HTTP client, and the sync settings.
//! The store and recorder are the app's, given to the function with its other dependencies.
//!
//! A connector is rebuilt when a setting it was built from changes: marketplace credentials
//! may be Key Vault references, and a rotated API secret must reach the next delivery without
//! a restart. Syncs already running finish with the connector they started with.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meschain_marketplace::connector::Connector;
use meschain_marketplace::selection;
use meschain_model::settings::{SYNC_LEASE_SECONDS, SYNC_TIME_BUDGET_SECONDS};

/// Default time budget: below the 5-minute `functionTimeout` with a minute to spare.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(240);
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct SyncRuntime {
    pub http: reqwest::Client,
    /// How long one delivery works before continuing in a new message.
    pub budget: Duration,
    pub lease_ttl: Duration,
    settings: Lookup,
    connectors: Mutex<HashMap<String, Built>>,
}

/// A connector and what it was built from.
struct Built {
    connector: Arc<dyn Connector>,
    /// The settings the build read, and a fingerprint of their values then (not the values:
    /// some are secrets, and only a change matters).
    read: Vec<String>,
    fingerprint: u64,
}

fn fingerprint(names: &[String], get: &dyn Fn(&str) -> Option<String>) -> u64 {
    let mut h = DefaultHasher::new();
    for name in names {
        get(name).hash(&mut h);
    }
    h.finish()
}

/// The sync's own settings, checked with the others at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSettings {
    pub budget: Duration,
    pub lease_ttl: Duration,
}

impl SyncSettings {
    /// Reads `SYNC_TIME_BUDGET_SECONDS` and `SYNC_LEASE_SECONDS`; a problem names its setting.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut seconds = |name: &'static str, default: Duration, range: std::ops::RangeInclusive<u64>| match get(name)
        {
            None => default,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(s) if range.contains(&s) => Duration::from_secs(s),
                _ => {
                    problems.push((name, format!("must be whole seconds from {} to {}", range.start(), range.end())));
                    default
                }
            },
        };
        let budget = seconds(SYNC_TIME_BUDGET_SECONDS, DEFAULT_BUDGET, 5..=3600);
        let lease_ttl = seconds(SYNC_LEASE_SECONDS, DEFAULT_LEASE, 2..=3600);
        if problems.is_empty() { Ok(SyncSettings { budget, lease_ttl }) } else { Err(problems) }
    }
}

impl SyncRuntime {
    /// `settings` reads connector settings (the environment in the handler).
    pub fn new(settings: Lookup, sync: SyncSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        SyncRuntime {
            http,
            budget: sync.budget,
            lease_ttl: sync.lease_ttl,
            settings,
            connectors: Mutex::new(HashMap::new()),
        }
    }

    /// Over the process environment.
    pub fn from_env(sync: SyncSettings) -> Self {
        Self::new(Arc::new(|k: &str| std::env::var(k).ok()), sync)
    }

    /// The connector of `marketplace`, built from settings on first use and again when one of
    /// those settings has changed (a rotated credential).
    pub fn connector(&self, marketplace: &str) -> Result<Arc<dyn Connector>, String> {
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(built) = connectors.get(marketplace) {
            if fingerprint(&built.read, &*self.settings) == built.fingerprint {
                return Ok(built.connector.clone());
            }
            tracing::info!(marketplace, "connector settings changed: building it again");
        }
        let read = Mutex::new(Vec::new());
        let settings = self.settings.clone();
        let recording = |k: &str| {
            read.lock().unwrap_or_else(|p| p.into_inner()).push(k.to_owned());
            settings(k)
        };
        let connector = selection::from_settings(marketplace, self.http.clone(), &recording)?;
        let read = read.into_inner().unwrap_or_else(|p| p.into_inner());
        let fingerprint = fingerprint(&read, &*self.settings);
        connectors.insert(marketplace.to_string(), Built { connector: connector.clone(), read, fingerprint });
        Ok(connector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> Lookup {
        Arc::new(move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn test_settings() {
        let s = SyncSettings::from_lookup(&*lookup(&[])).unwrap();
        assert_eq!((s.budget, s.lease_ttl), (DEFAULT_BUDGET, DEFAULT_LEASE));
        let err = SyncSettings::from_lookup(&*lookup(&[(SYNC_TIME_BUDGET_SECONDS, "0"), (SYNC_LEASE_SECONDS, "x")]));
        let names: Vec<&str> = err.unwrap_err().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [SYNC_TIME_BUDGET_SECONDS, SYNC_LEASE_SECONDS]);
        let rt = SyncRuntime::new(lookup(&[("MARKETPLACE_SANDBOX", "n11")]), s);
        assert!(rt.connector("n11").unwrap().is_sandbox());
        assert!(rt.connector("ozon").err().unwrap().contains("MARKETPLACE_SANDBOX"));
        let first = rt.connector("n11").unwrap();
        assert!(Arc::ptr_eq(&first, &rt.connector("n11").unwrap()), "one connector (and rate limit) per marketplace");
    }

    #[test]
    fn test_a_changed_credential_rebuilds_the_connector() {
        let values = Arc::new(Mutex::new(HashMap::from([
            ("TRENDYOL_BASE_URL", "https://apigw.trendyol.com/integration"),
            ("TRENDYOL_SELLER_ID", "123"),
            ("TRENDYOL_API_KEY", "key"),
            ("TRENDYOL_API_SECRET", "old-secret"),
        ])));
        let shared = values.clone();
        let get: Lookup = Arc::new(move |k: &str| shared.lock().unwrap().get(k).map(|v| v.to_string()));
        let rt = SyncRuntime::new(get, SyncSettings { budget: DEFAULT_BUDGET, lease_ttl: DEFAULT_LEASE });
        let first = rt.connector("trendyol").unwrap();
        assert!(Arc::ptr_eq(&first, &rt.connector("trendyol").unwrap()));
        values.lock().unwrap().insert("TRENDYOL_API_SECRET", "rotated-secret");
        let second = rt.connector("trendyol").unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "rebuilt with the rotated secret");
        assert!(Arc::ptr_eq(&second, &rt.connector("trendyol").unwrap()), "and kept while nothing changes");
        // An unrelated setting changing does not rebuild it.
        values.lock().unwrap().insert("SOMETHING_ELSE", "x");
        assert!(Arc::ptr_eq(&second, &rt.connector("trendyol").unwrap()));
    }
}
