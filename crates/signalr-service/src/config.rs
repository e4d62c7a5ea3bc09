//! Service settings: access keys, upstream templates, quotas and timeouts.
//!
//! Every timeout is a field (not a constant) so tests can shrink the 15 s / 30 s defaults of the
//! real service (§C.6) to milliseconds.

use std::time::Duration;

use meschain_signalr::AccessKey;
use rand::Rng;

/// One upstream template (§E.1): the first template whose three patterns match an event wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTemplate {
    /// URL with `{hub}`, `{category}` and `{event}` placeholders.
    pub url_template: String,
    pub hub_pattern: Pattern,
    pub category_pattern: Pattern,
    pub event_pattern: Pattern,
}

impl UpstreamTemplate {
    /// A template that matches every hub, category and event.
    pub fn any(url_template: impl Into<String>) -> Self {
        UpstreamTemplate {
            url_template: url_template.into(),
            hub_pattern: Pattern::Any,
            category_pattern: Pattern::Any,
            event_pattern: Pattern::Any,
        }
    }

    pub fn matches(&self, hub: &str, category: &str, event: &str) -> bool {
        self.hub_pattern.matches(hub) && self.category_pattern.matches(category) && self.event_pattern.matches(event)
    }

    /// The URL for one event, placeholders replaced by URI-escaped values (§E.1).
    pub fn url(&self, hub: &str, category: &str, event: &str) -> String {
        self.url_template
            .replace("{hub}", &meschain_signalr::connection_string::escape(hub))
            .replace("{category}", &meschain_signalr::connection_string::escape(category))
            .replace("{event}", &meschain_signalr::connection_string::escape(event))
    }
}

/// A hub/category/event pattern: `*`, a comma list (items trimmed) or one exact name. Matching
/// is case-sensitive, as in the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Any,
    OneOf(Vec<String>),
}

impl Pattern {
    pub fn parse(s: &str) -> Pattern {
        let s = s.trim();
        if s.is_empty() || s == "*" {
            return Pattern::Any;
        }
        Pattern::OneOf(s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::OneOf(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Configuration of one service instance. `Default` gives two random keys (primary and
/// secondary, as every Azure instance has), no upstream, and the real service's timeouts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Keys accepted for tokens and used to sign upstream calls; the first is the primary.
    pub access_keys: Vec<AccessKey>,
    pub upstream: Vec<UpstreamTemplate>,
    /// Concurrent (pending + connected) client connections; more → 429 on negotiate.
    pub max_connections: usize,
    /// Frames queued per connection before it counts as too slow and is closed.
    pub send_queue_capacity: usize,
    /// Largest client→service frame, and largest REST/HTTP send body (1 MB on the real service).
    pub max_message_size: usize,
    pub keep_alive_interval: Duration,
    pub client_timeout: Duration,
    pub handshake_timeout: Duration,
    /// How long a negotiated connection token may wait for its transport request (§C.2: ~5 s).
    pub pending_timeout: Duration,
    pub long_poll_timeout: Duration,
    pub upstream_timeout: Duration,
    /// Clock skew allowed on `exp`.
    pub token_leeway_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_keys: vec![random_key(), random_key()],
            upstream: Vec::new(),
            max_connections: 100_000,
            send_queue_capacity: 1024,
            max_message_size: 1024 * 1024,
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            pending_timeout: Duration::from_secs(5),
            long_poll_timeout: Duration::from_secs(90),
            upstream_timeout: Duration::from_secs(100),
            token_leeway_secs: 0,
        }
    }
}

/// A fresh access key: 32 random bytes, base64 (44 characters, like the portal's keys).
pub fn random_key() -> AccessKey {
    use base64::Engine;
    let bytes: [u8; 32] = rand::rng().random();
    AccessKey::new(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_patterns() {
        assert!(Pattern::parse("*").matches("x"));
        assert!(Pattern::parse("").matches("x"));
        let p = Pattern::parse(" a , b ");
        assert!(p.matches("a") && p.matches("b") && !p.matches("c") && !p.matches("A"));
        assert!(Pattern::parse("chat").matches("chat"));
    }

    #[test]
    fn test_template_url_escapes() {
        let t = UpstreamTemplate::any("http://h/{hub}/api/{category}/{event}");
        assert_eq!(t.url("chat", "messages", "a b"), "http://h/chat/api/messages/a%20b");
        assert!(t.matches("x", "y", "z"));
    }

    #[test]
    fn test_random_keys_differ() {
        assert_ne!(random_key(), random_key());
        assert_eq!(random_key().expose().len(), 44);
    }
}

/// Why an emulator settings file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("settings template {0} has no UrlTemplate")]
    MissingUrl(usize),
}

/// Reads the upstream templates of a Microsoft emulator `settings.json`:
/// `{"UpstreamSettings":{"Templates":[{"UrlTemplate","HubPattern","CategoryPattern","EventPattern"}]}}`.
/// Property names are matched case-insensitively, as .NET configuration binding does.
pub fn parse_settings(json: &str) -> Result<Vec<UpstreamTemplate>, SettingsError> {
    use serde_json::Value;
    fn get<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
        v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
    let root: Value = serde_json::from_str(json)?;
    let templates = get(&root, "UpstreamSettings").and_then(|u| get(u, "Templates")).and_then(Value::as_array);
    let mut out = Vec::new();
    for (i, t) in templates.into_iter().flatten().enumerate() {
        let url = get(t, "UrlTemplate").and_then(Value::as_str).ok_or(SettingsError::MissingUrl(i))?;
        let pattern = |name| Pattern::parse(get(t, name).and_then(Value::as_str).unwrap_or("*"));
        out.push(UpstreamTemplate {
            url_template: url.to_string(),
            hub_pattern: pattern("HubPattern"),
            category_pattern: pattern("CategoryPattern"),
            event_pattern: pattern("EventPattern"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn test_parse_emulator_settings() {
        let json = r#"{"UpstreamSettings":{"Templates":[
            {"UrlTemplate":"http://localhost:7071/runtime/webhooks/signalr","EventPattern":"*","CategoryPattern":"*","HubPattern":"*"},
            {"urlTemplate":"http://x/{event}","hubPattern":"chat, news","categoryPattern":"messages"}]}}"#;
        let t = parse_settings(json).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], UpstreamTemplate::any("http://localhost:7071/runtime/webhooks/signalr"));
        assert!(t[1].matches("news", "messages", "anything") && !t[1].matches("other", "messages", "x"));
        assert!(parse_settings("{").is_err());
        assert!(parse_settings(r#"{"UpstreamSettings":{"Templates":[{}]}}"#).is_err());
        assert!(parse_settings("{}").unwrap().is_empty());
    }
}
