//! Reading secrets from Azure Key Vault with the official `azure_security_keyvault_secrets` client.
//!
//! The client does the challenge-based bearer flow (the first request goes out without a token;
//! the vault's 401 names the resource; the token is fetched for it and the request resent) and
//! checks that the challenge's resource matches the vault's domain, so a token is never sent to
//! a host pretending to be a vault. All of that is kept on; so are TLS and hostname checks.
//!
//! Each read is bounded by [`VaultOptions::read_timeout`] and is not retried by the SDK: the
//! callers decide (a few attempts with back-off at start, the next refresh afterwards).
//!
//! Two settings exist for a vault that is not at its public address, such as the local fake:
//! `SECRETS_VAULT_ADDRESS` (connect to this `ip:port` for every vault host, as `curl --resolve`
//! does; the host name is still the one checked against the certificate) and
//! `SECRETS_VAULT_CA_FILE` (one more trusted root, in PEM). Neither turns a check off.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, RetryOptions};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

use crate::credential::VaultCredential;
use crate::reference::SecretRef;
use crate::transport::ReqwestTransport;
use crate::value::SecretValue;

/// The setting that sends every vault host to one local address.
pub const VAULT_ADDRESS_SETTING: &str = "SECRETS_VAULT_ADDRESS";
/// The setting naming one more trusted root certificate (PEM) for vault connections.
pub const VAULT_CA_FILE_SETTING: &str = "SECRETS_VAULT_CA_FILE";

/// Why a read failed. Says what the vault answered, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the secret does not exist in the vault (404 SecretNotFound)")]
    NotFound,
    #[error("the secret is disabled (403 SecretDisabled)")]
    Disabled,
    #[error("the identity may not read it (403 {0}); grant it the Key Vault Secrets User role")]
    Forbidden(String),
    #[error("could not authenticate to the vault: {0}")]
    Unauthenticated(String),
    #[error("the vault is throttling reads (429 Throttled)")]
    Throttled,
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("the vault is unreachable: {0}")]
    Unreachable(String),
    #[error("the vault's answer is unusable: {0}")]
    BadResponse(String),
    #[error("the vault answered HTTP {status}: {detail}")]
    Http { status: u16, detail: String },
}

impl VaultError {
    /// Whether trying again soon may help (as opposed to a setting or permission to fix).
    /// Permissions count as transient at start: a role assignment takes minutes to apply.
    pub fn is_transient(&self) -> bool {
        !matches!(self, VaultError::NotFound | VaultError::Disabled)
    }
}

/// A secret as read: its value and the version it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub value: SecretValue,
    /// The version id (the last segment of the secret's `id`), for logs.
    pub version: Option<String>,
}

/// How reads are made.
#[derive(Debug, Clone)]
pub struct VaultOptions {
    /// The longest one read may take, token fetch included.
    pub read_timeout: Duration,
}

impl Default for VaultOptions {
    fn default() -> Self {
        VaultOptions { read_timeout: Duration::from_secs(10) }
    }
}

/// A local vault address and extra root, from `SECRETS_VAULT_ADDRESS` / `SECRETS_VAULT_CA_FILE`.
#[derive(Debug, Clone, Default)]
pub struct VaultEndpointOverrides {
    pub address: Option<SocketAddr>,
    pub ca_pem: Option<Vec<u8>>,
}

impl VaultEndpointOverrides {
    /// Reads both settings; an unreadable file or a bad address is an error naming the setting.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let address = match var(VAULT_ADDRESS_SETTING).filter(|v| !v.is_empty()) {
            Some(a) => Some(a.parse().map_err(|_| format!("{VAULT_ADDRESS_SETTING} must be ip:port"))?),
            None => None,
        };
        let ca_pem = match var(VAULT_CA_FILE_SETTING).filter(|v| !v.is_empty()) {
            Some(path) => {
                Some(std::fs::read(&path).map_err(|e| format!("{VAULT_CA_FILE_SETTING}: cannot read {path}: {e}"))?)
            }
            None => None,
        };
        Ok(VaultEndpointOverrides { address, ca_pem })
    }
}

