//! Azure SignalR connection strings and the URLs and audiences derived from them.
//!
//! The rules follow the official SDK's `ConnectionStringParser` and `ServiceEndpoint`
//! (https://learn.microsoft.com/azure/azure-signalr/concept-connection-string): segments split on the first `=` only (base64 padding in keys survives),
//! keys are case-insensitive, duplicates are an error, and `Port` overrides the endpoint's
//! port for URLs but never appears in token audiences.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::AccessKey;

/// How the app authenticates to the service.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// One access key; tokens are HMAC-signed with it.
    AccessKey(AccessKey),
    /// Microsoft Entra ID (`AuthType=azure|azure.msi|azure.app|aad`).
    EntraId(EntraIdAuth),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::AccessKey(_) => f.write_str("AccessKey(<redacted>)"),
            Credential::EntraId(e) => f.debug_tuple("EntraId").field(e).finish(),
        }
    }
}

/// The Entra ID flavour requested by `AuthType` and its optional identity settings.
#[derive(Clone, PartialEq, Eq)]
pub struct EntraIdAuth {
    pub kind: EntraIdKind,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    /// Never printed: see the `Debug` impl.
    pub client_secret: Option<String>,
    pub client_cert: Option<String>,
}

impl fmt::Debug for EntraIdAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraIdAuth")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntraIdKind {
    /// `azure`: the default credential chain.
    Default,
    /// `azure.msi`: managed identity (user-assigned when `ClientId` is set).
    ManagedIdentity,
    /// `azure.app`: an app registration with a secret or certificate.
    Application,
}

/// A parsed connection string. `Debug` never shows the access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `Endpoint` with `Port` applied.
    pub endpoint: Url,
    pub client_endpoint: Option<Url>,
    pub server_endpoint: Option<Url>,
    pub credential: Credential,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    #[error("connection string is missing Endpoint")]
    MissingEndpoint,
    #[error("connection string is missing AccessKey (and no AuthType is set)")]
    MissingAccessKey,
    #[error("duplicate property in connection string: {0}")]
    Duplicate(String),
    #[error("{0} in connection string is not an absolute http or https URL")]
    InvalidUrl(&'static str),
    #[error("Port in connection string must be an integer from 1 to 65535")]
    InvalidPort,
    #[error("Version {0} in connection string is not supported")]
    UnsupportedVersion(String),
    #[error("AuthType {0} in connection string is not supported")]
    UnsupportedAuthType(String),
    #[error("AuthType azure.app requires ClientId, TenantId and ClientSecret or clientCert")]
    IncompleteApplicationAuth,
}

impl std::str::FromStr for ConnectionString {
    type Err = ConnectionStringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut endpoint = None;
        let mut access_key = None;
        let mut version = None;
        let mut port = None;
        let mut client_endpoint = None;
        let mut server_endpoint = None;
        let mut auth_type = None;
        let mut client_id = None;
        let mut tenant_id = None;
        let mut client_secret = None;
        let mut client_cert = None;

        for segment in s.split(';') {
            let Some((key, value)) = segment.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let value = value.trim();
            let slot = match key.to_ascii_lowercase().as_str() {
                "endpoint" => &mut endpoint,
                "accesskey" => &mut access_key,
                "version" => &mut version,
                "port" => &mut port,
                "clientendpoint" => &mut client_endpoint,
                "serverendpoint" => &mut server_endpoint,
                "authtype" => &mut auth_type,
                "clientid" => &mut client_id,
                "tenantid" => &mut tenant_id,
                "clientsecret" => &mut client_secret,
                "clientcert" | "clientcertpath" => &mut client_cert,
                // Unknown keys are tolerated, as the SDK does.
                _ => continue,
            };
            if slot.is_some() {
                return Err(ConnectionStringError::Duplicate(key.to_string()));
            }
            *slot = Some(value.to_string());
        }

        let mut endpoint = parse_http_url(endpoint.ok_or(ConnectionStringError::MissingEndpoint)?, "Endpoint")?;
        if let Some(port) = port {
            let port: u16 = port.parse().map_err(|_| ConnectionStringError::InvalidPort)?;
            if port == 0 {
                return Err(ConnectionStringError::InvalidPort);
            }
            endpoint.set_port(Some(port)).map_err(|_| ConnectionStringError::InvalidPort)?;
        }
        let client_endpoint = client_endpoint.map(|u| parse_http_url(u, "ClientEndpoint")).transpose()?;
        let server_endpoint = server_endpoint.map(|u| parse_http_url(u, "ServerEndpoint")).transpose()?;

