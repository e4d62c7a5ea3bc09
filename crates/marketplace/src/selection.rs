//! Which connector a marketplace gets, from settings: the sandbox only where it is asked for,
//! a live connector where one exists, and otherwise an error that names the settings.
//!
//! Kept apart from [`crate::connector`] (the trait every connector implements) so that the
//! connectors depend on the trait and this choice depends on them, never the other way round.

use std::sync::Arc;

use crate::connector::{Connector, SANDBOX_SETTING};

/// Builds the connector of `marketplace` from settings (`get` reads one setting).
///
/// A marketplace listed in [`SANDBOX_SETTING`] gets the sandbox; Trendyol otherwise gets its
/// seller API from `TRENDYOL_*`; any other marketplace has no connector yet and is an error
/// that names the settings, so a missing credential is never papered over with a simulation.
pub fn from_settings(
    marketplace: &str,
    http: reqwest::Client,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Connector>, String> {
    if sandbox_selected(marketplace, get(SANDBOX_SETTING).as_deref()) {
        return Ok(Arc::new(crate::sandbox::Sandbox::new(marketplace, crate::sandbox::SandboxConfig::default())));
    }
    match marketplace {
        "trendyol" => {
            let config = crate::trendyol::TrendyolConfig::from_settings(get)?;
            Ok(Arc::new(crate::trendyol::Trendyol::new(config, http)))
        }
        "amazon" => {
            let config = crate::amazon::AmazonConfig::from_settings(get)?;
            Ok(Arc::new(crate::amazon::Amazon::new(config, http)))
        }
        other => Err(format!(
            "no connector for {other}: only trendyol and amazon have live connectors; list {other} in {SANDBOX_SETTING} to use the sandbox"
        )),
    }
}

fn sandbox_selected(marketplace: &str, setting: Option<&str>) -> bool {
    setting.unwrap_or("").split(',').map(str::trim).any(|m| m == "*" || m.eq_ignore_ascii_case(marketplace))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = from_settings("n11", http.clone(), &none).err().unwrap();
        assert!(err.contains("MARKETPLACE_SANDBOX"), "{err}");
        let err = from_settings("trendyol", http.clone(), &none).err().unwrap();
        assert!(err.contains("TRENDYOL_SELLER_ID"), "{err}");
        let err = from_settings("amazon", http.clone(), &none).err().unwrap();
        assert!(err.contains("AMAZON_REFRESH_TOKEN") && err.contains("AMAZON_SELLER_ID"), "{err}");
        let sandbox = |k: &str| (k == SANDBOX_SETTING).then(|| "n11".to_string());
        assert!(from_settings("n11", http, &sandbox).unwrap().is_sandbox());
    }
}
