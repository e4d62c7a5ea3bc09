//! REST route table (§D.3) as a pure function from method + decoded path segments to an
//! operation. Done by hand rather than with the router because the service's paths contain
//! `:send`-style segments and two API generations share one prefix.

use axum::http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Health,
    SendAll,
    SendUser(String),
    SendConnection(String),
    SendGroup(String),
    CloseAll,
    CloseGroup(String),
    CloseUser(String),
    ConnectionExists(String),
    CloseConnection(String),
    RemoveConnectionFromAllGroups(String),
    GroupExists(String),
    AddConnectionToGroup { group: String, connection: String },
    RemoveConnectionFromGroup { group: String, connection: String },
    UserExists(String),
    UserInGroup { user: String, group: String },
    AddUserToGroup { user: String, group: String },
    RemoveUserFromGroup { user: String, group: String },
    RemoveUserFromAllGroups(String),
}

impl Op {
    /// The success status, which differs between v1 and 2022-06-01 for a few routes.
    pub fn success(&self, v1: bool) -> u16 {
        use Op::*;
        match self {
            SendAll | SendUser(_) | SendConnection(_) | SendGroup(_) => 202,
            CloseAll | CloseGroup(_) | CloseUser(_) => 204,
            CloseConnection(_) if v1 => 202,
            AddUserToGroup { .. } | RemoveUserFromGroup { .. } if v1 => 202,
            RemoveUserFromGroup { .. } | RemoveUserFromAllGroups(_) if !v1 => 204,
            _ => 200,
        }
    }

    pub fn is_send(&self) -> bool {
        matches!(self, Op::SendAll | Op::SendUser(_) | Op::SendConnection(_) | Op::SendGroup(_))
    }
}

/// A matched route: the (undecorated) hub from the path, the operation, and the API generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub hub: Option<String>,
    pub op: Op,
    pub v1: bool,
}

