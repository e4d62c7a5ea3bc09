//! Live connections per hub across every instance.
//!
//! A connection's `connected` and `disconnected` events may reach different instances, so no
//! instance can count alone. Two kinds of documents, both updated with etag preconditions:
//!
//! - `presence-users/{hub}.{hash(user)}`: the user's live connection ids on that hub (and the
//!   last few that ended, so a `disconnected` that overtakes its `connected` is not undone).
//!   Makes events idempotent: a repeated `connected` is counted once.
//! - `presence/totals`: connections and distinct users per hub, changed by the deltas the
//!   user documents produce. The snapshot reads only this one document.
//!
//! The recorder applies presence updates in the background (never in a request) and merges
//! the totals delta once per flush.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::doc::{self, Retention};
use crate::{Store, StoreError};

pub const TOTALS_COLLECTION: &str = "presence";
pub const TOTALS_ID: &str = "totals";
pub const USERS_COLLECTION: &str = "presence-users";

/// Connection ids kept per user document (a user with more tabs is counted, not tracked).
const MAX_LIVE_PER_USER: usize = 1_000;
/// Ended connection ids remembered per user document.
const GONE_KEPT: usize = 32;

/// Connections and distinct users on one hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubCount {
    pub connections: i64,
    pub users: i64,
}

/// `presence/totals`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceTotals {
    #[serde(default)]
    pub hubs: BTreeMap<String, HubCount>,
}

impl PresenceTotals {
    pub fn merge(&mut self, delta: &PresenceTotals) {
        for (hub, d) in &delta.hubs {
            let c = self.hubs.entry(hub.clone()).or_default();
            c.connections += d.connections;
            c.users += d.users;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hubs.values().all(|c| c.connections == 0 && c.users == 0)
    }

    /// One hub's counts, never negative (a lost update can only make them drift, not lie below 0).
    pub fn hub(&self, hub: &str) -> HubCount {
        let c = self.hubs.get(hub).copied().unwrap_or_default();
        HubCount { connections: c.connections.max(0), users: c.users.max(0) }
    }
}

/// One presence change, as the SignalR upstream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceOp {
    Connected { hub: String, connection_id: String, user_id: Option<String> },
    Disconnected { hub: String, connection_id: String, user_id: Option<String> },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserDoc {
    #[serde(default)]
    live: Vec<String>,
    #[serde(default)]
    gone: Vec<String>,
    /// Connections beyond [`MAX_LIVE_PER_USER`], counted but not tracked.
    #[serde(default)]
    untracked: u64,
}

/// Document id of a user's presence on a hub: hashed, so any user id makes a valid id and
/// the document name does not repeat the user id. Anonymous connections get one each.
fn user_doc_id(hub: &str, connection_id: &str, user_id: Option<&str>) -> String {
    let (tag, key) = match user_id {
        Some(u) => ("u", u),
        None => ("c", connection_id),
    };
    let hash = Sha256::digest(key.as_bytes());
    format!("{}.{tag}.{}", hub.to_ascii_lowercase(), hex::encode(&hash[..16]))
}

/// Applies one change to its user document and adds what it changed to `totals`.
pub async fn apply(store: &dyn Store, op: &PresenceOp, totals: &mut PresenceTotals) -> Result<(), StoreError> {
    let (hub, connection_id, user_id, connected) = match op {
        PresenceOp::Connected { hub, connection_id, user_id } => (hub, connection_id, user_id, true),
        PresenceOp::Disconnected { hub, connection_id, user_id } => (hub, connection_id, user_id, false),
    };
    let id = user_doc_id(hub, connection_id, user_id.as_deref());
    let counts_user = user_id.is_some();
    let mut delta = HubCount::default();
    let written = doc::update_doc::<UserDoc, _>(store, USERS_COLLECTION, &id, Retention::Keep, |current| {
        let mut d = current.unwrap_or_default();
        let was_live = !d.live.is_empty() || d.untracked > 0;
        delta = HubCount::default();
        if connected {
            if d.live.iter().any(|c| c == connection_id) || d.gone.iter().any(|c| c == connection_id) {
                return None; // repeated, or already ended: nothing changes
            }
            if d.live.len() < MAX_LIVE_PER_USER {
                d.live.push(connection_id.clone());
            } else {
                d.untracked += 1;
            }
            delta.connections = 1;
        } else {
            if let Some(pos) = d.live.iter().position(|c| c == connection_id) {
                d.live.swap_remove(pos);
                delta.connections = -1;
            } else if d.untracked > 0 && !d.gone.iter().any(|c| c == connection_id) {
                d.untracked -= 1;
                delta.connections = -1;
            }
            if d.gone.iter().any(|c| c == connection_id) {
                return None;
            }
            if d.gone.len() == GONE_KEPT {
                d.gone.remove(0);
            }
            d.gone.push(connection_id.clone());
        }
        let is_live = !d.live.is_empty() || d.untracked > 0;
        if counts_user {
            delta.users = i64::from(is_live) - i64::from(was_live);
        }
        Some(d)
    })
    .await?;
    if written.is_some() {
        totals.merge(&PresenceTotals { hubs: BTreeMap::from([(hub.clone(), delta)]) });
    }
    Ok(())
}

/// Adds `delta` to `presence/totals`.
pub async fn merge_totals(store: &dyn Store, delta: &PresenceTotals) -> Result<(), StoreError> {
    if delta.is_empty() {
        return Ok(());
    }
    doc::update_doc::<PresenceTotals, _>(store, TOTALS_COLLECTION, TOTALS_ID, Retention::Keep, |current| {
        let mut t = current.unwrap_or_default();
        t.merge(delta);
        Some(t)
    })
    .await
    .map(drop)
}

/// Reads `presence/totals` (absent: nobody connected yet).
pub async fn totals(store: &dyn Store) -> Result<PresenceTotals, StoreError> {
    Ok(doc::get_typed::<PresenceTotals>(store, TOTALS_COLLECTION, TOTALS_ID)
        .await?
        .map(|v| v.value)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_user_doc_ids_are_valid_and_distinct() {
        let a = user_doc_id("MesChainAdminHub", "c1", Some("alice/../#?"));
        crate::doc::check_name("id", &a).unwrap();
        assert!(!a.contains("alice"));
        assert_ne!(a, user_doc_id("MesChainAdminHub", "c1", Some("bob")));
        assert_ne!(user_doc_id("h", "c1", None), user_doc_id("h", "c2", None));
    }
}