/// The HTTP client for vault and identity calls: the process's reqwest/rustls stack with
/// bounded timeouts, plus the overrides for `vault_hosts` when set. A CA override gets
/// reqwest's own TLS setup with that root added, so the process's other clients do not trust it.
pub fn http_client<'a>(
    overrides: &VaultEndpointOverrides,
    vault_hosts: impl IntoIterator<Item = &'a str>,
) -> Result<reqwest::Client, String> {
    let builder = match &overrides.ca_pem {
        Some(pem) => {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|_| format!("{VAULT_CA_FILE_SETTING} is not a PEM certificate"))?;
            reqwest::Client::builder().add_root_certificate(cert)
        }
        None => meschain_tls::client_builder(),
    };
    let mut builder = builder
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(90));
    if let Some(address) = overrides.address {
        for host in vault_hosts {
            builder = builder.resolve(host, address);
        }
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// Reads secrets from any number of vaults with one credential.
pub struct KeyVault {
    credential: VaultCredential,
    http: reqwest::Client,
    options: VaultOptions,
    clients: Mutex<HashMap<String, Arc<SecretClient>>>,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVault").field("credential", &self.credential).finish_non_exhaustive()
    }
}

impl KeyVault {
    pub fn new(credential: VaultCredential, http: reqwest::Client, options: VaultOptions) -> Self {
        KeyVault { credential, http, options, clients: Mutex::new(HashMap::new()) }
    }

    pub fn credential(&self) -> &VaultCredential {
        &self.credential
    }

    /// Reads the secret `r` points at (its pinned version, or the latest), within the time budget.
    pub async fn read(&self, r: &SecretRef) -> Result<Fetched, VaultError> {
        let client = self.client(r.vault_url())?;
        let options =
            SecretClientGetSecretOptions { secret_version: r.version().map(str::to_owned), ..Default::default() };
        let call = async { client.get_secret(r.name(), Some(options)).await?.into_model() };
        let secret = match tokio::time::timeout(self.options.read_timeout, call).await {
            Err(_) => return Err(VaultError::Timeout(self.options.read_timeout)),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(secret)) => secret,
        };
        let value = secret.value.ok_or_else(|| VaultError::BadResponse("no value in the secret".into()))?;
        let version =
            secret.id.as_deref().and_then(|id| id.trim_end_matches('/').rsplit('/').next()).map(str::to_owned);
        Ok(Fetched { value: SecretValue::new(value), version })
    }

    fn client(&self, vault_url: &str) -> Result<Arc<SecretClient>, VaultError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(vault_url) {
            return Ok(c.clone());
        }
        let options = SecretClientOptions {
            client_options: ClientOptions {
                transport: Some(ReqwestTransport::transport(self.http.clone())),
                retry: RetryOptions::none(),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = SecretClient::new(vault_url, self.credential.credential.clone(), Some(options))
            .map_err(|e| VaultError::BadResponse(brief(&e.to_string())))?;
        let client = Arc::new(client);
        clients.insert(vault_url.to_owned(), client.clone());
        Ok(client)
    }
}

/// What an SDK error means for us. Key Vault puts the specific reason for a 403 in the body's
/// `innererror.code` (`SecretDisabled`, `ForbiddenByRbac`, `AccessDenied`, ...).
fn classify(e: &azure_core::Error) -> VaultError {
    match e.kind() {
        ErrorKind::HttpResponse { status, error_code, raw_response } => {
            let body: Option<ErrorBody> =
                raw_response.as_ref().and_then(|r| serde_json::from_slice(r.body().as_ref()).ok());
            let error = body.and_then(|b| b.error);
            let inner = error.as_ref().and_then(|e| e.innererror.as_ref()).and_then(|i| i.code.clone());
            let code = error.as_ref().and_then(|e| e.code.clone()).or_else(|| error_code.clone());
            match u16::from(*status) {
                401 => VaultError::Unauthenticated(format!(
                    "the vault refused the token ({})",
                    code.as_deref().unwrap_or("401")
                )),
                403 if inner.as_deref() == Some("SecretDisabled") => VaultError::Disabled,
                403 => VaultError::Forbidden(inner.or(code).unwrap_or_else(|| "Forbidden".into())),
                404 => VaultError::NotFound,
                429 => VaultError::Throttled,
                status => VaultError::Http { status, detail: brief(&e.to_string()) },
            }
        }
        ErrorKind::Credential => VaultError::Unauthenticated(brief(&e.to_string())),
        ErrorKind::Io | ErrorKind::Connection => VaultError::Unreachable(brief(&source_chain(e))),
        ErrorKind::DataConversion => VaultError::BadResponse(brief(&e.to_string())),
        _ => VaultError::Unauthenticated(brief(&e.to_string())),
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    innererror: Option<InnerError>,
}

#[derive(serde::Deserialize)]
struct InnerError {
    code: Option<String>,
}

/// The error and its causes on one line: "request failed: error sending request: tls ...".
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Service messages are short; anything longer is cut so one bad answer cannot flood the log.
fn brief(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
