//! Microsoft Entra ID tokens for calls to the SignalR service (https://learn.microsoft.com/azure/azure-signalr/signalr-reference-data-plane-rest-api).
//!
//! The credentials are the official `azure_identity` ones; this module only picks one from the
//! connection string's `AuthType` and feeds it an HTTP transport: the adapter over the process's
//! own reqwest client (`meschain_secrets::transport`), so token fetches share its pool, its
//! trusted roots and its bounds on response bodies.
//!
//! Caching: every `azure_identity` credential used here keeps its token until five minutes
//! before expiry and refreshes it under a lock, so concurrent REST calls share one fetch.
//! A fetch is still bounded by the REST call's own time budget ([`EntraToken::bearer`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};
use meschain_secrets::transport::identity_client_options as client_options;
use meschain_signalr::connection_string::{EntraIdAuth, EntraIdKind};

/// The scope the official SDK asks for (https://learn.microsoft.com/azure/azure-signalr/signalr-howto-authorize-application).
pub const SCOPE: &str = "https://signalr.azure.com/.default";

/// The environment variables App Service and Functions give a process with a managed identity.
const MANAGED_IDENTITY_ENV: [&str; 2] = ["IDENTITY_ENDPOINT", "MSI_ENDPOINT"];

/// Why no Entra token could be had. The message names the failure, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Microsoft Entra token unavailable: {0}")]
pub struct EntraError(pub String);

/// A source of Entra tokens for the SignalR scope. `Debug` shows the credential kind only.
#[derive(Clone)]
pub struct EntraToken {
    credential: Arc<dyn TokenCredential>,
    kind: EntraIdKind,
}

impl fmt::Debug for EntraToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraToken").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl EntraToken {
    /// The credential `AuthType` asks for, speaking HTTP through `http`. Fails on settings the
    /// credential types refuse (an unsupported managed-identity source, a certificate).
    pub fn from_auth(auth: &EntraIdAuth, http: reqwest::Client) -> Result<Self, EntraError> {
        check(auth)?;
        let options = client_options(http);
        let fail = |e: azure_core::Error| EntraError(e.to_string());
        let managed = |client_id: Option<&String>| -> Result<Arc<dyn TokenCredential>, EntraError> {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.cloned().map(UserAssignedId::ClientId),
                client_options: options.clone(),
            };
            Ok(ManagedIdentityCredential::new(Some(options)).map_err(fail)?)
        };
        let credential: Arc<dyn TokenCredential> = match (auth.kind, app_secret(auth)) {
            (EntraIdKind::Application | EntraIdKind::Default, Some((tenant, client, secret))) => {
                let options = ClientSecretCredentialOptions { client_options: options.clone() };
                ClientSecretCredential::new(tenant, client.to_string(), Secret::new(secret.to_string()), Some(options))
                    .map_err(fail)?
            }
            (EntraIdKind::ManagedIdentity, _) => managed(auth.client_id.as_ref())?,
            // `azure` is the SDK's DefaultAzureCredential: in Azure that is the managed identity;
            // on a developer machine, the Azure CLI or azd login.
            (EntraIdKind::Default, None) if MANAGED_IDENTITY_ENV.iter().any(|v| std::env::var_os(v).is_some()) => {
                managed(auth.client_id.as_ref())?
            }
            (EntraIdKind::Default, None) => DeveloperToolsCredential::new(None).map_err(fail)?,
            (EntraIdKind::Application, None) => {
                return Err(EntraError("AuthType azure.app needs ClientId, TenantId and ClientSecret".into()));
            }
        };
        Ok(EntraToken { credential, kind: auth.kind })
    }

    /// A credential of the caller's choosing (tests, other token sources).
    pub fn from_credential(credential: Arc<dyn TokenCredential>, kind: EntraIdKind) -> Self {
        EntraToken { credential, kind }
    }

    /// A current token for the SignalR scope, fetched at most within `timeout`.
    pub async fn bearer(&self, timeout: Duration) -> Result<Secret, EntraError> {
        match tokio::time::timeout(timeout, self.credential.get_token(&[SCOPE], None)).await {
            Ok(Ok(token)) => Ok(token.token),
            Ok(Err(e)) => Err(EntraError(e.to_string())),
            Err(_) => Err(EntraError(format!("no token within {} ms", timeout.as_millis()))),
        }
    }
}

/// Settings problems with an `AuthType` connection string, found before anything starts.
pub fn check(auth: &EntraIdAuth) -> Result<(), EntraError> {
    if auth.kind == EntraIdKind::Application && app_secret(auth).is_none() {
        let problem = if auth.client_cert.is_some() {
            // azure_identity offers certificate credentials only with OpenSSL (its
            // `client_certificate` feature), which would add a second TLS stack.
            "clientCert is not supported by this build; use ClientSecret or a managed identity (AuthType=azure.msi)"
        } else {
            "AuthType azure.app needs ClientId, TenantId and ClientSecret"
        };
        return Err(EntraError(problem.into()));
    }
    let empty = |v: &Option<String>| v.as_deref().is_some_and(str::is_empty);
    if empty(&auth.client_id) || empty(&auth.tenant_id) || empty(&auth.client_secret) {
        return Err(EntraError("ClientId, TenantId and ClientSecret must not be empty when given".into()));
    }
    Ok(())
}

fn app_secret(auth: &EntraIdAuth) -> Option<(&str, &str, &str)> {
    Some((auth.tenant_id.as_deref()?, auth.client_id.as_deref()?, auth.client_secret.as_deref()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(kind: EntraIdKind) -> EntraIdAuth {
        EntraIdAuth { kind, client_id: None, tenant_id: None, client_secret: None, client_cert: None }
    }

    #[test]
    fn test_check() {
        assert!(check(&auth(EntraIdKind::ManagedIdentity)).is_ok());
        assert!(check(&auth(EntraIdKind::Default)).is_ok());
        let cert = EntraIdAuth {
            client_id: Some("c".into()),
            tenant_id: Some("t".into()),
            client_cert: Some("/cert.pem".into()),
            ..auth(EntraIdKind::Application)
        };
        assert!(check(&cert).unwrap_err().0.contains("clientCert is not supported"));
        let secret = EntraIdAuth { client_secret: Some("s".into()), ..cert.clone() };
        assert!(check(&secret).is_ok());
        let empty = EntraIdAuth { client_id: Some(String::new()), ..auth(EntraIdKind::ManagedIdentity) };
        assert!(check(&empty).is_err());
    }

    #[test]
    fn test_client_secret_credential_and_redacted_debug() {
        let a = EntraIdAuth {
            client_id: Some("11111111-1111-1111-1111-111111111111".into()),
            tenant_id: Some("22222222-2222-2222-2222-222222222222".into()),
            client_secret: Some("very-secret-value".into()),
            ..auth(EntraIdKind::Application)
        };
        let t = EntraToken::from_auth(&a, reqwest::Client::new()).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("Application"));
    }
}
