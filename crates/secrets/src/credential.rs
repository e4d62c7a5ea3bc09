//! Which identity reads the vault, chosen from the environment the way Azure's
//! `DefaultAzureCredential` does, minus the sources that do not apply to a Functions app.
//!
//! - Workload identity (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`): AKS.
//! - A service principal's secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`).
//! - Managed identity where the platform provides one (`IDENTITY_ENDPOINT`, App Service and
//!   Functions; `MSI_ENDPOINT`): system-assigned, or user-assigned with `AZURE_CLIENT_ID`.
//! - Otherwise the developer's Azure CLI (or azd) login.
//!
//! `SECRETS_CREDENTIAL` forces one (`workload-identity`, `client-secret`, `managed-identity`,
//! `developer`), e.g. managed identity on a VM, where only the instance metadata endpoint says so.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use crate::transport::identity_client_options as client_options;

/// The setting that forces a credential kind.
pub const CREDENTIAL_SETTING: &str = "SECRETS_CREDENTIAL";

/// The kind of identity used to read the vault. Names only: no identifiers, no secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    WorkloadIdentity,
    ClientSecret,
    /// System-assigned, or user-assigned when `AZURE_CLIENT_ID` is set.
    ManagedIdentity {
        user_assigned: bool,
    },
    /// The Azure CLI or Azure Developer CLI login of whoever runs the process.
    DeveloperTools,
    /// A credential the caller supplied (tests, a token source of its own).
    Supplied,
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::WorkloadIdentity => "workload identity",
            CredentialKind::ClientSecret => "client secret",
            CredentialKind::ManagedIdentity { user_assigned: false } => "system-assigned managed identity",
            CredentialKind::ManagedIdentity { user_assigned: true } => "user-assigned managed identity",
            CredentialKind::DeveloperTools => "Azure CLI / azd login",
            CredentialKind::Supplied => "supplied credential",
        })
    }
}

/// A credential the environment does not allow building. Names settings, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Key Vault credential: {0}")]
pub struct CredentialError(pub String);

/// The token source for vault reads, with its kind for logs. `Debug` shows the kind only.
#[derive(Clone)]
pub struct VaultCredential {
    pub(crate) credential: Arc<dyn TokenCredential>,
    kind: CredentialKind,
}

impl fmt::Debug for VaultCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCredential").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl VaultCredential {
    /// A credential of the caller's choosing.
    pub fn supplied(credential: Arc<dyn TokenCredential>) -> Self {
        VaultCredential { credential, kind: CredentialKind::Supplied }
    }

    /// The credential the environment (`var` looks a name up) calls for, speaking HTTP through
    /// `http`. Fails when the variables of the chosen kind are incomplete.
    pub fn from_env(var: impl Fn(&str) -> Option<String>, http: reqwest::Client) -> Result<Self, CredentialError> {
        let kind = choose(&var)?;
        let options = client_options(http);
        let fail = |e: azure_core::Error| CredentialError(format!("{kind}: {e}"));
        let need = |name: &str| {
            var(name).filter(|v| !v.is_empty()).ok_or_else(|| CredentialError(format!("{kind} needs {name}")))
        };
        let credential: Arc<dyn TokenCredential> = match kind {
            CredentialKind::WorkloadIdentity => {
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions { client_options: options },
                    client_id: Some(need("AZURE_CLIENT_ID")?),
                    tenant_id: Some(need("AZURE_TENANT_ID")?),
                    token_file_path: Some(need("AZURE_FEDERATED_TOKEN_FILE")?.into()),
                }))
                .map_err(fail)?
            }
            CredentialKind::ClientSecret => ClientSecretCredential::new(
                &need("AZURE_TENANT_ID")?,
                need("AZURE_CLIENT_ID")?,
                Secret::new(need("AZURE_CLIENT_SECRET")?),
                Some(ClientSecretCredentialOptions { client_options: options }),
            )
            .map_err(fail)?,
            CredentialKind::ManagedIdentity { .. } => {
                let user_assigned_id = var("AZURE_CLIENT_ID").filter(|v| !v.is_empty()).map(UserAssignedId::ClientId);
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id,
                    client_options: options,
                }))
                .map_err(fail)?
            }
            CredentialKind::DeveloperTools => DeveloperToolsCredential::new(None).map_err(fail)?,
            CredentialKind::Supplied => unreachable!("choose never picks a supplied credential"),
        };
        Ok(VaultCredential { credential, kind })
    }

    pub fn kind(&self) -> CredentialKind {
        self.kind
    }
}

