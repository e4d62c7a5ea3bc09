//! How healthy a dependency is, as the dashboard's `health` section and every part that
//! reports on a dependency (the secrets cache, the store, SignalR) say it.

use serde::Serialize;

/// `"healthy"`, `"degraded"` (working with stale or partial data) or `"down"` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_wire_names() {
        let names: Vec<String> = [HealthStatus::Healthy, HealthStatus::Degraded, HealthStatus::Down]
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        assert_eq!(names, [r#""healthy""#, r#""degraded""#, r#""down""#]);
    }
}
