//! The store's settings, read from the app settings (environment) at start.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::recorder::RecorderConfig;

pub mod names {
    pub const DATA_DIR: &str = "MESCHAIN_DATA_DIR";
    pub const COSMOS_ENDPOINT: &str = "COSMOS_ENDPOINT";
    pub const COSMOS_KEY: &str = "COSMOS_KEY";
    pub const COSMOS_DATABASE: &str = "COSMOS_DATABASE";
    pub const COSMOS_CONTAINER: &str = "COSMOS_CONTAINER";
    pub const COSMOS_CREATE_IF_MISSING: &str = "COSMOS_CREATE_IF_MISSING";
    pub const ANALYTICS_TTL_SECONDS: &str = "ANALYTICS_TTL_SECONDS";
    pub const ANALYTICS_BUFFER: &str = "ANALYTICS_BUFFER";
}

pub const DEFAULT_DATABASE: &str = "meschain";
pub const DEFAULT_CONTAINER: &str = "events";
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_DATA_DIR: &str = "meschain-data";

/// Which store, and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in `data_dir` (created if missing).
    Embedded {
        data_dir: PathBuf,
    },
    Cosmos(CosmosSettings),
}

/// Cosmos DB settings. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CosmosSettings {
    /// `https://<account>.documents.azure.com:443/`
    pub endpoint: String,
    /// Account key; `None`: Microsoft Entra ID (managed identity, or developer login).
    pub key: Option<String>,
    pub database: String,
    pub container: String,
    /// Create the database and container on first use (needs control-plane rights: a key, or
    /// an Entra role that allows it). Off by default: in Azure, `infra/` creates them.
    pub create_if_missing: bool,
}

impl fmt::Debug for CosmosSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosmosSettings")
            .field("endpoint", &self.endpoint)
            .field("auth", &if self.key.is_some() { "key" } else { "entra" })
            .field("database", &self.database)
            .field("container", &self.container)
            .field("create_if_missing", &self.create_if_missing)
            .finish()
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Embedded { data_dir } => f.debug_struct("Embedded").field("data_dir", data_dir).finish(),
            Backend::Cosmos(c) => c.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub backend: Backend,
    /// How long analytics events and per-day counters are kept.
    pub analytics_ttl: Duration,
    pub recorder: RecorderConfigSettings,
}

/// The part of [`RecorderConfig`] that settings choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfigSettings {
    pub capacity: usize,
}

impl StoreSettings {
    pub fn recorder_config(&self) -> RecorderConfig {
        RecorderConfig { capacity: self.recorder.capacity, ..RecorderConfig::default() }
    }

    /// Embedded in `data_dir`, defaults elsewhere.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        StoreSettings {
            backend: Backend::Embedded { data_dir: data_dir.into() },
            analytics_ttl: DEFAULT_TTL,
            recorder: RecorderConfigSettings { capacity: RecorderConfig::default().capacity },
        }
    }

    /// Reads the settings through `get` (the environment in the handler). Errors name the
    /// setting, never its value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let analytics_ttl = match get(names::ANALYTICS_TTL_SECONDS) {
            None => DEFAULT_TTL,
            Some(v) => match v.parse::<u64>() {
                Ok(s) if (60..=10 * 365 * 24 * 3600).contains(&s) => Duration::from_secs(s),
                _ => {
                    return Err(format!("{} must be whole seconds from 60 to 315360000", names::ANALYTICS_TTL_SECONDS));
                }
            },
        };
        let capacity = match get(names::ANALYTICS_BUFFER) {
            None => RecorderConfig::default().capacity,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (100..=10_000_000).contains(&n) => n,
                _ => {
                    return Err(format!("{} must be a number of events from 100 to 10000000", names::ANALYTICS_BUFFER));
                }
            },
        };
        let backend = match get(names::COSMOS_ENDPOINT) {
            None => {
                Backend::Embedded { data_dir: get(names::DATA_DIR).unwrap_or_else(|| DEFAULT_DATA_DIR.into()).into() }
            }
            Some(endpoint) => {
                let url = url::Url::parse(&endpoint)
                    .map_err(|_| format!("{} must be an https URL", names::COSMOS_ENDPOINT))?;
                if url.scheme() != "https" || url.host_str().is_none() {
                    return Err(format!("{} must be an https URL", names::COSMOS_ENDPOINT));
                }
                let name = |setting: &str, default: &str| -> Result<String, String> {
                    let v = get(setting).unwrap_or_else(|| default.to_string());
                    let ok = (1..=255).contains(&v.len())
                        && !v.chars().any(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_control() || c == ' ');
                    if ok {
                        Ok(v)
                    } else {
                        Err(format!("{setting} must be 1-255 characters without / \\ ? # or spaces"))
                    }
                };
                let create_if_missing = match get(names::COSMOS_CREATE_IF_MISSING).as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(_) => return Err(format!("{} must be true or false", names::COSMOS_CREATE_IF_MISSING)),
                };
                Backend::Cosmos(CosmosSettings {
                    endpoint: url.to_string(),
                    key: get(names::COSMOS_KEY),
                    database: name(names::COSMOS_DATABASE, DEFAULT_DATABASE)?,
                    container: name(names::COSMOS_CONTAINER, DEFAULT_CONTAINER)?,
                    create_if_missing,
                })
            }
        };
        Ok(StoreSettings { backend, analytics_ttl, recorder: RecorderConfigSettings { capacity } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<StoreSettings, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        StoreSettings::from_lookup(|n| map.get(n).cloned())
    }

    #[test]
    fn test_defaults_and_cosmos() {
        let s = read(&[]).unwrap();
        assert_eq!(s.backend, Backend::Embedded { data_dir: DEFAULT_DATA_DIR.into() });
        assert_eq!(s.analytics_ttl, DEFAULT_TTL);
        let s =
            read(&[(names::COSMOS_ENDPOINT, "https://acct.documents.azure.com:443/"), (names::COSMOS_KEY, "c2VjcmV0")])
                .unwrap();
        let Backend::Cosmos(c) = &s.backend else { panic!() };
        assert_eq!((c.database.as_str(), c.container.as_str(), c.create_if_missing), ("meschain", "events", false));
        assert!(!format!("{s:?}").contains("c2VjcmV0"), "Debug must not show the key");
    }

    #[test]
    fn test_errors_name_the_setting_not_the_value() {
        for (name, value) in [
            (names::ANALYTICS_TTL_SECONDS, "soon"),
            (names::ANALYTICS_TTL_SECONDS, "7"),
            (names::COSMOS_ENDPOINT, "http://plain.example"),
            (names::ANALYTICS_BUFFER, "5"),
        ] {
            let e = read(&[(name, value)]).unwrap_err();
            assert!(e.contains(name) && !e.contains(value), "{e}");
        }
        let e = read(&[(names::COSMOS_ENDPOINT, "https://a.example/"), (names::COSMOS_CONTAINER, "a/b")]).unwrap_err();
        assert!(e.contains(names::COSMOS_CONTAINER));
    }
}
