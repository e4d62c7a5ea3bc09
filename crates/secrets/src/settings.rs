//! Start-up: which settings are Key Vault references, how the cache is tuned, and reading them
//! all before the process serves anything.
//!
//! A setting whose reference cannot be read stops the process (the caller exits non-zero) with
//! an error naming the setting and the vault, after a few attempts with back-off, in well under
//! the Functions host's start window: at most [`CacheOptions::startup_attempts`] reads of
//! [`VaultOptions::read_timeout`] each, plus 3.5 s of back-off (about 24 s with the defaults).

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheOptions, Secrets, StartupError};
use crate::credential::{CredentialError, VaultCredential};
use crate::reference::{ReferenceError, SecretRef, SettingValue, parse_setting};
use crate::vault::{KeyVault, VaultEndpointOverrides, VaultOptions, http_client};

/// How often secrets are re-read, in seconds (default 300).
pub const REFRESH_SETTING: &str = "SECRETS_REFRESH_SECONDS";
/// How long a replaced secret stays accepted, in seconds (default the larger of 900 and twice
/// the refresh interval).
pub const OVERLAP_SETTING: &str = "SECRETS_OVERLAP_SECONDS";

/// Why the secrets could not be made ready. Every variant names settings, never values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("setting {setting}: {error}")]
    Reference { setting: String, error: ReferenceError },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// The cache and read tuning from `SECRETS_REFRESH_SECONDS` and `SECRETS_OVERLAP_SECONDS`.
pub fn options_from_env(var: impl Fn(&str) -> Option<String>) -> Result<(CacheOptions, VaultOptions), SecretsError> {
    let seconds = |name: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>, SecretsError> {
        let Some(v) = var(name).filter(|v| !v.trim().is_empty()) else { return Ok(None) };
        match v.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(SecretsError::Config(format!(
                "{name} must be a whole number of seconds from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    };
    let refresh = seconds(REFRESH_SETTING, 1..=86_400)?.unwrap_or(300);
    let overlap = seconds(OVERLAP_SETTING, 0..=604_800)?.unwrap_or((2 * refresh).max(900));
    if overlap < refresh {
        // Other instances keep using the old value until their own next refresh.
        return Err(SecretsError::Config(format!("{OVERLAP_SETTING} must be at least {REFRESH_SETTING}")));
    }
    let cache = CacheOptions {
        refresh_every: Duration::from_secs(refresh),
        overlap: Duration::from_secs(overlap),
        ..CacheOptions::default()
    };
    Ok((cache, VaultOptions { read_timeout: Duration::from_secs(5) }))
}

/// The settings among `settings` (name, value) whose values are Key Vault references.
/// A malformed reference is an error naming its setting.
pub fn references<'a>(
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(String, SecretRef)>, SecretsError> {
    let mut out = Vec::new();
    for (setting, value) in settings {
        match parse_setting(value) {
            Ok(SettingValue::Literal(_)) => {}
            Ok(SettingValue::Reference(r)) => out.push((setting.to_owned(), r)),
            Err(error) => return Err(SecretsError::Reference { setting: setting.to_owned(), error }),
        }
    }
    Ok(out)
}

/// Reads every Key Vault reference among `settings` with the credential the environment
/// (`var`) calls for. With no reference, touches neither the network nor a credential.
pub async fn resolve<'a>(
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Secrets, SecretsError> {
    let refs = references(settings)?;
    let (cache, vault_options) = options_from_env(&var)?;
    if refs.is_empty() {
        return Ok(Secrets::empty());
    }
    let overrides = VaultEndpointOverrides::from_env(&var).map_err(SecretsError::Config)?;
    let hosts: Vec<String> = refs.iter().map(|(_, r)| host_of(r.vault_url()).to_owned()).collect();
    let http = http_client(&overrides, hosts.iter().map(String::as_str)).map_err(SecretsError::Config)?;
    let credential = VaultCredential::from_env(&var, http.clone())?;
    tracing::info!("reading {} Key Vault secret(s) with the {}", refs.len(), credential.kind());
    let vault = KeyVault::new(credential, http, vault_options);
    Ok(Secrets::resolve(Arc::new(vault), refs, cache).await?)
}

/// Resolves every Key Vault reference in the process environment (any variable may be one).
pub async fn resolve_process_env() -> Result<Secrets, SecretsError> {
    let vars: Vec<(String, String)> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    resolve(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())), |n| std::env::var(n).ok()).await
}

/// A setting's value as of now: the current secret when it was a vault reference, else what
/// `var` has. Give this to a settings parser in place of the raw environment.
pub fn lookup(secrets: &Secrets, name: &str, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    match secrets.get(name) {
        Some(handle) => Some(handle.current().expose().to_owned()),
        None => var(name),
    }
}

fn host_of(vault_url: &str) -> &str {
    let host = vault_url.trim_start_matches("https://");
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn test_options() {
        let (c, v) = options_from_env(env(&[])).unwrap();
        assert_eq!((c.refresh_every.as_secs(), c.overlap.as_secs()), (300, 900));
        assert_eq!(v.read_timeout, Duration::from_secs(5));
        let (c, _) = options_from_env(env(&[(REFRESH_SETTING, "3600")])).unwrap();
        assert_eq!(c.overlap.as_secs(), 7200);
        let (c, _) = options_from_env(env(&[(REFRESH_SETTING, " 2 "), (OVERLAP_SETTING, "6")])).unwrap();
        assert_eq!((c.refresh_every.as_secs(), c.overlap.as_secs()), (2, 6));
        for bad in [
            &[(REFRESH_SETTING, "0")][..],
            &[(REFRESH_SETTING, "5m")],
            &[(OVERLAP_SETTING, "-1")],
            &[(REFRESH_SETTING, "600"), (OVERLAP_SETTING, "60")],
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(bad.to_vec().into_boxed_slice());
            let e = options_from_env(env(pairs)).unwrap_err().to_string();
            assert!(e.contains("SECRETS_"), "{e}");
        }
    }

    #[test]
    fn test_references_name_the_bad_setting() {
        let ok = references([
            ("PLAIN", "value"),
            ("AUTH_JWT_SECRET", "@Microsoft.KeyVault(VaultName=myvault;SecretName=jwt)"),
        ])
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].0, "AUTH_JWT_SECRET");
        let e = references([("AzureSignalRConnectionString", "@Microsoft.KeyVault(VaultName=x)")]).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("setting AzureSignalRConnectionString:"), "{shown}");
    }

    #[test]
    fn test_host_of() {
        assert_eq!(host_of("https://myvault.vault.azure.net"), "myvault.vault.azure.net");
        assert_eq!(host_of("https://myvault.vault.azure.net:8443"), "myvault.vault.azure.net");
    }

    #[tokio::test]
    async fn test_no_references_needs_no_vault() {
        let secrets = resolve([("A", "literal")], env(&[])).await.unwrap();
        assert!(secrets.is_empty());
        assert_eq!(secrets.health().status, crate::cache::HealthStatus::Healthy);
    }
}
