//! The instance's access keys, which can be regenerated while it runs.
//!
//! Azure SignalR Service has two keys, primary and secondary, and both are valid at once: that
//! is what makes rotation possible without a failed request. An operator regenerates the key
//! the app does not use, switches the app to it, then regenerates the other one. Regenerating
//! a key (ARM's `regenerateKey`) invalidates it at once for new tokens, REST calls and upstream
//! signatures; connections already established stay up, as tokens are checked on connect only.
//! Tests drive the same procedure against the local service through [`AccessKeys::regenerate`].

use std::sync::{Arc, RwLock};

use meschain_signalr::AccessKey;

use crate::config::random_key;

/// Which of the two keys, as ARM names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Primary,
    Secondary,
}

/// The keys accepted now; the first is the primary, the second (if any) the secondary.
pub struct AccessKeys {
    keys: RwLock<Arc<[AccessKey]>>,
}

impl AccessKeys {
    pub fn new(keys: Vec<AccessKey>) -> Self {
        AccessKeys { keys: RwLock::new(keys.into()) }
    }

    /// A snapshot: checks in progress keep the keys they started with.
    pub fn current(&self) -> Arc<[AccessKey]> {
        // A poisoned lock only means a writer panicked between two whole assignments.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn primary(&self) -> AccessKey {
        self.current()[0].clone()
    }

    /// Replaces one key with a fresh random one and returns it; the replaced key stops being
    /// accepted at once. Regenerating the secondary of a one-key instance adds one.
    pub fn regenerate(&self, which: KeyType) -> AccessKey {
        let fresh = random_key();
        let mut guard = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut keys = guard.to_vec();
        match which {
            KeyType::Primary => keys[0] = fresh.clone(),
            KeyType::Secondary if keys.len() > 1 => keys[1] = fresh.clone(),
            KeyType::Secondary => keys.push(fresh.clone()),
        }
        *guard = keys.into();
        fresh
    }

    /// The key of that type, if the instance has one.
    pub fn get(&self, which: KeyType) -> Option<AccessKey> {
        let keys = self.current();
        match which {
            KeyType::Primary => keys.first().cloned(),
            KeyType::Secondary => keys.get(1).cloned(),
        }
    }
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeys").field("count", &self.current().len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_regenerate_replaces_only_that_key() {
        let keys = AccessKeys::new(vec![AccessKey::new("p"), AccessKey::new("s")]);
        let before = keys.current();
        let fresh = keys.regenerate(KeyType::Secondary);
        let now = keys.current();
        assert_eq!(now[0].expose(), "p");
        assert_eq!(now[1].expose(), fresh.expose());
        assert_ne!(fresh.expose(), "s");
        // A snapshot taken before is unchanged.
        assert_eq!(before[1].expose(), "s");

        let p = keys.regenerate(KeyType::Primary);
        assert_eq!(keys.primary().expose(), p.expose());
        assert_eq!(keys.get(KeyType::Secondary).unwrap().expose(), fresh.expose());
    }

    #[test]
    fn test_secondary_added_to_a_one_key_instance() {
        let keys = AccessKeys::new(vec![AccessKey::new("p")]);
        assert!(keys.get(KeyType::Secondary).is_none());
        let s = keys.regenerate(KeyType::Secondary);
        assert_eq!(keys.current().len(), 2);
        assert_eq!(keys.get(KeyType::Secondary).unwrap().expose(), s.expose());
    }

    #[test]
    fn test_debug_hides_keys() {
        let keys = AccessKeys::new(vec![AccessKey::new("very-secret")]);
        assert!(!format!("{keys:?}").contains("very-secret"));
    }
}
