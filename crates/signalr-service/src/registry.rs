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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meschain_signalr::hub_protocol::Protocol;

use crate::connection::{CloseRequest, Connection};

/// A user→group membership without `ttl` lasts at most this long (§D.3).
pub const MAX_USER_GROUP_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

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

    fn remove_user_from_group(&mut self, user: &str, group: &str) {
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
        let s = self.read();
        let mut visit = |id: &String| {
            if excluded.iter().any(|e| e == id) {
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

    pub fn connection_count(&self) -> usize {
        self.read().connections.len()
    }

    /// Every connection, for shutdown.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.read().connections.values().cloned().collect()
    }
}

/// All hubs, keyed by the lower-cased (application-scoped) hub name.
#[derive(Default)]
pub struct Registry {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

impl Registry {
    pub fn hub(&self, name: &str) -> Arc<Hub> {
        self.hubs.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    pub fn hubs(&self) -> Vec<Arc<Hub>> {
        self.hubs.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
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
