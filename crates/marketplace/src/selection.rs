//! Which connector a marketplace gets, from settings: the live connector when its credentials
//! are set, the sandbox only where it is asked for, and otherwise an error that names the
//! settings. A marketplace that has credentials *and* is listed for the sandbox is a start-up
//! error ([`check`]): one of the two would win silently, and an operator who just pasted live
//! credentials must not keep pushing to a simulation without knowing it.
//!
//! Kept apart from [`crate::connector`] (the trait every connector implements) so that the
//! connectors depend on the trait and this choice depends on them, never the other way round.

use std::sync::Arc;

use crate::connector::{Connector, SANDBOX_SETTING};

/// Reads one setting.
type Settings<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A marketplace with a live connector: whether its credentials are set, and how to build it.
struct Live {
    marketplace: &'static str,
    /// The settings' common prefix, for messages (`TRENDYOL_*`).
    prefix: &'static str,
    configured: fn(Settings) -> bool,
    build: fn(reqwest::Client, Settings) -> Result<Arc<dyn Connector>, String>,
}

const LIVE: &[Live] = &[
    Live {
        marketplace: "trendyol",
        prefix: "TRENDYOL_",
        configured: crate::trendyol::TrendyolConfig::configured,
        build: |http, get| {
            Ok(Arc::new(crate::trendyol::Trendyol::new(crate::trendyol::TrendyolConfig::from_settings(get)?, http)))
        },
    },
    Live {
        marketplace: "ozon",
        prefix: "OZON_",
        configured: crate::ozon::configured,
        build: |http, get| Ok(Arc::new(crate::ozon::Ozon::new(crate::ozon::OzonConfig::from_settings(get)?, http))),
    },
    Live {
        marketplace: "ebay",
        prefix: "EBAY_",
        configured: crate::ebay::configured,
        build: |http, get| Ok(Arc::new(crate::ebay::Ebay::new(crate::ebay::EbayConfig::from_settings(get)?, http))),
    },
    Live {
        marketplace: "hepsiburada",
        prefix: "HEPSIBURADA_",
        configured: crate::hepsiburada::configured,
        build: |http, get| {
            let config = crate::hepsiburada::HepsiburadaConfig::from_settings(get)?;
            Ok(Arc::new(crate::hepsiburada::Hepsiburada::new(config, http)))
        },
    },
    Live {
        marketplace: "n11",
        prefix: "N11_",
        configured: crate::n11::configured,
        build: |http, get| Ok(Arc::new(crate::n11::N11::new(crate::n11::N11Config::from_settings(get)?, http))),
    },
    Live {
        marketplace: "amazon",
        prefix: "AMAZON_",
        configured: crate::amazon::configured,
        build: |http, get| {
            Ok(Arc::new(crate::amazon::Amazon::new(crate::amazon::AmazonConfig::from_settings(get)?, http)))
        },
    },
];

fn live(marketplace: &str) -> Option<&'static Live> {
    LIVE.iter().find(|l| l.marketplace.eq_ignore_ascii_case(marketplace))
}

