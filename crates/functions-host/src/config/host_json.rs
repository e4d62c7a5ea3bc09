//! `host.json`: the parts the local host honours (custom handler, HTTP route prefix, Service Bus
//! concurrency, function timeout). Other sections (logging, extensionBundle, …) are accepted and
//! ignored, as they only matter to the real host.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Settings, parse_json};

const FILE: &str = "host.json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHost {
    version: Option<String>,
    custom_handler: Option<RawCustomHandler>,
    /// The pre-2021 name of `customHandler`; `customHandler` wins when both exist.
    http_worker: Option<RawCustomHandler>,
    #[serde(default)]
    extensions: RawExtensions,
    function_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCustomHandler {
    description: Option<RawDescription>,
    #[serde(default)]
    enable_forwarding_http_request: bool,
    /// The 2025 YARP variant: same eligibility rule; served here as forwarding (no streaming).
    #[serde(default)]
    enable_proxying_http_request: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescription {
    default_executable_path: Option<String>,
    #[serde(default)]
    arguments: Vec<String>,
    working_directory: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawExtensions {
    http: Option<RawHttp>,
    service_bus: Option<RawServiceBus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttp {
    route_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawServiceBus {
    max_concurrent_calls: Option<u32>,
}

/// How to start the custom handler.
#[derive(Debug, Clone)]
pub struct CustomHandler {
    pub executable: String,
    pub arguments: Vec<String>,
    pub working_directory: Option<String>,
    pub enable_forwarding_http_request: bool,
}

/// Validated `host.json`.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub custom_handler: CustomHandler,
    /// Without slashes; empty means routes hang off `/`.
    pub route_prefix: String,
    pub max_concurrent_calls: usize,
    /// `None` = unbounded (`-1`).
    pub function_timeout: Option<Duration>,
}

impl HostConfig {
    pub fn load(root: &Path) -> Result<HostConfig, ConfigError> {
        let text = std::fs::read_to_string(root.join(FILE))
            .map_err(|e| ConfigError::new(FILE, "(file)", format!("cannot read: {e}")))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<HostConfig, ConfigError> {
        let raw: RawHost = parse_json(FILE, text)?;
        match raw.version.as_deref() {
            Some("2.0") => {}
            Some(v) => return Err(ConfigError::new(FILE, "version", format!("must be \"2.0\", found {v:?}"))),
            None => return Err(ConfigError::new(FILE, "version", "missing (must be \"2.0\")")),
        }
        let (section, ch) = match (raw.custom_handler, raw.http_worker) {
            (Some(c), _) => ("customHandler", c),
            (None, Some(c)) => ("httpWorker", c),
            (None, None) => {
                return Err(ConfigError::new(FILE, "customHandler", "missing (a custom handler app needs it)"));
            }
        };
        let desc = ch.description.ok_or_else(|| ConfigError::new(FILE, format!("{section}.description"), "missing"))?;
        let executable = desc.default_executable_path.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
            ConfigError::new(FILE, format!("{section}.description.defaultExecutablePath"), "missing or empty")
        })?;
        let route_prefix = raw
            .extensions
            .http
            .and_then(|h| h.route_prefix)
            .map(|p| p.trim_matches('/').to_string())
            .unwrap_or_else(|| "api".to_string());
        if route_prefix.eq_ignore_ascii_case("admin") || route_prefix.starts_with("admin/") {
            return Err(ConfigError::new(FILE, "extensions.http.routePrefix", "\"admin\" is reserved by the host"));
        }
        let max_concurrent_calls = match raw.extensions.service_bus.and_then(|s| s.max_concurrent_calls) {
            Some(0) => {
                return Err(ConfigError::new(FILE, "extensions.serviceBus.maxConcurrentCalls", "must be at least 1"));
            }
            Some(n) => n as usize,
            None => 16,
        };
        let function_timeout =
            match raw.function_timeout.as_deref() {
                None => Some(Duration::from_secs(30 * 60)),
                Some("-1") => None,
                Some(s) => Some(parse_timespan(s).ok_or_else(|| {
                    ConfigError::new(FILE, "functionTimeout", format!("not a hh:mm:ss timespan: {s:?}"))
                })?),
            };
        Ok(HostConfig {
            custom_handler: CustomHandler {
                executable,
                arguments: desc.arguments,
                working_directory: desc.working_directory,
                enable_forwarding_http_request: ch.enable_forwarding_http_request || ch.enable_proxying_http_request,
            },
            route_prefix,
            max_concurrent_calls,
            function_timeout,
        })
    }

    /// `Host.LocalHttpPort` from the settings, else Core Tools' default 7071.
    pub fn local_settings_port(&self, settings: &Settings) -> u16 {
        settings.local_http_port.unwrap_or(7071)
    }
}

/// Parses a .NET TimeSpan as written in host.json: `[d.]hh:mm:ss[.fff]`.
pub fn parse_timespan(s: &str) -> Option<Duration> {
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let h: u64 = parts[0].parse().ok()?;
    let m: u64 = parts[1].parse().ok()?;
    let secs: f64 = parts[2].parse().ok()?;
    if h > 23 || m > 59 || !(0.0..60.0).contains(&secs) {
        return None;
    }
    Some(Duration::from_secs(days * 86_400 + h * 3600 + m * 60) + Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_timespan() {
        assert_eq!(parse_timespan("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(parse_timespan("1.00:00:01"), Some(Duration::from_secs(86_401)));
        assert_eq!(parse_timespan("00:00:00.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_timespan("5 minutes"), None);
        assert_eq!(parse_timespan("00:61:00"), None);
    }

    #[test]
    fn test_defaults_and_errors() {
        let h = HostConfig::parse(
            r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}"#,
        )
        .unwrap();
        assert_eq!(h.route_prefix, "api");
        assert_eq!(h.max_concurrent_calls, 16);
        assert!(!h.custom_handler.enable_forwarding_http_request);
        let e = HostConfig::parse(r#"{"version":"2.0","customHandler":{"description":{}}}"#).unwrap_err();
        assert_eq!(e.field, "customHandler.description.defaultExecutablePath");
        let e = HostConfig::parse(r#"{"version":"1.0"}"#).unwrap_err();
        assert_eq!(e.field, "version");
        let e = HostConfig::parse("{\"version\":").unwrap_err();
        assert!(e.message.contains("invalid JSON"), "{e}");
        let e = HostConfig::parse(
            r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"functionTimeout":"soon"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "functionTimeout");
    }
}
