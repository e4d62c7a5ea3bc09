//! Validation of a SignalR upstream request (https://learn.microsoft.com/azure/azure-signalr/concept-upstream), before anything acts on it.
//!
//! Order and status codes follow the Functions SignalR extension, which browsers' tooling and
//! the service's retry behaviour are used to: 415 for a content type other than JSON or
//! MessagePack, 400 for missing `X-ASRS-*` headers, 401 when no signature matches any of our
//! access keys. The caller's identity is read only here, and only from the service's headers:
//! `X-ASRS-User-Id` and the role claims of `X-ASRS-User-Claims`, which the service copied from
//! the token we minted in `negotiate`.

use bytes::Bytes;
use http::StatusCode;
use meschain_signalr::AccessKey;
use meschain_signalr::hub_protocol::Protocol;
use meschain_signalr::upstream::{self, parse_claims};

use meschain_functions_protocol::HttpRequest;
use meschain_secrets::{Derived, Secrets, Snapshot};

use crate::hubs::Hub;

/// Claim types that carry roles: our tokens use `role`; the .NET long form appears when a
/// principal was mapped by ASP.NET; `roles` is the OAuth/Entra spelling.
const ROLE_CLAIM_TYPES: [&str; 3] = ["role", "roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"];

/// Longest header value we look at; the service's limit for client-supplied data is far below.
const MAX_HEADER_LEN: usize = 16 * 1024;

/// The access keys upstream signatures are checked with: the primary's, then the
/// secondary's, each fixed or following a Key Vault rotation (then the key it replaced is
/// accepted too while the overlap lasts).
pub struct UpstreamKeys {
    /// Primary, then secondary; a key set as is never rotates ([`Derived::fixed`]).
    keys: Vec<Derived<AccessKey>>,
    /// Asked for an early read when a signature matches none of the keys.
    secrets: Secrets,
}

/// The keys accepted at one moment, read without copying a key (see [`Derived::snapshot`]).
pub struct AcceptedKeys(Vec<Snapshot<AccessKey>>);

impl AcceptedKeys {
    /// In order: each instance key, then its previous value while a rotation's overlap lasts.
    pub fn iter(&self) -> impl Iterator<Item = &AccessKey> {
        self.0.iter().flat_map(Snapshot::accepted)
    }
}

impl UpstreamKeys {
    pub fn new(keys: Vec<Derived<AccessKey>>, secrets: Secrets) -> Self {
        UpstreamKeys { keys, secrets }
    }

    /// Keys that never rotate.
    pub fn fixed(keys: impl IntoIterator<Item = AccessKey>) -> Self {
        Self::new(keys.into_iter().map(Derived::fixed).collect(), Secrets::empty())
    }

    /// The keys accepted now.
    pub fn accepted(&self) -> AcceptedKeys {
        AcceptedKeys(self.keys.iter().map(Derived::snapshot).collect())
    }

    /// After a signature matched no key: the service may hold a newer one, so read Key Vault
    /// early (at most once a minute). Whether a read was started.
    pub fn signature_failed(&self) -> bool {
        self.secrets.request_early_refresh()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Connections,
    Messages,
}

/// A validated upstream request.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub connection_id: String,
    pub hub: Hub,
    pub category: Category,
    pub event: String,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
    pub protocol: Protocol,
    pub body: Bytes,
}

/// Why an upstream request was refused; its HTTP status is [`Rejection::status`], and
/// `connection_events::UpstreamError` turns it into the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("content type must be application/json or application/x-msgpack")]
    UnsupportedMediaType,
    #[error("missing or invalid header {0}")]
    MissingHeader(&'static str),
    #[error("signature does not match any access key")]
    BadSignature,
    #[error("no such hub")]
    UnknownHub,
    #[error("category must be connections or messages")]
    UnknownCategory,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::MissingHeader(_) | Rejection::UnknownCategory => StatusCode::BAD_REQUEST,
            Rejection::BadSignature => StatusCode::UNAUTHORIZED,
            Rejection::UnknownHub => StatusCode::NOT_FOUND,
        }
    }
}

fn header<'a>(req: &'a HttpRequest, name: &'static str) -> Result<&'a str, Rejection> {
    req.header(name).filter(|v| !v.trim().is_empty() && v.len() <= MAX_HEADER_LEN).ok_or(Rejection::MissingHeader(name))
}

