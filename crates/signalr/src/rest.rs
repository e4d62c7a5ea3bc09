//! The data-plane REST API (2022-06-01): which request each operation is, and the audience its
//! token must carry (https://learn.microsoft.com/azure/azure-signalr/signalr-reference-data-plane-rest-api).
//!
//! URLs are built on `ServerEndpoint` (else `Endpoint`) and keep its port; audiences are built
//! on `Endpoint` without port and include `api-version` (and `application`) but not the extra
//! parameters (`excluded`, `reason`, `ttl`), exactly as the official Management SDK does, since
//! that is what production services have been validated against.

use crate::ConnectionString;
use crate::connection_string::escape;

pub const API_VERSION: &str = "2022-06-01";

/// HTTP method of a REST call, kept small so this crate needs no HTTP library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Head,
    Post,
    Put,
    Delete,
}

/// One REST operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation<'a> {
    SendToAll { excluded: &'a [String] },
    SendToUser { user: &'a str },
    SendToConnection { connection: &'a str },
    SendToGroup { group: &'a str, excluded: &'a [String] },
    AddConnectionToGroup { group: &'a str, connection: &'a str },
    RemoveConnectionFromGroup { group: &'a str, connection: &'a str },
    RemoveConnectionFromAllGroups { connection: &'a str },
    AddUserToGroup { group: &'a str, user: &'a str, ttl_secs: Option<u64> },
    RemoveUserFromGroup { group: &'a str, user: &'a str },
    RemoveUserFromAllGroups { user: &'a str },
    CloseConnection { connection: &'a str, reason: Option<&'a str> },
    CloseAll { excluded: &'a [String], reason: Option<&'a str> },
    CloseGroup { group: &'a str, excluded: &'a [String], reason: Option<&'a str> },
    CloseUser { user: &'a str, excluded: &'a [String], reason: Option<&'a str> },
    ConnectionExists { connection: &'a str },
    UserExists { user: &'a str },
    GroupExists { group: &'a str },
    UserInGroup { group: &'a str, user: &'a str },
}

/// How an answer is read: which statuses mean success, and which `x-ms-error-code` turns a
/// 404 into a plain "no" rather than an error (§D.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub success: &'static [u16],
    pub not_found_code: Option<&'static str>,
}

/// A REST call ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCall {
    pub method: Method,
    pub url: String,
    pub audience: String,
    /// Whether the call carries the `{target, arguments}` JSON body.
    pub has_body: bool,
    pub expect: Expectation,
}

const SENT: Expectation = Expectation { success: &[202], not_found_code: None };
const OK: Expectation = Expectation { success: &[200], not_found_code: None };
const NO_CONTENT: Expectation = Expectation { success: &[204], not_found_code: None };

impl Operation<'_> {
    fn parts(&self) -> (Method, String, Vec<(&'static str, String)>, Expectation) {
        use Operation::*;
        let e = escape;
        let many =
            |name: &'static str, items: &[String]| items.iter().map(move |i| (name, i.clone())).collect::<Vec<_>>();
        let reason = |r: &Option<&str>| r.map(|r| ("reason", r.to_string())).into_iter().collect::<Vec<_>>();
        match self {
            SendToAll { excluded } => (Method::Post, "/:send".into(), many("excluded", excluded), SENT),
            SendToUser { user } => (Method::Post, format!("/users/{}/:send", e(user)), vec![], SENT),
            SendToConnection { connection } => {
                (Method::Post, format!("/connections/{}/:send", e(connection)), vec![], SENT)
            }
            SendToGroup { group, excluded } => {
                (Method::Post, format!("/groups/{}/:send", e(group)), many("excluded", excluded), SENT)
            }
            AddConnectionToGroup { group, connection } => (
                Method::Put,
                format!("/groups/{}/connections/{}", e(group), e(connection)),
                vec![],
                Expectation { success: &[200], not_found_code: Some("Error.Connection.NotExisted") },
            ),
            RemoveConnectionFromGroup { group, connection } => (
                Method::Delete,
                format!("/groups/{}/connections/{}", e(group), e(connection)),
                vec![],
                Expectation { success: &[200], not_found_code: Some("Error.Connection.NotExisted") },
            ),
            RemoveConnectionFromAllGroups { connection } => {
                (Method::Delete, format!("/connections/{}/groups", e(connection)), vec![], OK)
            }
            AddUserToGroup { group, user, ttl_secs } => (
                Method::Put,
                format!("/users/{}/groups/{}", e(user), e(group)),
                ttl_secs.map(|t| ("ttl", t.to_string())).into_iter().collect(),
                OK,
            ),
            RemoveUserFromGroup { group, user } => {
                (Method::Delete, format!("/users/{}/groups/{}", e(user), e(group)), vec![], NO_CONTENT)
            }
            RemoveUserFromAllGroups { user } => {
                (Method::Delete, format!("/users/{}/groups", e(user)), vec![], NO_CONTENT)
            }
            CloseConnection { connection, reason: r } => (
                Method::Delete,
                format!("/connections/{}", e(connection)),
                reason(r),
                Expectation { success: &[200], not_found_code: Some("Warning.Connection.NotExisted") },
            ),
            CloseAll { excluded, reason: r } => (
                Method::Post,
                "/:closeConnections".into(),
                [many("excluded", excluded), reason(r)].concat(),
                NO_CONTENT,
            ),
            CloseGroup { group, excluded, reason: r } => (
                Method::Post,
                format!("/groups/{}/:closeConnections", e(group)),
                [many("excluded", excluded), reason(r)].concat(),
                NO_CONTENT,
            ),
            CloseUser { user, excluded, reason: r } => (
                Method::Post,
                format!("/users/{}/:closeConnections", e(user)),
                [many("excluded", excluded), reason(r)].concat(),
                NO_CONTENT,
            ),
            ConnectionExists { connection } => (
                Method::Head,
                format!("/connections/{}", e(connection)),
                vec![],
                Expectation { success: &[200], not_found_code: Some("Warning.Connection.NotExisted") },
            ),
            UserExists { user } => (
                Method::Head,
                format!("/users/{}", e(user)),
                vec![],
                Expectation { success: &[200], not_found_code: Some("Warning.User.NotExisted") },
            ),
            GroupExists { group } => (
                Method::Head,
                format!("/groups/{}", e(group)),
                vec![],
                Expectation { success: &[200], not_found_code: Some("Warning.Group.NotExisted") },
            ),
            UserInGroup { group, user } => (
                Method::Head,
                format!("/users/{}/groups/{}", e(user), e(group)),
                vec![],
                Expectation { success: &[200], not_found_code: Some("Info.User.NotInGroup") },
            ),
        }
    }

    /// Whether the call sends a message body.
    pub fn sends_message(&self) -> bool {
        use Operation::*;
        matches!(self, SendToAll { .. } | SendToUser { .. } | SendToConnection { .. } | SendToGroup { .. })
    }
}

/// Builds the call for `op` on `hub` of the instance `cs`.
pub fn call(cs: &ConnectionString, hub: &str, op: &Operation<'_>) -> RestCall {
    let (method, path, extra, expect) = op.parts();
    let hub_path = format!("api/hubs/{}{path}", escape(&hub.to_ascii_lowercase()));
    let versioned = format!("{hub_path}?api-version={API_VERSION}");
    let mut url = format!("{}{versioned}", cs.server_base());
    for (k, v) in extra {
        url.push('&');
        url.push_str(k);
        url.push('=');
        url.push_str(&escape(&v));
    }
    RestCall {
        method,
        url,
        audience: format!("{}{versioned}", cs.audience_base()),
        has_body: op.sends_message(),
        expect,
    }
}

/// The health check call (`HEAD /api/health`).
pub fn health(cs: &ConnectionString) -> RestCall {
    let path = format!("api/health?api-version={API_VERSION}");
    RestCall {
        method: Method::Head,
        url: format!("{}{path}", cs.server_base()),
        audience: format!("{}{path}", cs.audience_base()),
        has_body: false,
        expect: OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs() -> ConnectionString {
        "Endpoint=https://x.service.signalr.net;AccessKey=k;ServerEndpoint=https://internal:8443".parse().unwrap()
    }

    #[test]
    fn test_send_to_all_with_excluded() {
        let excluded = vec!["c 1".to_string(), "c2".to_string()];
        let c = call(&cs(), "MesChainAdminHub", &Operation::SendToAll { excluded: &excluded });
        assert_eq!(c.method, Method::Post);
        assert_eq!(
            c.url,
            "https://internal:8443/api/hubs/meschainadminhub/:send?api-version=2022-06-01&excluded=c%201&excluded=c2"
        );
        assert_eq!(c.audience, "https://x.service.signalr.net/api/hubs/meschainadminhub/:send?api-version=2022-06-01");
        assert!(c.has_body);
        assert_eq!(c.expect.success, &[202]);
    }

    #[test]
    fn test_group_paths_are_escaped() {
        let c = call(&cs(), "h", &Operation::AddConnectionToGroup { group: "marketplace:trendyol", connection: "a/b" });
        assert_eq!(
            c.url,
            "https://internal:8443/api/hubs/h/groups/marketplace%3Atrendyol/connections/a%2Fb?api-version=2022-06-01"
        );
        assert_eq!(c.expect.not_found_code, Some("Error.Connection.NotExisted"));
    }

    #[test]
    fn test_user_group_ttl_and_close_reason() {
        let c = call(&cs(), "h", &Operation::AddUserToGroup { group: "g", user: "u", ttl_secs: Some(60) });
        assert_eq!(c.method, Method::Put);
        assert!(c.url.ends_with("/api/hubs/h/users/u/groups/g?api-version=2022-06-01&ttl=60"));
        assert!(!c.audience.contains("ttl"));
        let c = call(&cs(), "h", &Operation::CloseConnection { connection: "c", reason: Some("bye now") });
        assert!(c.url.ends_with("/connections/c?api-version=2022-06-01&reason=bye%20now"));
        assert_eq!(c.expect.not_found_code, Some("Warning.Connection.NotExisted"));
    }

    #[test]
    fn test_existence_checks() {
        let c = call(&cs(), "h", &Operation::UserInGroup { group: "g", user: "u" });
        assert_eq!(c.method, Method::Head);
        assert_eq!(c.expect.not_found_code, Some("Info.User.NotInGroup"));
        let h = health(&cs());
        assert_eq!(h.url, "https://internal:8443/api/health?api-version=2022-06-01");
        assert_eq!(h.audience, "https://x.service.signalr.net/api/health?api-version=2022-06-01");
    }
}
