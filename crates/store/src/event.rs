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

/// Events prepared for the store between two yields to the runtime.
const PREPARED_PER_YIELD: usize = 64;

/// Prepares each event of a batch for writing (`prepare` serialises it), yielding to the
/// runtime every [`PREPARED_PER_YIELD`] events. Serialising a batch of a thousand takes
/// 0.3 ms as JSON text and 0.6-0.8 ms as JSON values (release build, 2026-12-07); done in one
/// go on a worker thread, it holds up the requests queued behind it on that worker as long.
pub(crate) async fn prepare_batch<T, E>(
    events: &[Event],
    mut prepare: impl FnMut(&Event) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    let mut prepared = Vec::with_capacity(events.len());
    for slice in events.chunks(PREPARED_PER_YIELD) {
        for event in slice {
            prepared.push(prepare(event)?);
        }
        tokio::task::yield_now().await;
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On one thread, another task runs between slices of a batch; results keep their order;
    /// the first error ends the batch.
    #[tokio::test(flavor = "current_thread")]
    async fn test_prepare_batch_lets_other_tasks_run() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let events: Vec<Event> = (0..200).map(|i| Event::new(EventKind::Error, i)).collect();
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut seen = Vec::new();
        let at: Vec<u64> = prepare_batch(&events, |e| {
            seen.push(ticks.load(Ordering::Relaxed));
            Ok::<_, ()>(e.at_ms)
        })
        .await
        .unwrap();
        ticker.abort();
        assert_eq!(at, (0..200).collect::<Vec<u64>>());
        // Nothing else ran while the first slice was prepared; something did before the last.
        assert_eq!(seen[PREPARED_PER_YIELD - 1], seen[0]);
        assert!(seen[199] > seen[0], "{seen:?}");

        let mut calls = 0;
        let failed = prepare_batch(&events, |e| {
            calls += 1;
            if e.at_ms == 70 { Err("bad event") } else { Ok(()) }
        })
        .await;
        assert_eq!(failed, Err("bad event"));
        assert_eq!(calls, 71);
    }

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
