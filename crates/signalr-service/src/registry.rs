//! Hubs and who is in them: connections, users, groups (§D.3, §D.7).
//!
//! Connection↔group and user↔group are separate many-to-many relations, as in the service:
//! adding a user to a group adds the user's current connections and, until the membership
//! expires (`ttl`, at most a year), every later connection of that user. A group "exists" while
//! at least one connection is in it.
//!
//! Each hub has its own `RwLock`; sends take the read lock and only `try_send` into bounded
//! queues, so a send to 10,000 connections holds it for microseconds per connection and never
//! waits on a client.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meschain_signalr::hub_protocol::Protocol;

use crate::connection::{CloseRequest, Connection};

/// A user→group membership without `ttl` lasts at most this long (§D.3).
pub const MAX_USER_GROUP_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Only the latest this-many memberships without `ttl` are kept per user (§D.3).
pub const MAX_UNTIMED_GROUPS_PER_USER: usize = 100;

/// One message serialised once per protocol.
#[derive(Clone, Debug)]
pub struct Frames {
    pub json: Bytes,
    pub msgpack: Bytes,
}

impl Frames {
    fn for_protocol(&self, p: Protocol) -> &Bytes {
        match p {
            Protocol::Json => &self.json,
            Protocol::MessagePack => &self.msgpack,
        }
    }
}

#[derive(Default)]
struct HubState {
    connections: HashMap<String, Arc<Connection>>,
    users: HashMap<String, HashSet<String>>,
    groups: HashMap<String, HashSet<String>>,
    connection_groups: HashMap<String, HashSet<String>>,
    user_groups: HashMap<String, HashMap<String, Instant>>,
    /// Per user, memberships added without `ttl`, oldest first.
    untimed: HashMap<String, VecDeque<String>>,
}

impl HubState {
    fn join(&mut self, connection_id: &str, group: &str) {
        self.groups.entry(group.to_string()).or_default().insert(connection_id.to_string());
        self.connection_groups.entry(connection_id.to_string()).or_default().insert(group.to_string());
    }

    fn leave(&mut self, connection_id: &str, group: &str) -> bool {
        let removed = match self.groups.get_mut(group) {
            Some(members) => {
                let removed = members.remove(connection_id);
                if members.is_empty() {
                    self.groups.remove(group);
                }
                removed
            }
            None => false,
        };
        if let Some(gs) = self.connection_groups.get_mut(connection_id) {
            gs.remove(group);
            if gs.is_empty() {
                self.connection_groups.remove(connection_id);
            }
        }
        removed
    }

