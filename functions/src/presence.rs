//! Who is connected to which hub, since when, and why recent connections ended.
//!
//! Fed by the SignalR upstream's `connected`/`disconnected` events. It lives in this process's
//! memory: on a scaled-out app each instance sees the events routed to it, so counts are
//! per instance until presence moves to the analytics store. Bounded, so a flood of fake
//! connection events cannot exhaust memory (and they must be signed to get here anyway).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use crate::hubs::Hub;
use crate::marketplace::Marketplace;

/// Connections tracked per hub at most; more are counted as untracked.
const MAX_CONNECTIONS_PER_HUB: usize = 200_000;
/// Recent disconnects kept per hub, with their errors.
const RECENT_DISCONNECTS: usize = 50;

#[derive(Debug, Clone)]
struct Connection {
    user_id: Option<String>,
    since_ms: u64,
    marketplaces: Vec<Marketplace>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disconnect {
    pub connection_id: String,
    pub user_id: Option<String>,
    pub at_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct HubPresence {
    connections: HashMap<String, Connection>,
    untracked: u64,
    recent_disconnects: VecDeque<Disconnect>,
}

/// A hub's presence at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSnapshot {
    pub hub: &'static str,
    pub connections: usize,
    pub users: usize,
    /// When the longest-lived connection started (Unix ms).
    pub oldest_since_ms: Option<u64>,
    pub untracked: u64,
    pub recent_disconnects: Vec<Disconnect>,
}

#[derive(Default)]
pub struct Presence {
    hubs: Mutex<HashMap<Hub, HubPresence>>,
}

impl Presence {
    fn with<R>(&self, hub: Hub, f: impl FnOnce(&mut HubPresence) -> R) -> R {
        // A poisoned lock only means another request panicked mid-update; the map is still usable.
        let mut hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        f(hubs.entry(hub).or_default())
    }

    pub fn connected(&self, hub: Hub, connection_id: &str, user_id: Option<&str>, now_ms: u64) {
        self.with(hub, |p| {
            if p.connections.len() >= MAX_CONNECTIONS_PER_HUB && !p.connections.contains_key(connection_id) {
                p.untracked += 1;
                return;
            }
            p.connections.insert(
                connection_id.to_string(),
                Connection { user_id: user_id.map(str::to_string), since_ms: now_ms, marketplaces: Vec::new() },
            );
        })
    }

    pub fn disconnected(&self, hub: Hub, connection_id: &str, error: Option<&str>, now_ms: u64) {
        self.with(hub, |p| {
            let user_id = match p.connections.remove(connection_id) {
                Some(c) => c.user_id,
                None => {
                    p.untracked = p.untracked.saturating_sub(1);
                    None
                }
            };
            if p.recent_disconnects.len() == RECENT_DISCONNECTS {
                p.recent_disconnects.pop_front();
            }
            p.recent_disconnects.push_back(Disconnect {
                connection_id: connection_id.to_string(),
                user_id,
                at_ms: now_ms,
                error: error.filter(|e| !e.is_empty()).map(|e| e.chars().take(500).collect()),
            });
        })
    }

    /// Records that a connection joined a marketplace's group; false if the connection is unknown.
    pub fn joined_marketplace(&self, hub: Hub, connection_id: &str, marketplace: Marketplace) -> bool {
        self.with(hub, |p| match p.connections.get_mut(connection_id) {
            Some(c) => {
                if !c.marketplaces.contains(&marketplace) {
                    c.marketplaces.push(marketplace);
                }
                true
            }
            None => false,
        })
    }

    pub fn marketplaces_of(&self, hub: Hub, connection_id: &str) -> Vec<Marketplace> {
        self.with(hub, |p| p.connections.get(connection_id).map(|c| c.marketplaces.clone()).unwrap_or_default())
    }

    pub fn snapshot(&self) -> Vec<HubSnapshot> {
        Hub::ALL
            .into_iter()
            .map(|hub| {
                self.with(hub, |p| HubSnapshot {
                    hub: hub.name(),
                    connections: p.connections.len(),
                    users: p.connections.values().filter_map(|c| c.user_id.as_deref()).collect::<HashSet<_>>().len(),
                    oldest_since_ms: p.connections.values().map(|c| c.since_ms).min(),
                    untracked: p.untracked,
                    recent_disconnects: p.recent_disconnects.iter().cloned().collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_connect_disconnect_and_users() {
        let p = Presence::default();
        p.connected(Hub::Admin, "c1", Some("alice"), 10);
        p.connected(Hub::Admin, "c2", Some("alice"), 20);
        p.connected(Hub::Admin, "c3", None, 30);
        let s = &p.snapshot()[0];
        assert_eq!((s.connections, s.users, s.oldest_since_ms), (3, 1, Some(10)));
        p.disconnected(Hub::Admin, "c1", Some("Connection closed with an error."), 40);
        p.disconnected(Hub::Admin, "c3", Some(""), 41);
        let s = &p.snapshot()[0];
        assert_eq!((s.connections, s.users, s.oldest_since_ms), (1, 1, Some(20)));
        assert_eq!(s.recent_disconnects[0].user_id.as_deref(), Some("alice"));
        assert_eq!(s.recent_disconnects[0].error.as_deref(), Some("Connection closed with an error."));
        assert_eq!(s.recent_disconnects[1].error, None, "an empty error is a clean close");
        assert_eq!(p.snapshot()[2].connections, 0);
    }

    #[test]
    fn test_marketplaces_and_unknown_connections() {
        let p = Presence::default();
        assert!(!p.joined_marketplace(Hub::Marketplace, "nope", Marketplace::Ozon));
        p.connected(Hub::Marketplace, "c1", Some("m"), 0);
        assert!(p.joined_marketplace(Hub::Marketplace, "c1", Marketplace::Ozon));
        assert!(p.joined_marketplace(Hub::Marketplace, "c1", Marketplace::Ozon));
        assert_eq!(p.marketplaces_of(Hub::Marketplace, "c1"), vec![Marketplace::Ozon]);
        p.disconnected(Hub::Marketplace, "never-connected", None, 1);
        assert_eq!(p.snapshot()[1].recent_disconnects.len(), 1);
    }

    #[test]
    fn test_disconnect_history_is_bounded() {
        let p = Presence::default();
        for i in 0..(RECENT_DISCONNECTS as u64 + 10) {
            p.disconnected(Hub::Dashboard, &format!("c{i}"), Some(&"x".repeat(10_000)), i);
        }
        let s = &p.snapshot()[2];
        assert_eq!(s.recent_disconnects.len(), RECENT_DISCONNECTS);
        assert_eq!(s.recent_disconnects[0].error.as_ref().unwrap().len(), 500);
    }
}
