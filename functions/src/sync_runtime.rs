//! What `marketplace-sync` keeps between invocations: one connector per marketplace (its rate
//! limiters must outlive a delivery to mean anything), the HTTP client, and the sync settings.
//! The store and recorder are the app's, given to the function with its other dependencies.
//!
//! A connector is rebuilt when a setting it was built from changes: marketplace credentials
//! may be Key Vault references, and a rotated API secret must reach the next delivery without
//! a restart. Syncs already running finish with the connector they started with.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meschain_marketplace::catalog::{Catalog, CatalogSettings};
use meschain_marketplace::connector::Connector;
use meschain_marketplace::net_guard::{ItemsHttp, UrlPolicy};
use meschain_marketplace::selection;
use meschain_model::marketplace::Marketplace;
use meschain_model::settings::{SYNC_LEASE_SECONDS, SYNC_TIME_BUDGET_SECONDS};

/// Default time budget: below the 5-minute `functionTimeout` with a minute to spare.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(240);
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct SyncRuntime {
    pub http: reqwest::Client,
    /// Fetches `itemsUrl` sources where `ITEMS_URL_ALLOWED_HOSTS` allows.
    pub items_http: ItemsHttp,
    /// How long one delivery works before continuing in a new message.
    pub budget: Duration,
    pub lease_ttl: Duration,
    /// The marketplaces the `catalog-sync` timer syncs (`None`: every configured one).
    pub catalog_sync_marketplaces: Option<Vec<meschain_model::marketplace::Marketplace>>,
    settings: Lookup,
    connectors: Mutex<HashMap<String, Built>>,
    /// The catalogue's pool and a fingerprint of the settings it was built from (its
    /// connection string may be a rotating Key Vault reference).
    catalog: Mutex<Option<(u64, Arc<Catalog>)>>,
    modes: std::sync::OnceLock<BTreeMap<&'static str, &'static str>>,
}

/// The settings a catalogue is built from.
const CATALOG_SETTINGS: [&str; 6] = [
    meschain_model::settings::CATALOG_MYSQL_URL,
    meschain_model::settings::CATALOG_TABLE_PREFIX,
    meschain_model::settings::CATALOG_BARCODE_COLUMN,
    meschain_model::settings::CATALOG_CUSTOMER_GROUP_ID,
    meschain_model::settings::CATALOG_TIME_ZONE,
    meschain_model::settings::CATALOG_MYSQL_CA_FILE,
];

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    pub budget: Duration,
    pub lease_ttl: Duration,
    /// Where `itemsUrl` sources may be fetched from.
    pub items_policy: UrlPolicy,
    /// The marketplaces the `catalog-sync` timer syncs (`None`: every configured one).
    pub catalog_sync_marketplaces: Option<Vec<meschain_model::marketplace::Marketplace>>,
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
        let items_policy = UrlPolicy::from_lookup(get).unwrap_or_else(|p| {
            problems.extend(p);
            UrlPolicy::default()
        });
        // Checked at start so a typo stops the handler; built (and rebuilt) on use.
        if let Err(p) = CatalogSettings::from_lookup(get) {
            problems.extend(p);
        }
        let catalog_sync_marketplaces = marketplaces_setting(get).unwrap_or_else(|p| {
            problems.push(p);
            None
        });
        if problems.is_empty() {
            Ok(SyncSettings { budget, lease_ttl, items_policy, catalog_sync_marketplaces })
        } else {
            Err(problems)
        }
    }
}

impl SyncRuntime {
    /// `settings` reads connector settings (the environment in the handler).
    pub fn new(settings: Lookup, sync: SyncSettings) -> Self {
        let http = meschain_tls::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        SyncRuntime {
            http,
            items_http: ItemsHttp::new(sync.items_policy),
            catalog: Mutex::new(None),
            modes: std::sync::OnceLock::new(),
            budget: sync.budget,
            lease_ttl: sync.lease_ttl,
            catalog_sync_marketplaces: sync.catalog_sync_marketplaces,
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

    /// How each marketplace syncs, for its dashboard card: `live` (its connector with
    /// credentials), `sandbox`, or `off` (neither is configured: a sync would be refused).
    /// Worked out once: it follows from which settings exist, and settings do not change while
    /// the process runs (a changed secret value keeps its mode).
    pub fn connector_modes(&self) -> &BTreeMap<&'static str, &'static str> {
        self.modes.get_or_init(|| {
            Marketplace::ALL
                .iter()
                .map(|m| {
                    let mode = match self.connector(m.name()) {
                        Ok(c) if c.is_sandbox() => "sandbox",
                        Ok(_) => "live",
                        Err(_) => "off",
                    };
                    (m.name(), mode)
                })
                .collect()
        })
    }

    /// The store's catalogue, `Ok(None)` when none is configured; built on first use and again
    /// when one of its settings changes (a rotated connection string).
    pub fn catalog(&self) -> Result<Option<Arc<Catalog>>, String> {
        let names: Vec<String> = CATALOG_SETTINGS.iter().map(|s| s.to_string()).collect();
        let print = fingerprint(&names, &*self.settings);
        let mut cached = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, catalog)) = &*cached
            && *p == print
        {
            return Ok(Some(catalog.clone()));
        }
        let settings = CatalogSettings::from_lookup(&*self.settings)
            .map_err(|problems| problems.iter().map(|(n, m)| format!("{n}: {m}")).collect::<Vec<_>>().join("; "))?;
        let Some(settings) = settings else {
            *cached = None;
            return Ok(None);
        };
        let catalog = Arc::new(Catalog::new(settings).map_err(|e| e.to_string())?);
        *cached = Some((print, catalog.clone()));
        Ok(Some(catalog))
    }