    fn user_connections(&self, user: &str) -> Vec<String> {
        self.users.get(user).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    fn forget_untimed(&mut self, user: &str, group: &str) {
        if let Some(q) = self.untimed.get_mut(user) {
            q.retain(|g| g != group);
            if q.is_empty() {
                self.untimed.remove(user);
            }
        }
    }

    fn remove_user_from_group(&mut self, user: &str, group: &str) {
        self.forget_untimed(user, group);
        if let Some(gs) = self.user_groups.get_mut(user) {
            gs.remove(group);
            if gs.is_empty() {
                self.user_groups.remove(user);
            }
        }
        for c in self.user_connections(user) {
            self.leave(&c, group);
        }
    }
}

/// Which connections a send or close addresses.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    All,
    User(&'a str),
    Group(&'a str),
    Connection(&'a str),
}

#[derive(Default)]
pub struct Hub {
    state: RwLock<HubState>,
}

impl Hub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HubState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HubState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection that finished its handshake, auto-joining its user's groups.
    pub fn add(&self, conn: Arc<Connection>, now: Instant) {
        let mut s = self.write();
        let id = conn.id.clone();
        if let Some(user) = conn.user_id.clone() {
            s.users.entry(user.clone()).or_default().insert(id.clone());
            let groups: Vec<String> = s
                .user_groups
                .get(&user)
                .map(|gs| gs.iter().filter(|(_, exp)| **exp > now).map(|(g, _)| g.clone()).collect())
                .unwrap_or_default();
            for g in groups {
                s.join(&id, &g);
            }
        }
        s.connections.insert(id, conn);
    }

    pub fn remove(&self, conn: &Connection) {
        let mut s = self.write();
        s.connections.remove(&conn.id);
        if let Some(user) = &conn.user_id
            && let Some(set) = s.users.get_mut(user)
        {
            set.remove(&conn.id);
            if set.is_empty() {
                s.users.remove(user);
            }
        }
        if let Some(groups) = s.connection_groups.remove(&conn.id) {
            for g in groups {
                if let Some(members) = s.groups.get_mut(&g) {
                    members.remove(&conn.id);
                    if members.is_empty() {
                        s.groups.remove(&g);
                    }
                }
            }
        }
    }

    fn for_each(&self, target: Target<'_>, excluded: &[String], mut f: impl FnMut(&Arc<Connection>)) {
        // A linear scan is fastest for the usual handful of exclusions; many get a set.
        let set: Option<HashSet<&str>> = (excluded.len() > 16).then(|| excluded.iter().map(String::as_str).collect());
        let is_excluded = |id: &str| match &set {
            Some(set) => set.contains(id),
            None => excluded.iter().any(|e| e == id),
        };
        let s = self.read();
        let mut visit = |id: &String| {
            if is_excluded(id) {
                return;
            }
            if let Some(c) = s.connections.get(id) {
                f(c);
            }
        };
        match target {
            Target::All => s.connections.keys().for_each(&mut visit),
            Target::User(u) => s.users.get(u).into_iter().flatten().for_each(&mut visit),
            Target::Group(g) => s.groups.get(g).into_iter().flatten().for_each(&mut visit),
            Target::Connection(c) => visit(&c.to_string()),
        }
    }

    /// Queues `frames` for every addressed connection; returns how many got it.
    pub fn send(&self, target: Target<'_>, excluded: &[String], frames: &Frames) -> usize {
        let mut n = 0;
        self.for_each(target, excluded, |c| n += usize::from(c.send(frames.for_protocol(c.protocol).clone())));
        n
    }

    /// Asks every addressed connection to close; returns how many.
    pub fn close(&self, target: Target<'_>, excluded: &[String], reason: Option<&str>) -> usize {
        let mut n = 0;
        self.for_each(target, excluded, |c| {
            n += 1;
            c.request_close(CloseRequest { error: reason.map(str::to_string), allow_reconnect: false, abort: false });
        });
        n
    }

    pub fn connection_exists(&self, id: &str) -> bool {
        self.read().connections.contains_key(id)
    }

    pub fn user_exists(&self, user: &str) -> bool {
        self.read().users.contains_key(user)
    }

    pub fn group_exists(&self, group: &str) -> bool {
        self.read().groups.contains_key(group)
    }

    /// Adds a connection to a group; false if the connection does not exist.
    pub fn add_to_group(&self, connection_id: &str, group: &str) -> bool {
        let mut s = self.write();
        if !s.connections.contains_key(connection_id) {
            return false;
        }
        s.join(connection_id, group);
        true
    }

    /// Removes a connection from a group; false if it was not in it.
    pub fn remove_from_group(&self, connection_id: &str, group: &str) -> bool {
        self.write().leave(connection_id, group)
    }

    /// Removes a connection from all its groups; false if the connection does not exist.
    pub fn remove_from_all_groups(&self, connection_id: &str) -> bool {
        let mut s = self.write();
        let exists = s.connections.contains_key(connection_id);
        let groups: Vec<String> = s.connection_groups.get(connection_id).into_iter().flatten().cloned().collect();
        for g in groups {
            s.leave(connection_id, &g);
        }
        exists
    }

    /// Adds a user to a group. `ttl == Some(0)` adds only the user's current connections.
    pub fn add_user_to_group(&self, user: &str, group: &str, ttl: Option<Duration>, now: Instant) {
        let mut s = self.write();
        for c in s.user_connections(user) {
            s.join(&c, group);
        }
        s.forget_untimed(user, group);
        if ttl.is_none() {
            let q = s.untimed.entry(user.to_string()).or_default();
            q.push_back(group.to_string());
            if q.len() > MAX_UNTIMED_GROUPS_PER_USER
                && let Some(oldest) = q.pop_front()
            {
                s.remove_user_from_group(user, &oldest);
            }
        }
        let ttl = ttl.unwrap_or(MAX_USER_GROUP_TTL).min(MAX_USER_GROUP_TTL);
        if !ttl.is_zero() {
            s.user_groups.entry(user.to_string()).or_default().insert(group.to_string(), now + ttl);
        }
    }

    pub fn remove_user_from_group(&self, user: &str, group: &str) {
        self.write().remove_user_from_group(user, group);
    }

    pub fn remove_user_from_all_groups(&self, user: &str) {
        let mut s = self.write();
        let mut groups: HashSet<String> =
            s.user_groups.get(user).into_iter().flatten().map(|(g, _)| g.clone()).collect();
        for c in s.user_connections(user) {
            groups.extend(s.connection_groups.get(&c).into_iter().flatten().cloned());
        }
        for g in groups {
            s.remove_user_from_group(user, &g);
        }
    }

    /// Whether a user is in a group: a live membership, or one of its connections in it.
    pub fn user_in_group(&self, user: &str, group: &str, now: Instant) -> bool {
        let s = self.read();
        let member = s.user_groups.get(user).and_then(|gs| gs.get(group)).is_some_and(|exp| *exp > now);
        member || s.users.get(user).into_iter().flatten().any(|c| s.groups.get(group).is_some_and(|m| m.contains(c)))
    }

    /// Drops expired user→group memberships, taking the user's connections out of the group.
    pub fn sweep(&self, now: Instant) {
        let expired: Vec<(String, String)> = {
            let s = self.read();
            s.user_groups
                .iter()
                .flat_map(|(u, gs)| gs.iter().filter(|(_, exp)| **exp <= now).map(|(g, _)| (u.clone(), g.clone())))
                .collect()
        };
        if expired.is_empty() {
            return;
        }
        let mut s = self.write();
        for (u, g) in expired {
            if s.user_groups.get(&u).and_then(|gs| gs.get(&g)).is_some_and(|exp| *exp <= now) {
                s.remove_user_from_group(&u, &g);
            }
        }
    }

    fn is_empty(&self) -> bool {
        let s = self.read();
        s.connections.is_empty() && s.user_groups.is_empty()
    }

    pub fn connection_count(&self) -> usize {
        self.read().connections.len()
    }
}

/// All hubs, keyed by the lower-cased (application-scoped) hub name.
///
/// A hub exists while it has connections or user→group memberships; empty hubs are dropped by
/// the sweep, so REST calls naming arbitrary hubs cannot grow memory. Creating-and-writing and
/// the emptiness check both happen under the registry lock, so nothing is ever written into a
/// hub that was just dropped.
#[derive(Default)]
pub struct Registry {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Hub>>> {
        self.hubs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The hub if it exists; read-only callers treat a missing hub as an empty one.
    pub fn get(&self, name: &str) -> Option<Arc<Hub>> {
        self.lock().get(name).cloned()
    }

    /// Runs `f` on the hub, creating it if needed, under the registry lock.
    pub fn with_hub<R>(&self, name: &str, f: impl FnOnce(&Arc<Hub>) -> R) -> R {
        let mut hubs = self.lock();
        f(hubs.entry(name.to_string()).or_default())
    }

    pub fn hubs(&self) -> Vec<Arc<Hub>> {
        self.lock().values().cloned().collect()
    }

    /// Expires user→group memberships, then drops hubs left with nothing in them.
    pub fn sweep(&self, now: Instant) {
        for hub in self.hubs() {
            hub.sweep(now);
        }
        self.lock().retain(|_, hub| !hub.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, user: Option<&str>) -> (Arc<Connection>, tokio::sync::mpsc::Receiver<Bytes>) {
        let (c, rx) = Connection::new(id.into(), "h".into(), user.map(str::to_string), Protocol::Json, 8);
        (Arc::new(c), rx)
    }

    fn frames(s: &'static str) -> Frames {
        Frames { json: Bytes::from_static(s.as_bytes()), msgpack: Bytes::from_static(b"m") }
    }

    #[test]
    fn test_targets_and_excluded() {
        let hub = Hub::default();
        let now = Instant::now();
        let (a, mut ra) = conn("a", Some("u1"));
        let (b, mut rb) = conn("b", Some("u2"));
        hub.add(a.clone(), now);
        hub.add(b.clone(), now);
        assert_eq!(hub.send(Target::All, &["b".into()], &frames("x")), 1);
        let many: Vec<String> = (0..40).map(|i| format!("x{i}")).chain(["a".to_string()]).collect();
        assert_eq!(hub.send(Target::All, &many, &frames("y")), 1);
        assert_eq!(rb.try_recv().unwrap(), "y");
        assert_eq!(ra.try_recv().unwrap(), "x");
        assert!(rb.try_recv().is_err());
        assert_eq!(hub.send(Target::User("u2"), &[], &frames("y")), 1);
        assert_eq!(rb.try_recv().unwrap(), "y");
        assert!(hub.add_to_group("a", "g"));
        assert!(!hub.add_to_group("zzz", "g"));
        assert!(hub.group_exists("g"));
        assert_eq!(hub.send(Target::Group("g"), &[], &frames("z")), 1);
        assert!(hub.remove_from_group("a", "g"));
        assert!(!hub.remove_from_group("a", "g"));
        assert!(!hub.group_exists("g"));
        assert_eq!(hub.send(Target::Connection("b"), &[], &frames("w")), 1);
        hub.remove(&a);
        assert!(!hub.connection_exists("a") && !hub.user_exists("u1"));
    }

    #[test]
    fn test_only_latest_untimed_groups_kept() {
        let hub = Hub::default();
        let now = Instant::now();
        for i in 0..=MAX_UNTIMED_GROUPS_PER_USER {
            hub.add_user_to_group("u", &format!("g{i}"), None, now);
        }
        hub.add_user_to_group("u", "timed", Some(Duration::from_secs(60)), now);
        assert!(!hub.user_in_group("u", "g0", now));
        assert!(hub.user_in_group("u", "g1", now));
        assert!(hub.user_in_group("u", &format!("g{MAX_UNTIMED_GROUPS_PER_USER}"), now));
        assert!(hub.user_in_group("u", "timed", now));
        hub.remove_user_from_all_groups("u");
        assert!(hub.is_empty());
    }

    #[test]
    fn test_empty_hubs_are_dropped() {
        let reg = Registry::default();
        let now = Instant::now();
        let (a, _ra) = conn("a", None);
        let hub = reg.with_hub("h", |h| {
            h.add(a.clone(), now);
            h.clone()
        });
        reg.with_hub("users-only", |h| h.add_user_to_group("u", "g", Some(Duration::from_secs(5)), now));
        reg.with_hub("nothing", |_| ());
        reg.sweep(now);
        assert!(reg.get("h").is_some() && reg.get("users-only").is_some() && reg.get("nothing").is_none());
        hub.remove(&a);
        reg.sweep(now + Duration::from_secs(6));
        assert!(reg.get("h").is_none() && reg.get("users-only").is_none());
    }

    #[test]
    fn test_user_groups_auto_join_and_ttl() {
        let hub = Hub::default();
        let now = Instant::now();
        hub.add_user_to_group("u", "g", Some(Duration::from_secs(10)), now);
        let (a, _ra) = conn("a", Some("u"));
        hub.add(a, now);
        assert!(hub.group_exists("g"));
        assert!(hub.user_in_group("u", "g", now));
        hub.sweep(now + Duration::from_secs(11));
        assert!(!hub.group_exists("g"));
        assert!(!hub.user_in_group("u", "g", now + Duration::from_secs(11)));
        // ttl 0: current connections only, no membership kept.
        hub.add_user_to_group("u", "g2", Some(Duration::ZERO), now);
        assert!(hub.group_exists("g2"));
        let (b, _rb) = conn("b", Some("u"));
        hub.add(b, now);
        assert_eq!(hub.send(Target::Group("g2"), &[], &frames("x")), 1);
        hub.remove_user_from_all_groups("u");
        assert!(!hub.group_exists("g2"));
    }
}