/// The credential kind the environment calls for (pure, so the rules are tested directly).
pub fn choose(var: impl Fn(&str) -> Option<String>) -> Result<CredentialKind, CredentialError> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    let managed = CredentialKind::ManagedIdentity { user_assigned: set("AZURE_CLIENT_ID") };
    if let Some(forced) = var(CREDENTIAL_SETTING).filter(|v| !v.is_empty()) {
        return match forced.to_ascii_lowercase().as_str() {
            "workload-identity" => Ok(CredentialKind::WorkloadIdentity),
            "client-secret" => Ok(CredentialKind::ClientSecret),
            "managed-identity" => Ok(managed),
            "developer" => Ok(CredentialKind::DeveloperTools),
            _ => Err(CredentialError(format!(
                "{CREDENTIAL_SETTING} must be workload-identity, client-secret, managed-identity or developer"
            ))),
        };
    }
    Ok(if set("AZURE_FEDERATED_TOKEN_FILE") {
        CredentialKind::WorkloadIdentity
    } else if set("AZURE_CLIENT_SECRET") {
        CredentialKind::ClientSecret
    } else if set("IDENTITY_ENDPOINT") || set("MSI_ENDPOINT") {
        managed
    } else {
        CredentialKind::DeveloperTools
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn test_choose() {
        use CredentialKind::*;
        assert_eq!(choose(env(&[])), Ok(DeveloperTools));
        assert_eq!(
            choose(env(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")])),
            Ok(ManagedIdentity { user_assigned: false })
        );
        assert_eq!(
            choose(env(&[("IDENTITY_ENDPOINT", "http://x"), ("AZURE_CLIENT_ID", "c")])),
            Ok(ManagedIdentity { user_assigned: true })
        );
        assert_eq!(choose(env(&[("MSI_ENDPOINT", "http://x")])), Ok(ManagedIdentity { user_assigned: false }));
        assert_eq!(choose(env(&[("AZURE_CLIENT_SECRET", "s"), ("IDENTITY_ENDPOINT", "http://x")])), Ok(ClientSecret));
        assert_eq!(
            choose(env(&[("AZURE_FEDERATED_TOKEN_FILE", "/t"), ("AZURE_CLIENT_SECRET", "s")])),
            Ok(WorkloadIdentity)
        );
        assert_eq!(choose(env(&[("IDENTITY_ENDPOINT", "")])), Ok(DeveloperTools), "empty is unset");
        assert_eq!(
            choose(env(&[(CREDENTIAL_SETTING, "Managed-Identity")])),
            Ok(ManagedIdentity { user_assigned: false })
        );
        assert_eq!(
            choose(env(&[(CREDENTIAL_SETTING, "developer"), ("IDENTITY_ENDPOINT", "http://x")])),
            Ok(DeveloperTools)
        );
        assert!(choose(env(&[(CREDENTIAL_SETTING, "cert")])).unwrap_err().0.contains(CREDENTIAL_SETTING));
    }

    #[test]
    fn test_incomplete_client_secret_names_the_setting_not_the_value() {
        let e =
            VaultCredential::from_env(env(&[("AZURE_CLIENT_SECRET", "hunter2")]), reqwest::Client::new()).unwrap_err();
        assert!(e.0.contains("AZURE_TENANT_ID"), "{e}");
        assert!(!e.0.contains("hunter2"));
    }

    #[test]
    fn test_client_secret_credential_debug_shows_kind_only() {
        let c = VaultCredential::from_env(
            env(&[
                ("AZURE_TENANT_ID", "22222222-2222-2222-2222-222222222222"),
                ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
                ("AZURE_CLIENT_SECRET", "very-secret-value"),
            ]),
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(c.kind(), CredentialKind::ClientSecret);
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-value") && shown.contains("ClientSecret"), "{shown}");
    }
}