/// Matches `segments` (the path after `/api/`, percent-decoded). `None` = 404.
pub fn route(method: &Method, segments: &[String]) -> Option<Route> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let is = |m: &Method| method == m;
    let exists = is(&Method::HEAD) || is(&Method::GET);
    let (v1, rest) = match s.as_slice() {
        ["v1", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    if rest == ["health"] && (exists || v1 && is(&Method::HEAD)) {
        return Some(Route { hub: None, op: Op::Health, v1 });
    }
    let ["hubs", hub, tail @ ..] = rest else { return None };
    let o = |x: &&str| x.to_string();
    let op = if v1 {
        match tail {
            [] if is(&Method::POST) => Op::SendAll,
            ["users", u] if is(&Method::POST) => Op::SendUser(o(u)),
            ["users", u] if exists => Op::UserExists(o(u)),
            ["users", u, "groups"] if is(&Method::DELETE) => Op::RemoveUserFromAllGroups(o(u)),
            ["connections", c] if is(&Method::POST) => Op::SendConnection(o(c)),
            ["connections", c] if exists => Op::ConnectionExists(o(c)),
            ["connections", c] if is(&Method::DELETE) => Op::CloseConnection(o(c)),
            ["groups", g] if is(&Method::POST) => Op::SendGroup(o(g)),
            ["groups", g] if exists => Op::GroupExists(o(g)),
            ["groups", g, "connections", c] if is(&Method::PUT) => {
                Op::AddConnectionToGroup { group: o(g), connection: o(c) }
            }
            ["groups", g, "connections", c] if is(&Method::DELETE) => {
                Op::RemoveConnectionFromGroup { group: o(g), connection: o(c) }
            }
            ["groups", g, "users", u] if exists => Op::UserInGroup { user: o(u), group: o(g) },
            ["groups", g, "users", u] if is(&Method::PUT) => Op::AddUserToGroup { user: o(u), group: o(g) },
            ["groups", g, "users", u] if is(&Method::DELETE) => Op::RemoveUserFromGroup { user: o(u), group: o(g) },
            _ => return None,
        }
    } else {
        match tail {
            [":send"] if is(&Method::POST) => Op::SendAll,
            [":closeConnections"] if is(&Method::POST) => Op::CloseAll,
            ["users", u, ":send"] if is(&Method::POST) => Op::SendUser(o(u)),
            ["users", u, ":closeConnections"] if is(&Method::POST) => Op::CloseUser(o(u)),
            ["users", u] if exists => Op::UserExists(o(u)),
            ["users", u, "groups"] if is(&Method::DELETE) => Op::RemoveUserFromAllGroups(o(u)),
            ["users", u, "groups", g] if exists => Op::UserInGroup { user: o(u), group: o(g) },
            ["users", u, "groups", g] if is(&Method::PUT) => Op::AddUserToGroup { user: o(u), group: o(g) },
            ["users", u, "groups", g] if is(&Method::DELETE) => Op::RemoveUserFromGroup { user: o(u), group: o(g) },
            ["connections", c, ":send"] if is(&Method::POST) => Op::SendConnection(o(c)),
            ["connections", c] if exists => Op::ConnectionExists(o(c)),
            ["connections", c] if is(&Method::DELETE) => Op::CloseConnection(o(c)),
            ["connections", c, "groups"] if is(&Method::DELETE) => Op::RemoveConnectionFromAllGroups(o(c)),
            ["groups", g, ":send"] if is(&Method::POST) => Op::SendGroup(o(g)),
            ["groups", g, ":closeConnections"] if is(&Method::POST) => Op::CloseGroup(o(g)),
            ["groups", g] if exists => Op::GroupExists(o(g)),
            ["groups", g, "connections", c] if is(&Method::PUT) => {
                Op::AddConnectionToGroup { group: o(g), connection: o(c) }
            }
            ["groups", g, "connections", c] if is(&Method::DELETE) => {
                Op::RemoveConnectionFromGroup { group: o(g), connection: o(c) }
            }
            _ => return None,
        }
    };
    Some(Route { hub: Some(hub.to_string()), op, v1 })
}

/// Splits a raw path after `/api/` into percent-decoded segments (decoding after splitting, so
/// an escaped `/` stays inside its segment). `None` if a segment is not UTF-8.
pub fn segments(raw_path: &str) -> Option<Vec<String>> {
    let rest = raw_path.strip_prefix("/api/")?;
    rest.split('/')
        .map(|seg| percent_encoding::percent_decode_str(seg).decode_utf8().ok().map(|s| s.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Option<Route> {
        route(&method, &segments(path).unwrap())
    }

    #[test]
    fn test_2022_routes() {
        let send = r(Method::POST, "/api/hubs/chat/:send").unwrap();
        assert_eq!((send.hub.as_deref(), &send.op, send.v1), (Some("chat"), &Op::SendAll, false));
        assert_eq!(r(Method::POST, "/api/hubs/chat/users/a%2Fb/:send").unwrap().op, Op::SendUser("a/b".into()));
        assert_eq!(
            r(Method::PUT, "/api/hubs/chat/users/u/groups/g").unwrap().op,
            Op::AddUserToGroup { user: "u".into(), group: "g".into() }
        );
        assert_eq!(r(Method::DELETE, "/api/hubs/chat/users/u/groups").unwrap().op.success(false), 204);
        assert_eq!(r(Method::HEAD, "/api/hubs/chat/connections/c").unwrap().op, Op::ConnectionExists("c".into()));
        assert_eq!(r(Method::DELETE, "/api/hubs/chat/connections/c").unwrap().op.success(false), 200);
        assert_eq!(r(Method::HEAD, "/api/health").unwrap().op, Op::Health);
        assert_eq!(r(Method::POST, "/api/hubs/chat/:closeConnections").unwrap().op.success(false), 204);
        assert!(r(Method::GET, "/api/hubs/chat/:send").is_none());
        assert!(r(Method::POST, "/api/hubs/chat/:nope").is_none());
        assert!(r(Method::POST, "/api/hubs").is_none());
    }

    #[test]
    fn test_v1_routes() {
        let send = r(Method::POST, "/api/v1/hubs/chat").unwrap();
        assert_eq!((&send.op, send.v1, send.op.success(true)), (&Op::SendAll, true, 202));
        assert_eq!(r(Method::DELETE, "/api/v1/hubs/chat/connections/c").unwrap().op.success(true), 202);
        assert_eq!(
            r(Method::GET, "/api/v1/hubs/chat/groups/g/users/u").unwrap().op,
            Op::UserInGroup { user: "u".into(), group: "g".into() }
        );
        assert_eq!(r(Method::PUT, "/api/v1/hubs/chat/groups/g/users/u").unwrap().op.success(true), 202);
        assert_eq!(r(Method::DELETE, "/api/v1/hubs/chat/users/u/groups").unwrap().op.success(true), 200);
        assert!(r(Method::HEAD, "/api/v1/health").is_some());
        assert!(r(Method::POST, "/api/v1/hubs/chat/:send").is_none());
    }

    #[test]
    fn test_segments_refuse_bad_utf8() {
        assert!(segments("/api/hubs/%FF").is_none());
        assert!(segments("/other").is_none());
    }
}