    /// Whether a catalogue is configured, and if not why (for the dashboard), without
    /// connecting to it.
    pub fn catalog_status(&self) -> CatalogStatus {
        match CatalogSettings::from_lookup(&*self.settings) {
            Ok(Some(s)) => CatalogStatus { configured: true, host: Some(s.host()), reason: None },
            Ok(None) => CatalogStatus {
                configured: false,
                host: None,
                reason: Some(meschain_marketplace::catalog::settings::NOT_CONFIGURED.to_string()),
            },
            Err(p) => CatalogStatus {
                configured: false,
                host: None,
                reason: Some(format!(
                    "the catalogue settings are invalid: {}",
                    p.iter().map(|(n, m)| format!("{n} {m}")).collect::<Vec<_>>().join("; ")
                )),
            },
        }
    }
}

/// Parses `CATALOG_SYNC_MARKETPLACES` (the `catalog-sync` timer's); a problem names the setting.
pub fn marketplaces_setting(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<meschain_model::marketplace::Marketplace>>, (&'static str, String)> {
    let Some(raw) = get(meschain_model::settings::CATALOG_SYNC_MARKETPLACES).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match meschain_model::marketplace::Marketplace::from_name(name) {
            Some(m) if !out.contains(&m) => out.push(m),
            Some(_) => {}
            None => {
                return Err((
                    meschain_model::settings::CATALOG_SYNC_MARKETPLACES,
                    format!("unknown marketplace {name:?}"),
                ));
            }
        }
    }
    Ok(Some(out))
}

/// Whether stock and price syncs can read the catalogue: on the dashboard snapshot, so the page
/// can say why its buttons are disabled instead of failing after a click.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogStatus {
    pub configured: bool,
    /// The database host (never the user or password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
        let rt = SyncRuntime::new(
            get,
            SyncSettings {
                budget: DEFAULT_BUDGET,
                lease_ttl: DEFAULT_LEASE,
                items_policy: UrlPolicy::default(),
                catalog_sync_marketplaces: None,
            },
        );
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

    #[test]
    fn test_marketplaces_setting() {
        let get = |v: &'static str| {
            move |k: &str| (k == meschain_model::settings::CATALOG_SYNC_MARKETPLACES).then(|| v.to_string())
        };
        assert_eq!(marketplaces_setting(&get(" ")).unwrap(), None);
        assert_eq!(
            marketplaces_setting(&get("trendyol, N11,trendyol")).unwrap(),
            Some(vec![
                meschain_model::marketplace::Marketplace::Trendyol,
                meschain_model::marketplace::Marketplace::N11
            ])
        );
        assert_eq!(
            marketplaces_setting(&get("etsy")).unwrap_err().0,
            meschain_model::settings::CATALOG_SYNC_MARKETPLACES
        );
    }

    #[tokio::test]
    async fn test_catalog_status_and_rebuilt_on_a_rotated_connection_string() {
        let values = Arc::new(Mutex::new(HashMap::<&'static str, &'static str>::new()));
        let shared = values.clone();
        let get: Lookup = Arc::new(move |k: &str| shared.lock().unwrap().get(k).map(|v| v.to_string()));
        let rt = SyncRuntime::new(get, SyncSettings::from_lookup(&|_: &str| None).unwrap());
        let status = rt.catalog_status();
        assert!(!status.configured && status.reason.as_deref().unwrap().contains("CATALOG_MYSQL_URL"));
        assert!(rt.catalog().unwrap().is_none());

        values.lock().unwrap().insert("CATALOG_MYSQL_URL", "mysql://reader:old-pw@db.example:3306/opencart");
        let status = rt.catalog_status();
        assert_eq!((status.configured, status.host.as_deref()), (true, Some("db.example")));
        assert!(!serde_json::to_string(&status).unwrap().contains("old-pw"));
        let first = rt.catalog().unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &rt.catalog().unwrap().unwrap()), "one pool while nothing changes");
        values.lock().unwrap().insert("CATALOG_MYSQL_URL", "mysql://reader:new-pw@db.example:3306/opencart");
        assert!(!Arc::ptr_eq(&first, &rt.catalog().unwrap().unwrap()), "a rotated password builds a new pool");

        values.lock().unwrap().insert("CATALOG_TABLE_PREFIX", "oc; drop");
        let status = rt.catalog_status();
        assert!(!status.configured && status.reason.as_deref().unwrap().contains("CATALOG_TABLE_PREFIX"));
        assert!(rt.catalog().unwrap_err().contains("CATALOG_TABLE_PREFIX"));
    }
}