/// Checks the choice for every marketplace at start: one problem per marketplace that is both
/// configured and listed in [`SANDBOX_SETTING`].
pub fn check(get: &dyn Fn(&str) -> Option<String>) -> Result<(), Vec<String>> {
    let listed = get(SANDBOX_SETTING);
    let problems: Vec<String> = LIVE
        .iter()
        .filter(|l| (l.configured)(get) && sandbox_selected(l.marketplace, listed.as_deref()))
        .map(conflict)
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn conflict(l: &Live) -> String {
    format!(
        "{m} has live credentials ({p}*) and is listed in {SANDBOX_SETTING}: neither wins silently; remove {m} from \
         {SANDBOX_SETTING} to push to the real {m}, or remove the {p}* settings to keep the sandbox",
        m = l.marketplace,
        p = l.prefix,
    )
}

/// Builds the connector of `marketplace` from settings (`get` reads one setting).
pub fn from_settings(
    marketplace: &str,
    http: reqwest::Client,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Connector>, String> {
    let sandbox = sandbox_selected(marketplace, get(SANDBOX_SETTING).as_deref());
    match live(marketplace) {
        Some(l) if sandbox && (l.configured)(get) => Err(conflict(l)),
        _ if sandbox => {
            Ok(Arc::new(crate::sandbox::Sandbox::new(marketplace, crate::sandbox::SandboxConfig::default())))
        }
        // No credentials at all: say both ways out, not only the settings the live connector lacks.
        Some(l) if !(l.configured)(get) => (l.build)(http, get).map_err(|e| {
            format!("{e}; or list {marketplace} in {SANDBOX_SETTING} to use the sandbox", marketplace = l.marketplace)
        }),
        Some(l) => (l.build)(http, get),
        None => Err(format!(
            "no live connector for {marketplace}; list {marketplace} in {SANDBOX_SETTING} to use the sandbox"
        )),
    }
}

fn sandbox_selected(marketplace: &str, setting: Option<&str>) -> bool {
    setting.unwrap_or("").split(',').map(str::trim).any(|m| m == "*" || m.eq_ignore_ascii_case(marketplace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn test_sandbox_only_when_listed() {
        assert!(sandbox_selected("n11", Some("trendyol, n11")));
        assert!(sandbox_selected("ozon", Some("*")));
        assert!(!sandbox_selected("trendyol", Some("n11")));
        assert!(!sandbox_selected("trendyol", None));
        assert!(!sandbox_selected("trendyol", Some("")));
    }

    #[test]
    fn test_from_settings_never_falls_back_to_sandbox() {
        let http = reqwest::Client::new();
        let none = |_: &str| None;
        let err = from_settings("trendyol", http.clone(), &none).err().unwrap();
        assert!(err.contains("TRENDYOL_SELLER_ID"), "{err}");
        let err = from_settings("ozon", http.clone(), &none).err().unwrap();
        assert!(err.contains("OZON_API_KEY") && err.contains("OZON_WAREHOUSE_ID"), "{err}");
        let err = from_settings("ebay", http.clone(), &none).err().unwrap();
        assert!(err.contains("EBAY_REFRESH_TOKEN"), "{err}");
        let err = from_settings("hepsiburada", http.clone(), &none).err().unwrap();
        assert!(err.contains("HEPSIBURADA_MERCHANT_ID") && err.contains("HEPSIBURADA_SERVICE_KEY"), "{err}");
        let err = from_settings("n11", http.clone(), &none).err().unwrap();
        assert!(err.contains("N11_APP_KEY") && err.contains("N11_APP_SECRET"), "{err}");
        let both = settings(&[(SANDBOX_SETTING, "*"), ("N11_APP_KEY", "k"), ("HEPSIBURADA_SERVICE_KEY", "s")]);
        let problems = check(&both).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("remove n11 from MARKETPLACE_SANDBOX")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("HEPSIBURADA_*")), "{problems:?}");
        let err = from_settings("amazon", http.clone(), &none).err().unwrap();
        assert!(err.contains("AMAZON_REFRESH_TOKEN") && err.contains("AMAZON_SELLER_ID"), "{err}");
        let sandbox = settings(&[(SANDBOX_SETTING, "n11")]);
        assert!(from_settings("n11", http, &sandbox).unwrap().is_sandbox());
    }

    #[test]
    fn test_credentials_and_sandbox_together_are_refused_with_the_fix() {
        let get = settings(&[
            (SANDBOX_SETTING, "trendyol,n11"),
            ("TRENDYOL_SELLER_ID", "1"),
            ("TRENDYOL_API_KEY", "k"),
            ("TRENDYOL_API_SECRET", "s3cret"),
        ]);
        let problems = check(&get).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("trendyol") && problems[0].contains("remove trendyol from MARKETPLACE_SANDBOX"));
        assert!(!problems[0].contains("s3cret"));
        let err = from_settings("trendyol", reqwest::Client::new(), &get).err().unwrap();
        assert_eq!(err, problems[0]);
        // The sandbox still serves the marketplaces without credentials.
        assert!(from_settings("n11", reqwest::Client::new(), &get).unwrap().is_sandbox());
        // Credentials alone: the live connector.
        let live_only =
            settings(&[("TRENDYOL_SELLER_ID", "1"), ("TRENDYOL_API_KEY", "k"), ("TRENDYOL_API_SECRET", "s")]);
        assert!(check(&live_only).is_ok());
        assert!(!from_settings("trendyol", reqwest::Client::new(), &live_only).unwrap().is_sandbox());
    }
}
