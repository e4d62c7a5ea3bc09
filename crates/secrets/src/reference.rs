//! App Service Key Vault references (`@Microsoft.KeyVault(...)`), parsed.
//!
//! App Service resolves a reference itself at start and about once a day, and leaves the
//! reference text in the variable when it cannot. Core Tools never resolves one. Parsing the
//! same syntax here lets one setting value work everywhere: a literal is used as it is, and a
//! reference the platform left unresolved is read from the vault by this process.
//!
//! Anything that starts like a reference (`@Microsoft.KeyVault`, any case) is a reference and
//! must parse: treating a mistyped reference as a literal would make its text the secret.
//! Errors name the part that is wrong, never the whole value.

use std::fmt;

use url::Url;

/// The DNS suffix of vaults in Azure's public cloud, used by the `VaultName=` form (as App
/// Service does). Vaults in other clouds are referenced with `SecretUri=`.
pub const PUBLIC_CLOUD_VAULT_SUFFIX: &str = "vault.azure.net";

const PREFIX: &str = "@Microsoft.KeyVault";

/// Where a secret lives: a vault, a secret name, and a pinned version or the latest one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// The vault's origin, `https://host[:port]`, without a trailing slash.
    vault_url: String,
    name: String,
    version: Option<String>,
}

/// A setting's value: used as it is, or read from a vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue<'a> {
    Literal(&'a str),
    Reference(SecretRef),
}

