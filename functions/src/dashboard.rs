//! The admin dashboard snapshot: what `updateAdminDashboard` carries.
//!
//! Built from what this instance knows: live connections per hub from presence. The
//! marketplace sync status, throughput, error rates and dependency health join it as the
//! functions that produce them land (admin-broadcast, marketplace-sync).

use serde_json::{Value, json};

use crate::presence::Presence;

pub fn snapshot(presence: &Presence, now_ms: u64) -> Value {
    let hubs = presence.snapshot();
    let connections: usize = hubs.iter().map(|h| h.connections).sum();
    json!({
        "generatedAt": meschain_model::clock::rfc3339_millis(now_ms),
        "liveConnections": connections,
        "hubs": hubs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hubs::Hub;

    #[test]
    fn test_snapshot_counts() {
        let p = Presence::default();
        p.connected(Hub::Admin, "a", Some("u"), 0);
        p.connected(Hub::Dashboard, "b", Some("v"), 0);
        let s = snapshot(&p, 1_700_000_000_000);
        assert_eq!(s["liveConnections"], 2);
        assert_eq!(s["generatedAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(s["hubs"].as_array().unwrap().len(), 3);
    }
}
