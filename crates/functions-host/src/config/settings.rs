//! `local.settings.json` (or `local.settings.example.json` when the developer has not made a copy):
//! `Values` become the handler's environment; `Host` configures the local HTTP listener.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{ConfigError, parse_json};

#[derive(Deserialize)]
struct RawSettings {
    #[serde(rename = "IsEncrypted", default)]
    is_encrypted: bool,
    #[serde(rename = "Values", default)]
    values: BTreeMap<String, Value>,
    #[serde(rename = "Host", default)]
    host: RawHostSection,
}

#[derive(Deserialize, Default)]
struct RawHostSection {
    #[serde(rename = "LocalHttpPort")]
    local_http_port: Option<u16>,
    #[serde(rename = "CORS")]
    cors: Option<String>,
    #[serde(rename = "CORSCredentials", default)]
    cors_credentials: bool,
}

/// Validated local settings. `Debug` prints only the names of the values: they hold secrets.
#[derive(Clone, Default)]
pub struct Settings {
    /// Which file they came from (`None` when neither exists).
    pub file: Option<String>,
    pub values: BTreeMap<String, String>,
    pub local_http_port: Option<u16>,
    /// Allowed origins (`*` allowed); empty = no CORS headers.
    pub cors: Vec<String>,
    pub cors_credentials: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("file", &self.file)
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("local_http_port", &self.local_http_port)
            .field("cors", &self.cors)
            .finish()
    }
}

impl Settings {
    pub fn load(root: &Path) -> Result<Settings, ConfigError> {
        for file in ["local.settings.json", "local.settings.example.json"] {
            let path = root.join(file);
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError::new(file, "(file)", format!("cannot read: {e}")))?;
                return Self::parse(file, &text);
            }
        }
        Ok(Settings::default())
    }

    pub fn parse(file: &str, text: &str) -> Result<Settings, ConfigError> {
        let raw: RawSettings = parse_json(file, text)?;
        if raw.is_encrypted {
            return Err(ConfigError::new(file, "IsEncrypted", "encrypted settings are not supported locally"));
        }
        let mut values = BTreeMap::new();
        for (k, v) in raw.values {
            match v {
                Value::String(s) => {
                    values.insert(k, s);
                }
                // Core Tools refuses non-string values too; a number here is usually a missing pair of quotes.
                other => {
                    let kind = match other {
                        Value::Null => "null",
                        Value::Bool(_) => "a boolean",
                        Value::Number(_) => "a number",
                        Value::Array(_) => "an array",
                        _ => "an object",
                    };
                    return Err(ConfigError::new(
                        file,
                        format!("Values.{k}"),
                        format!("must be a string, found {kind}"),
                    ));
                }
            }
        }
        if raw.host.local_http_port == Some(0) {
            return Err(ConfigError::new(file, "Host.LocalHttpPort", "must be a port number 1-65535"));
        }
        let cors: Vec<String> = raw
            .host
            .cors
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for origin in &cors {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(file, "Host.CORS", format!("not an origin: {origin:?}")));
            }
        }
        if raw.host.cors_credentials && cors.iter().any(|o| o == "*") {
            return Err(ConfigError::new(file, "Host.CORSCredentials", "cannot be true when Host.CORS is \"*\""));
        }
        Ok(Settings {
            file: Some(file.to_string()),
            values,
            local_http_port: raw.host.local_http_port,
            cors,
            cors_credentials: raw.host.cors_credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_settings() {
        let s = Settings::parse(
            "local.settings.json",
            r#"{"Values":{"A":"1","SECRET":"x"},"Host":{"LocalHttpPort":7080,"CORS":"http://localhost:5173, https://a.b/","CORSCredentials":true}}"#,
        )
        .unwrap();
        assert_eq!(s.values["A"], "1");
        assert_eq!(s.local_http_port, Some(7080));
        assert_eq!(s.cors, vec!["http://localhost:5173", "https://a.b"]);
        assert!(!format!("{s:?}").contains("\"x\""));
    }

    #[test]
    fn test_bad_settings() {
        let e = Settings::parse("f", r#"{"Host":{"LocalHttpPort":70000}}"#).unwrap_err();
        assert_eq!(e.field, "Host.LocalHttpPort");
        let e = Settings::parse("f", r#"{"Host":{"CORS":"*","CORSCredentials":true}}"#).unwrap_err();
        assert_eq!(e.field, "Host.CORSCredentials");
        let e = Settings::parse("f", r#"{"Host":{"CORS":"localhost"}}"#).unwrap_err();
        assert_eq!(e.field, "Host.CORS");
    }
}