/// Why a reference did not parse. Messages name the part, not the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("a Key Vault reference must look like @Microsoft.KeyVault(...), with the parameters in parentheses")]
    Syntax,
    #[error(
        "unknown Key Vault reference parameter `{0}` (expected SecretUri, or VaultName, SecretName and SecretVersion)"
    )]
    UnknownParameter(String),
    #[error("Key Vault reference parameter `{0}` is given twice")]
    DuplicateParameter(&'static str),
    #[error("Key Vault reference parameter `{0}` is empty")]
    EmptyParameter(&'static str),
    #[error("a Key Vault reference needs {0}")]
    MissingParameter(&'static str),
    #[error("a Key Vault reference takes either SecretUri or VaultName/SecretName, not both")]
    BothForms,
    #[error("SecretUri is not a valid URL")]
    InvalidUri,
    #[error("SecretUri must be an https URL with no credentials, query or fragment")]
    UnsafeUri,
    #[error("SecretUri must have the path /secrets/{{name}}[/{{version}}]")]
    InvalidPath,
    #[error("invalid vault name (3-24 letters, digits and single hyphens, starting with a letter)")]
    InvalidVaultName,
    #[error("invalid secret name (1-127 letters, digits and hyphens)")]
    InvalidSecretName,
    #[error("invalid secret version (letters and digits, at most 64)")]
    InvalidVersion,
}

impl SecretRef {
    /// A reference to `name` (at `version`, or the latest) in the vault at `vault_url`
    /// (`https://host[:port]`), checked as a parsed `SecretUri` would be.
    pub fn new(vault_url: &str, name: &str, version: Option<&str>) -> Result<Self, ReferenceError> {
        let url = Url::parse(vault_url).map_err(|_| ReferenceError::InvalidUri)?;
        let vault_url = vault_origin(&url)?;
        if url.path() != "/" {
            return Err(ReferenceError::InvalidPath);
        }
        Self::checked(vault_url, name, version)
    }

    fn checked(vault_url: String, name: &str, version: Option<&str>) -> Result<Self, ReferenceError> {
        if !is_secret_name(name) {
            return Err(ReferenceError::InvalidSecretName);
        }
        if let Some(v) = version
            && !is_version(v)
        {
            return Err(ReferenceError::InvalidVersion);
        }
        Ok(SecretRef { vault_url, name: name.to_owned(), version: version.map(str::to_owned) })
    }

    /// The vault's origin, e.g. `https://myvault.vault.azure.net`.
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// The vault's short name: the first label of its host (`myvault`).
    pub fn vault_name(&self) -> &str {
        let host = self.vault_url.trim_start_matches("https://");
        host.split(['.', ':']).next().unwrap_or(host)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pinned version, or `None` for the latest one (which rotation follows).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret `{}`", self.name)?;
        if let Some(v) = &self.version {
            write!(f, " (version {v})")?;
        }
        write!(f, " in vault `{}` ({})", self.vault_name(), self.vault_url)
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

/// Whether `value` is meant as a Key Vault reference (whether or not it is well formed).
pub fn is_reference(value: &str) -> bool {
    let v = value.trim_start().as_bytes();
    v.len() >= PREFIX.len() && v[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
}

/// A setting's value: a literal, or the secret its Key Vault reference points at.
pub fn parse_setting(value: &str) -> Result<SettingValue<'_>, ReferenceError> {
    if is_reference(value) {
        parse_reference(value).map(SettingValue::Reference)
    } else {
        Ok(SettingValue::Literal(value))
    }
}

/// Parses `@Microsoft.KeyVault(SecretUri=...)` or
/// `@Microsoft.KeyVault(VaultName=...;SecretName=...[;SecretVersion=...])`.
/// Parameter names are case-insensitive and may be surrounded by spaces, as App Service allows.
pub fn parse_reference(value: &str) -> Result<SecretRef, ReferenceError> {
    let value = value.trim();
    if !is_reference(value) {
        return Err(ReferenceError::Syntax);
    }
    let inner = value[PREFIX.len()..]
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or(ReferenceError::Syntax)?;
    if inner.contains(['(', ')']) {
        return Err(ReferenceError::Syntax);
    }

    let (mut uri, mut vault, mut secret, mut version) = (None, None, None, None);
    for part in inner.split(';').map(str::trim) {
        if part.is_empty() {
            // A trailing `;` is harmless.
            continue;
        }
        let (key, val) = part.split_once('=').ok_or(ReferenceError::Syntax)?;
        let (slot, name) = match key.trim().to_ascii_lowercase().as_str() {
            "secreturi" => (&mut uri, "SecretUri"),
            "vaultname" => (&mut vault, "VaultName"),
            "secretname" => (&mut secret, "SecretName"),
            "secretversion" => (&mut version, "SecretVersion"),
            _ => return Err(ReferenceError::UnknownParameter(key.trim().chars().take(40).collect())),
        };
        let val = val.trim();
        if val.is_empty() {
            return Err(ReferenceError::EmptyParameter(name));
        }
        if slot.replace(val).is_some() {
            return Err(ReferenceError::DuplicateParameter(name));
        }
    }

    match (uri, vault, secret, version) {
        (Some(uri), None, None, None) => parse_secret_uri(uri),
        (Some(_), ..) => Err(ReferenceError::BothForms),
        (None, Some(vault), Some(secret), version) => {
            if !is_vault_name(vault) {
                return Err(ReferenceError::InvalidVaultName);
            }
            let vault_url = format!("https://{}.{PUBLIC_CLOUD_VAULT_SUFFIX}", vault.to_ascii_lowercase());
            SecretRef::checked(vault_url, secret, version)
        }
        (None, None, _, _) => Err(ReferenceError::MissingParameter("SecretUri, or VaultName and SecretName")),
        (None, Some(_), None, _) => Err(ReferenceError::MissingParameter("SecretName")),
    }
}

/// `https://{vault host}[:port]/secrets/{name}[/{version}][/]`: the forms App Service documents
/// (older documentation ends in `/`). A port is kept, for vaults reached through a local proxy.
fn parse_secret_uri(uri: &str) -> Result<SecretRef, ReferenceError> {
    let url = Url::parse(uri).map_err(|_| ReferenceError::InvalidUri)?;
    let vault_url = vault_origin(&url)?;
    let path = url.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut segments = path.strip_prefix("/secrets/").ok_or(ReferenceError::InvalidPath)?.split('/');
    let name = segments.next().filter(|s| !s.is_empty()).ok_or(ReferenceError::InvalidPath)?;
    let version = segments.next();
    if segments.next().is_some() || version == Some("") {
        return Err(ReferenceError::InvalidPath);
    }
    SecretRef::checked(vault_url, name, version)
}

fn vault_origin(url: &Url) -> Result<String, ReferenceError> {
    let safe = url.scheme() == "https"
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    let host = url.host_str().filter(|h| !h.is_empty() && safe).ok_or(ReferenceError::UnsafeUri)?;
    Ok(match url.port() {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    })
}

/// Key Vault's naming rule: 3-24 characters, letters, digits and hyphens, starting with a
/// letter, ending with a letter or digit, no consecutive hyphens.
fn is_vault_name(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=24).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !s.contains("--")
}

fn is_secret_name(s: &str) -> bool {
    (1..=127).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// Versions are 32 hex digits in practice; any short alphanumeric string is accepted so that
/// nothing reaches the request path that could change its meaning.
fn is_version(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "4387e9f3d6e14c459867679a90fd0f79";

    fn r(s: &str) -> Result<SecretRef, ReferenceError> {
        parse_reference(s)
    }

    #[test]
    fn test_literals_stay_literal() {
        for v in ["", "plain", "Endpoint=https://x;AccessKey=abc;Version=1.0;", "@Microsoft", "x@Microsoft.KeyVault()"]
        {
            assert_eq!(parse_setting(v), Ok(SettingValue::Literal(v)), "{v}");
        }
    }

    #[test]
    fn test_secret_uri_forms() {
        let latest = r("@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret)").unwrap();
        assert_eq!(latest.vault_url(), "https://myvault.vault.azure.net");
        assert_eq!(latest.vault_name(), "myvault");
        assert_eq!(latest.name(), "mysecret");
        assert_eq!(latest.version(), None);
        let slash = r("@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/)").unwrap();
        assert_eq!(slash, latest);
        let pinned = r(&format!("@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/{V})"));
        assert_eq!(pinned.unwrap().version(), Some(V));
        let pinned_slash =
            r(&format!("@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/{V}/)"));
        assert_eq!(pinned_slash.unwrap().version(), Some(V));
        let port = r("@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net:8443/secrets/s)").unwrap();
        assert_eq!(port.vault_url(), "https://myvault.vault.azure.net:8443");
        assert_eq!(port.vault_name(), "myvault");
        // The default port is dropped by URL parsing, so both spellings are one vault.
        let default_port = r("@Microsoft.KeyVault(SecretUri=https://MyVault.vault.azure.net:443/secrets/s)").unwrap();
        assert_eq!(default_port.vault_url(), "https://myvault.vault.azure.net");
        let china = r("@Microsoft.KeyVault(SecretUri=https://v1.vault.azure.cn/secrets/s)").unwrap();
        assert_eq!(china.vault_url(), "https://v1.vault.azure.cn");
    }

    #[test]
    fn test_vault_name_form() {
        let a = r("@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret)").unwrap();
        assert_eq!(a.vault_url(), "https://myvault.vault.azure.net");
        assert_eq!((a.name(), a.version()), ("mysecret", None));
        let b = r(&format!("@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret;SecretVersion={V})")).unwrap();
        assert_eq!(b.version(), Some(V));
        // Case-insensitive names, spaces, any order, a trailing `;`, the prefix in any case.
        let c = r(" @microsoft.keyvault( secretname = mysecret ; VAULTNAME=MyVault; ) ").unwrap();
        assert_eq!(c, a);
        assert_eq!(
            parse_setting("@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret)"),
            Ok(SettingValue::Reference(a))
        );
    }

    #[test]
    fn test_malformed_references() {
        use ReferenceError::*;
        let cases: &[(&str, ReferenceError)] = &[
            ("@Microsoft.KeyVault", Syntax),
            ("@Microsoft.KeyVault(", Syntax),
            ("@Microsoft.KeyVault()", MissingParameter("SecretUri, or VaultName and SecretName")),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s", Syntax),
            ("@Microsoft.KeyVault SecretUri=https://v.vault.azure.net/secrets/s)", Syntax),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s))", Syntax),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s)x", Syntax),
            ("@Microsoft.KeyVaults(SecretUri=https://v.vault.azure.net/secrets/s)", Syntax),
            ("@Microsoft.KeyVault(SecretUri)", Syntax),
            ("@Microsoft.KeyVault(SecretUri=)", EmptyParameter("SecretUri")),
            ("@Microsoft.KeyVault(Secret=abc)", UnknownParameter("Secret".into())),
            ("@Microsoft.KeyVault(VaultName=v1v;VaultName=v2v;SecretName=s)", DuplicateParameter("VaultName")),
            ("@Microsoft.KeyVault(VaultName=myvault)", MissingParameter("SecretName")),
            ("@Microsoft.KeyVault(SecretName=s)", MissingParameter("SecretUri, or VaultName and SecretName")),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s;VaultName=v)", BothForms),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s;SecretVersion=1)", BothForms),
            ("@Microsoft.KeyVault(SecretUri=not a url)", InvalidUri),
            ("@Microsoft.KeyVault(SecretUri=http://v.vault.azure.net/secrets/s)", UnsafeUri),
            ("@Microsoft.KeyVault(SecretUri=https://u:p@v.vault.azure.net/secrets/s)", UnsafeUri),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s?x=1)", UnsafeUri),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s#f)", UnsafeUri),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/keys/s)", InvalidPath),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/)", InvalidPath),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets//v)", InvalidPath),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s/v/x)", InvalidPath),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s//)", InvalidPath),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/a_b)", InvalidSecretName),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/a%2Fb)", InvalidSecretName),
            ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s/v-1)", InvalidVersion),
            ("@Microsoft.KeyVault(VaultName=ab;SecretName=s)", InvalidVaultName),
            ("@Microsoft.KeyVault(VaultName=1vault;SecretName=s)", InvalidVaultName),
            ("@Microsoft.KeyVault(VaultName=my--vault;SecretName=s)", InvalidVaultName),
            ("@Microsoft.KeyVault(VaultName=myvault-;SecretName=s)", InvalidVaultName),
            ("@Microsoft.KeyVault(VaultName=my.vault;SecretName=s)", InvalidVaultName),
            ("@Microsoft.KeyVault(VaultName=abcdefghijabcdefghijabcde;SecretName=s)", InvalidVaultName),
            ("@Microsoft.KeyVault(VaultName=myvault;SecretName=a/b)", InvalidSecretName),
            ("@Microsoft.KeyVault(VaultName=myvault;SecretName=s;SecretVersion=../x)", InvalidVersion),
            ("@Microsoft.KeyVault(VaultName=myvault;SecretName=s;SecretVersion=)", EmptyParameter("SecretVersion")),
            ("@Microsoft.KeyVault(VaultName=myvault;SecretName=(s))", Syntax),
        ];
        for (input, want) in cases {
            assert_eq!(r(input).as_ref(), Err(want), "{input}");
            assert_eq!(parse_setting(input), Err(want.clone()), "{input}");
        }
        let long = format!("@Microsoft.KeyVault(VaultName=myvault;SecretName={})", "a".repeat(128));
        assert_eq!(r(&long), Err(InvalidSecretName));
        let long = format!("@Microsoft.KeyVault(VaultName=myvault;SecretName=s;SecretVersion={})", "a".repeat(65));
        assert_eq!(r(&long), Err(InvalidVersion));
    }

    #[test]
    fn test_errors_do_not_echo_values() {
        let e = r("@Microsoft.KeyVault(SuperSecretValue123=x)").unwrap_err().to_string();
        assert!(e.contains("SuperSecretValue123"), "the parameter name is shown: {e}");
        let e = r("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s?sig=hunter2)").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn test_new_and_display() {
        let s = SecretRef::new("https://myvault.vault.azure.net", "jwt", None).unwrap();
        assert_eq!(s.to_string(), "secret `jwt` in vault `myvault` (https://myvault.vault.azure.net)");
        assert_eq!(format!("{s:?}"), format!("SecretRef({s})"));
        assert!(SecretRef::new("https://myvault.vault.azure.net/", "jwt", Some(V)).is_ok());
        assert_eq!(SecretRef::new("http://x", "jwt", None), Err(ReferenceError::UnsafeUri));
        assert_eq!(SecretRef::new("https://x/secrets", "jwt", None), Err(ReferenceError::InvalidPath));
        assert_eq!(SecretRef::new("https://x", "", None), Err(ReferenceError::InvalidSecretName));
    }
}