/// Validates `req` against `keys` (primary and secondary).
pub fn validate(req: &HttpRequest, keys: &AcceptedKeys) -> Result<UpstreamRequest, Rejection> {
    let protocol = Protocol::from_upstream_content_type(req.header("content-type").unwrap_or(""))
        .ok_or(Rejection::UnsupportedMediaType)?;
    let connection_id = header(req, upstream::HEADER_CONNECTION_ID)?;
    let hub = header(req, upstream::HEADER_HUB)?;
    let category = header(req, upstream::HEADER_CATEGORY)?;
    let event = header(req, upstream::HEADER_EVENT)?;
    let signature = header(req, upstream::HEADER_SIGNATURE).map_err(|_| Rejection::BadSignature)?;
    if !upstream::verify(connection_id, signature, keys.iter()) {
        return Err(Rejection::BadSignature);
    }
    let hub = Hub::from_name(hub).ok_or(Rejection::UnknownHub)?;
    let category = if category.eq_ignore_ascii_case("connections") {
        Category::Connections
    } else if category.eq_ignore_ascii_case("messages") {
        Category::Messages
    } else {
        return Err(Rejection::UnknownCategory);
    };
    let user_id = req
        .header(upstream::HEADER_USER_ID)
        .map(str::trim)
        .filter(|u| !u.is_empty() && u.len() <= 1024)
        .map(str::to_string);
    let roles = req
        .header(upstream::HEADER_USER_CLAIMS)
        .filter(|c| c.len() <= MAX_HEADER_LEN)
        .map(|c| {
            parse_claims(c)
                .into_iter()
                .filter(|(t, _)| ROLE_CLAIM_TYPES.iter().any(|r| r.eq_ignore_ascii_case(t)))
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default();
    Ok(UpstreamRequest {
        connection_id: connection_id.to_string(),
        hub,
        category,
        event: event.to_string(),
        user_id,
        roles,
        protocol,
        body: req.body.clone(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};
    use meschain_signalr::upstream::sign;

    pub(crate) fn keys() -> Vec<AccessKey> {
        vec![AccessKey::new("primary"), AccessKey::new("secondary")]
    }

    /// [`keys`] as the handler reads them.
    fn accepted() -> AcceptedKeys {
        UpstreamKeys::fixed(keys()).accepted()
    }

    pub(crate) fn request(headers: &[(&'static str, &str)], body: &[u8]) -> HttpRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        HttpRequest { method: Method::POST, query: vec![], headers: map, body: Bytes::copy_from_slice(body) }
    }

    pub(crate) fn signed(
        connection: &str,
        hub: &str,
        category: &str,
        event: &str,
        claims: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".into()),
            ("x-asrs-connection-id", connection.into()),
            ("x-asrs-hub", hub.into()),
            ("x-asrs-category", category.into()),
            ("x-asrs-event", event.into()),
            ("x-asrs-signature", sign(connection, &keys())),
            ("x-asrs-user-id", "alice".into()),
            ("x-asrs-user-claims", claims.into()),
        ]
    }

    fn as_refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        h.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn test_valid_request_and_identity() {
        let h = signed(
            "c1",
            "meschainadminhub",
            "messages",
            "JoinAdminGroup",
            "asrs.s.uid: alice, role: admin, role: super_admin, name: Doe, Jane",
        );
        let r = validate(&request(&as_refs(&h), b"{}"), &accepted()).unwrap();
        assert_eq!(r.hub, Hub::Admin);
        assert_eq!(r.category, Category::Messages);
        assert_eq!(r.user_id.as_deref(), Some("alice"));
        assert_eq!(r.roles, vec!["admin", "super_admin"]);
        assert_eq!(r.protocol, Protocol::Json);
    }

    #[test]
    fn test_signed_with_secondary_only() {
        let mut h = signed("c1", "meschainadminhub", "connections", "connected", "");
        h[5].1 = sign("c1", &[AccessKey::new("secondary")]);
        assert!(validate(&request(&as_refs(&h), b"{}"), &accepted()).is_ok());
    }

    #[test]
    fn test_rejections_in_order() {
        let good = signed("c1", "meschainadminhub", "connections", "connected", "");
        let with = |name: &str, value: Option<&str>| {
            let mut h: Vec<(&'static str, String)> = good.iter().filter(|(k, _)| *k != name).cloned().collect();
            if let Some(v) = value {
                let k = good.iter().find(|(k, _)| *k == name).unwrap().0;
                h.push((k, v.to_string()));
            }
            validate(&request(&as_refs(&h), b"{}"), &accepted()).unwrap_err()
        };
        assert_eq!(with("content-type", Some("text/plain")), Rejection::UnsupportedMediaType);
        assert_eq!(with("content-type", None), Rejection::UnsupportedMediaType);
        assert_eq!(with("x-asrs-hub", None), Rejection::MissingHeader("x-asrs-hub"));
        assert_eq!(with("x-asrs-connection-id", Some(" ")), Rejection::MissingHeader("x-asrs-connection-id"));
        assert_eq!(with("x-asrs-signature", None), Rejection::BadSignature);
        assert_eq!(
            with("x-asrs-signature", Some(&sign("c2", &keys()))),
            Rejection::BadSignature,
            "tampered connection id"
        );
        assert_eq!(with("x-asrs-signature", Some(&sign("c1", &[AccessKey::new("old")]))), Rejection::BadSignature);
        assert_eq!(with("x-asrs-hub", Some("chat")), Rejection::UnknownHub);
        assert_eq!(with("x-asrs-category", Some("other")), Rejection::UnknownCategory);
        // A tampered id with a valid signature for the original id.
        assert_eq!(with("x-asrs-connection-id", Some("c1x")), Rejection::BadSignature);
    }

    #[test]
    fn test_msgpack_content_type_and_parameters() {
        let mut h = signed("c1", "MesChainDashboardHub", "messages", "X", "");
        h[0].1 = "application/x-msgpack".into();
        assert_eq!(validate(&request(&as_refs(&h), b""), &accepted()).unwrap().protocol, Protocol::MessagePack);
        h[0].1 = "Application/JSON; charset=utf-8".into();
        assert_eq!(validate(&request(&as_refs(&h), b""), &accepted()).unwrap().protocol, Protocol::Json);
    }

    #[test]
    fn test_role_claim_spellings() {
        let h = signed(
            "c1",
            "meschainadminhub",
            "messages",
            "x",
            "roles: marketplace_manager, http://schemas.microsoft.com/ws/2008/06/identity/claims/role: admin, rolex: no",
        );
        let r = validate(&request(&as_refs(&h), b""), &accepted()).unwrap();
        assert_eq!(r.roles, vec!["marketplace_manager", "admin"]);
    }
}
