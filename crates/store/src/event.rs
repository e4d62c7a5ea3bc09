//! Analytics events: what happened, for later analysis. Never tokens, keys or secrets: the
//! type has no place for them, and the one free-text field is redacted and bounded.

use serde::{Deserialize, Serialize};

/// Longest `detail` kept, in characters.
pub const MAX_DETAIL_CHARS: usize = 300;

/// What happened. The string form (`as_str`) is what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "negotiate.ok")]
    Negotiated,
    #[serde(rename = "negotiate.failed")]
    NegotiateFailed,
    #[serde(rename = "connection.connected")]
    Connected,
    #[serde(rename = "connection.disconnected")]
    Disconnected,
    #[serde(rename = "hub.method")]
    HubMethodCalled,
    #[serde(rename = "hub.method.failed")]
    HubMethodFailed,
    #[serde(rename = "sync.requested")]
    SyncRequested,
    #[serde(rename = "sync.started")]
    SyncStarted,
    #[serde(rename = "sync.batch")]
    SyncBatch,
    #[serde(rename = "sync.completed")]
    SyncCompleted,
    #[serde(rename = "sync.failed")]
    SyncFailed,
    #[serde(rename = "broadcast.sent")]
    BroadcastSent,
    #[serde(rename = "error")]
    Error,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::Negotiated,
        EventKind::NegotiateFailed,
        EventKind::Connected,
        EventKind::Disconnected,
        EventKind::HubMethodCalled,
        EventKind::HubMethodFailed,
        EventKind::SyncRequested,
        EventKind::SyncStarted,
        EventKind::SyncBatch,
        EventKind::SyncCompleted,
        EventKind::SyncFailed,
        EventKind::BroadcastSent,
        EventKind::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Negotiated => "negotiate.ok",
            EventKind::NegotiateFailed => "negotiate.failed",
            EventKind::Connected => "connection.connected",
            EventKind::Disconnected => "connection.disconnected",
            EventKind::HubMethodCalled => "hub.method",
            EventKind::HubMethodFailed => "hub.method.failed",
            EventKind::SyncRequested => "sync.requested",
            EventKind::SyncStarted => "sync.started",
            EventKind::SyncBatch => "sync.batch",
            EventKind::SyncCompleted => "sync.completed",
            EventKind::SyncFailed => "sync.failed",
            EventKind::BroadcastSent => "broadcast.sent",
            EventKind::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One analytics event. Build with [`Event::new`] and the `with_*` setters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique id, assigned by the recorder when buffered, so a retried write is recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub kind: EventKind,
    /// Unix milliseconds.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Hub method name, function name, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<String>,
    /// Items in a batch, recipients of a broadcast, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Free text (an error message), redacted and bounded by [`Event::with_detail`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind, at_ms: u64) -> Self {
        Event {
            id: None,
            kind,
            at_ms,
            hub: None,
            connection_id: None,
            user_id: None,
            name: None,
            marketplace: None,
            sync_id: None,
            count: None,
            duration_ms: None,
            detail: None,
        }
    }

    pub fn with_hub(mut self, hub: &str) -> Self {
        self.hub = Some(bounded(hub, 100));
        self
    }

    pub fn with_connection(mut self, connection_id: &str) -> Self {
        self.connection_id = Some(bounded(connection_id, 200));
        self
    }

    pub fn with_user(mut self, user_id: Option<&str>) -> Self {
        self.user_id = user_id.map(|u| bounded(u, 200));
        self
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(bounded(name, 100));
        self
    }

    pub fn with_marketplace(mut self, marketplace: &str) -> Self {
        self.marketplace = Some(bounded(marketplace, 50));
        self
    }

    pub fn with_sync(mut self, sync_id: &str) -> Self {
        self.sync_id = Some(bounded(sync_id, 200));
        self
    }

    pub fn with_count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    pub fn with_duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    /// Sets `detail` to `text` with anything that looks like a credential masked, cut to
    /// [`MAX_DETAIL_CHARS`].
    pub fn with_detail(mut self, text: &str) -> Self {
        self.detail = Some(redact(text));
        self
    }
}

/// `s` cut to its first `max` characters (one copy; events are built on the request path).
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

/// Credential markers masked in free text: connection-string keys, query-string signatures,
/// bearer tokens, and JWT-shaped words.
const SECRET_MARKERS: [&str; 9] = [
    "accesskey=",
    "accountkey=",
    "sharedaccesskey=",
    "clientsecret=",
    "password=",
    "sig=",
    "access_token=",
    "key=",
    "bearer ",
];

/// Masks credential-looking parts of `text` and bounds it. Error texts from libraries sometimes
/// quote a URL or header; this is a second line of defence, not a licence to pass secrets in.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETAIL_CHARS + 8));
    let mut words = text.split_inclusive(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == ',');
    let mut mask_next = false;
    for word in words.by_ref() {
        let lower = word.to_ascii_lowercase();
        let trimmed = word.trim_end_matches(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == ',');
        let sep = &word[trimmed.len()..];
        if mask_next {
            out.push_str("***");
            out.push_str(sep);
            mask_next = false;
        } else if lower.trim_end() == "bearer" {
            out.push_str(word);
            mask_next = true;
        } else if let Some(pos) = SECRET_MARKERS.iter().filter_map(|m| lower.find(m).map(|p| p + m.len())).min() {
            out.push_str(&trimmed[..pos.min(trimmed.len())]);
            out.push_str("***");
            out.push_str(sep);
        } else if looks_like_jwt(trimmed) {
            out.push_str("***");
            out.push_str(sep);
        } else {
            out.push_str(word);
        }
        if out.chars().count() > MAX_DETAIL_CHARS {
            break;
        }
    }
    bounded(&out, MAX_DETAIL_CHARS)
}

fn looks_like_jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| p.len() >= 4 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_redact_masks_credentials() {
        let text = "POST https://x.service.signalr.net/api?sig=abc123&se=1 failed; Endpoint=https://x;AccessKey=SECRETKEY;Version=1.0 \
                    Authorization: Bearer eyJhbGciOi.eyJzdWIiOiJ4In0.c2lnbmF0dXJl token eyJhbGciOi.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let r = redact(text);
        for secret in ["abc123", "SECRETKEY", "eyJhbGciOi"] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(r.contains("sig=***"), "{r}");
        assert!(r.contains("AccessKey=***"), "{r}");
        assert!(r.contains("Version=1.0"), "{r}");
        assert_eq!(redact("plain error: timed out"), "plain error: timed out");
    }

    #[test]
    fn test_detail_is_bounded_and_kinds_round_trip() {
        let e = Event::new(EventKind::Error, 1).with_detail(&"x ".repeat(1000));
        assert_eq!(e.detail.unwrap().chars().count(), MAX_DETAIL_CHARS);
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn test_bounded_cuts_at_a_character_boundary() {
        assert_eq!(bounded("hub", 100), "hub");
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("ğüşiöç", 3), "ğüş");
        assert_eq!(bounded("🙂🙂", 1), "🙂");
        assert_eq!(bounded("", 0), "");
        assert_eq!(bounded("abc", 0), "");
    }
}