        let version = version.unwrap_or_else(|| "1.0".to_string());
        if !version_supported(&version) {
            return Err(ConnectionStringError::UnsupportedVersion(version));
        }

        let credential = match auth_type {
            None => Credential::AccessKey(AccessKey::new(
                access_key.filter(|k| !k.is_empty()).ok_or(ConnectionStringError::MissingAccessKey)?,
            )),
            Some(kind) => {
                let has_app_secret =
                    client_id.is_some() && tenant_id.is_some() && (client_secret.is_some() || client_cert.is_some());
                let kind = match kind.to_ascii_lowercase().as_str() {
                    "azure" => EntraIdKind::Default,
                    "azure.msi" => EntraIdKind::ManagedIdentity,
                    "azure.app" if has_app_secret => EntraIdKind::Application,
                    "azure.app" => return Err(ConnectionStringError::IncompleteApplicationAuth),
                    "aad" if has_app_secret => EntraIdKind::Application,
                    "aad" => EntraIdKind::ManagedIdentity,
                    _ => return Err(ConnectionStringError::UnsupportedAuthType(kind)),
                };
                Credential::EntraId(EntraIdAuth { kind, client_id, tenant_id, client_secret, client_cert })
            }
        };

        Ok(ConnectionString { endpoint, client_endpoint, server_endpoint, credential, version })
    }
}

fn parse_http_url(raw: String, name: &'static str) -> Result<Url, ConnectionStringError> {
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|_| ConnectionStringError::InvalidUrl(name))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConnectionStringError::InvalidUrl(name));
    }
    Ok(url)
}

/// The SDK's `^1\.\d+(?:[\w-.]+)?$`.
fn version_supported(v: &str) -> bool {
    let Some(rest) = v.strip_prefix("1.") else { return false };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest[digits..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// What `Uri.EscapeDataString` leaves alone: RFC 3986 unreserved characters.
const DATA_STRING: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Escapes one path segment or query value the way the official SDK does.
pub fn escape(s: &str) -> String {
    utf8_percent_encode(s, DATA_STRING).to_string()
}

impl ConnectionString {
    /// The access key, when the connection string carries one.
    pub fn access_key(&self) -> Option<&AccessKey> {
        match &self.credential {
            Credential::AccessKey(k) => Some(k),
            Credential::EntraId(_) => None,
        }
    }

    /// `{scheme}://{host}/`: the base of every audience. No port, by design of the SDK.
    pub fn audience_base(&self) -> String {
        format!("{}://{}/", self.endpoint.scheme(), self.endpoint.host_str().unwrap_or_default())
    }

    /// The URL handed to clients in a negotiate response.
    pub fn client_url(&self, hub: &str) -> String {
        let base = self.client_endpoint.as_ref().unwrap_or(&self.endpoint);
        format!("{}client/?hub={}", absolute_uri(base), escape(&hub.to_ascii_lowercase()))
    }

    /// The `aud` of a client access token for `hub`.
    pub fn client_audience(&self, hub: &str) -> String {
        format!("{}client/?hub={}", self.audience_base(), escape(&hub.to_ascii_lowercase()))
    }

    /// Base URL for REST calls (`ServerEndpoint`, else `Endpoint`), ending with `/`.
    pub fn server_base(&self) -> String {
        absolute_uri(self.server_endpoint.as_ref().unwrap_or(&self.endpoint))
    }
}

/// .NET `Uri.AbsoluteUri` of an endpoint: keeps a non-default port and always ends with `/`.
fn absolute_uri(url: &Url) -> String {
    let s = url.as_str();
    if s.ends_with('/') { s.to_string() } else { format!("{s}/") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConnectionString, ConnectionStringError> {
        s.parse()
    }

    #[test]
    fn test_portal_form() {
        let cs = parse("Endpoint=https://x.service.signalr.net;AccessKey=abc+/=;Version=1.0;").unwrap();
        assert_eq!(cs.endpoint.as_str(), "https://x.service.signalr.net/");
        assert_eq!(cs.access_key().unwrap().expose(), "abc+/=");
        assert_eq!(cs.client_url("MesChainAdminHub"), "https://x.service.signalr.net/client/?hub=meschainadminhub");
        assert_eq!(
            cs.client_audience("MesChainAdminHub"),
            "https://x.service.signalr.net/client/?hub=meschainadminhub"
        );
    }

    #[test]
    fn test_keys_are_case_insensitive_and_values_trimmed() {
        let cs = parse(" endpoint = http://localhost ; ACCESSKEY= k== ;port=8888").unwrap();
        assert_eq!(cs.access_key().unwrap().expose(), "k==");
        assert_eq!(cs.client_url("Chat"), "http://localhost:8888/client/?hub=chat");
        // The audience never carries the port.
        assert_eq!(cs.client_audience("Chat"), "http://localhost/client/?hub=chat");
        assert_eq!(cs.server_base(), "http://localhost:8888/");
    }

    #[test]
    fn test_client_and_server_endpoints() {
        let cs = parse("Endpoint=https://a.service.signalr.net;AccessKey=k;ClientEndpoint=https://gw.example.com;ServerEndpoint=https://int.example.com:8443/").unwrap();
        assert_eq!(cs.client_url("h"), "https://gw.example.com/client/?hub=h");
        assert_eq!(cs.client_audience("h"), "https://a.service.signalr.net/client/?hub=h");
        assert_eq!(cs.server_base(), "https://int.example.com:8443/");
    }

    #[test]
    fn test_errors() {
        assert_eq!(parse("AccessKey=k"), Err(ConnectionStringError::MissingEndpoint));
        assert_eq!(parse("Endpoint=https://a"), Err(ConnectionStringError::MissingAccessKey));
        assert_eq!(parse("Endpoint=ftp://a;AccessKey=k"), Err(ConnectionStringError::InvalidUrl("Endpoint")));
        assert_eq!(parse("Endpoint=not a url;AccessKey=k"), Err(ConnectionStringError::InvalidUrl("Endpoint")));
        assert_eq!(parse("Endpoint=https://a;AccessKey=k;Port=0"), Err(ConnectionStringError::InvalidPort));
        assert_eq!(parse("Endpoint=https://a;AccessKey=k;Port=70000"), Err(ConnectionStringError::InvalidPort));
        assert_eq!(
            parse("Endpoint=https://a;AccessKey=k;Version=2.0"),
            Err(ConnectionStringError::UnsupportedVersion("2.0".into()))
        );
        assert!(matches!(
            parse("Endpoint=https://a;endpoint=https://b;AccessKey=k"),
            Err(ConnectionStringError::Duplicate(_))
        ));
        assert!(matches!(
            parse("Endpoint=https://a;AuthType=kerberos"),
            Err(ConnectionStringError::UnsupportedAuthType(_))
        ));
        assert_eq!(
            parse("Endpoint=https://a;AuthType=azure.app;ClientId=c"),
            Err(ConnectionStringError::IncompleteApplicationAuth)
        );
    }

    #[test]
    fn test_versions() {
        for ok in ["1.0", "1.12", "1.0-preview", "1.0.beta_1"] {
            assert!(version_supported(ok), "{ok}");
        }
        for bad in ["1.", "2.0", "1.x", "", "1.0 "] {
            assert!(!version_supported(bad), "{bad}");
        }
    }

    #[test]
    fn test_entra_id_kinds() {
        let cs = parse("Endpoint=https://a;AuthType=azure.msi;ClientId=cid").unwrap();
        let Credential::EntraId(e) = &cs.credential else { panic!() };
        assert_eq!(e.kind, EntraIdKind::ManagedIdentity);
        assert_eq!(e.client_id.as_deref(), Some("cid"));
        let cs = parse("Endpoint=https://a;AuthType=AAD;ClientId=c;TenantId=t;ClientSecret=s").unwrap();
        let Credential::EntraId(e) = &cs.credential else { panic!() };
        assert_eq!(e.kind, EntraIdKind::Application);
        assert!(!format!("{cs:?}").contains("=s"), "secret must not be printed");
    }

    #[test]
    fn test_debug_redacts_key() {
        let cs = parse("Endpoint=https://a;AccessKey=supersecretvalue").unwrap();
        assert!(!format!("{cs:?}").contains("supersecretvalue"));
    }

    #[test]
    fn test_escape_matches_escape_data_string() {
        assert_eq!(escape("a[b] c/d"), "a%5Bb%5D%20c%2Fd");
        assert_eq!(escape("Az09-._~"), "Az09-._~");
    }
}
