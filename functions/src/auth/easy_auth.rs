//! App Service Authentication ("Easy Auth") principals.
//!
//! When the platform's authentication runs in front of the app, it strips any
//! `X-MS-CLIENT-PRINCIPAL*` headers the caller sent and injects its own after verifying the
//! caller. Without it (locally under `func start`, or a plan where it is off) the same
//! headers are plain caller input, which is why they are read only when the configuration
//! says the platform is in front; otherwise [`super::Authenticator`] never looks at them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::HeaderMap;
use serde::Deserialize;

use super::{AuthError, Identity, IdentitySource};

pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal";
pub const PRINCIPAL_ID_HEADER: &str = "x-ms-client-principal-id";

/// The platform's principals are small; a cap bounds decoding of anything else.
const MAX_PRINCIPAL_BYTES: usize = 16 * 1024;

const NAME_IDENTIFIER: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier";

#[derive(Deserialize)]
struct Principal {
    #[serde(default)]
    claims: Vec<Claim>,
    #[serde(default)]
    role_typ: Option<String>,
}

#[derive(Deserialize)]
struct Claim {
    typ: String,
    val: String,
}

/// The identity the platform vouches for, or `None` when it sent no principal (the caller
/// is then authenticated some other way or not at all). Only call this when trusted.
pub fn trusted_identity(headers: &HeaderMap) -> Result<Option<Identity>, AuthError> {
    let id_header = single(headers, PRINCIPAL_ID_HEADER)?;
    let principal = match single(headers, PRINCIPAL_HEADER)? {
        Some(encoded) => Some(decode(encoded)?),
        None => None,
    };
    if id_header.is_none() && principal.is_none() {
        return Ok(None);
    }
    let principal = principal.unwrap_or(Principal { claims: Vec::new(), role_typ: None });
    let user_id = match id_header {
        Some(id) => id.to_owned(),
        None => principal
            .claims
            .iter()
            .find(|c| c.typ == NAME_IDENTIFIER)
            .or_else(|| principal.claims.iter().find(|c| c.typ == "sub"))
            .map(|c| c.val.clone())
            .unwrap_or_default(),
    };
    if user_id.trim().is_empty() {
        return Err(AuthError::NoUserId);
    }
    let role_typ = principal.role_typ.as_deref();
    let mut roles: Vec<String> = Vec::new();
    for claim in principal.claims {
        let is_role = Some(claim.typ.as_str()) == role_typ || claim.typ == "roles" || claim.typ == "role";
        if is_role && !claim.val.is_empty() && !roles.contains(&claim.val) {
            roles.push(claim.val);
        }
    }
    Ok(Some(Identity { user_id, roles, source: IdentitySource::EasyAuth }))
}

/// A header that must appear at most once and be valid UTF-8; two copies mean someone
/// other than the platform is talking.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() || value.len() > MAX_PRINCIPAL_BYTES {
        return Err(AuthError::Malformed);
    }
    value.to_str().map(Some).map_err(|_| AuthError::Malformed)
}

fn decode(encoded: &str) -> Result<Principal, AuthError> {
    let encoded = encoded.trim();
    let json =
        STANDARD.decode(encoded).or_else(|_| STANDARD_NO_PAD.decode(encoded)).map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;

    const ROLE_URI: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";

    fn principal(value: serde_json::Value) -> String {
        STANDARD.encode(serde_json::to_vec(&value).unwrap())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn test_principal_with_role_typ_and_name_identifier() {
        let p = principal(json!({
            "auth_typ": "aad",
            "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "role_typ": ROLE_URI,
            "claims": [
                {"typ": NAME_IDENTIFIER, "val": "user-42"},
                {"typ": ROLE_URI, "val": "admin"},
                {"typ": "roles", "val": "marketplace_manager"},
                {"typ": "role", "val": "admin"},
                {"typ": "groups", "val": "super_admin"}
            ]
        }));
        let id = trusted_identity(&headers(&[(PRINCIPAL_HEADER, &p)])).unwrap().unwrap();
        assert_eq!(id.user_id, "user-42");
        assert_eq!(id.roles, ["admin", "marketplace_manager"]);
        assert_eq!(id.source, IdentitySource::EasyAuth);
    }

    #[test]
    fn test_principal_id_header_wins() {
        let p = principal(json!({"claims": [{"typ": NAME_IDENTIFIER, "val": "from-claim"}]}));
        let h = headers(&[(PRINCIPAL_HEADER, &p), (PRINCIPAL_ID_HEADER, "from-header")]);
        assert_eq!(trusted_identity(&h).unwrap().unwrap().user_id, "from-header");
        let h = headers(&[(PRINCIPAL_ID_HEADER, "only-id")]);
        let id = trusted_identity(&h).unwrap().unwrap();
        assert_eq!((id.user_id.as_str(), id.roles.len()), ("only-id", 0));
    }

    #[test]
    fn test_no_principal_is_none() {
        assert!(trusted_identity(&headers(&[("x-user-id", "mallory")])).unwrap().is_none());
    }

    #[test]
    fn test_principal_without_user_id() {
        let p = principal(json!({"claims": [{"typ": "roles", "val": "admin"}]}));
        assert_eq!(trusted_identity(&headers(&[(PRINCIPAL_HEADER, &p)])).err(), Some(AuthError::NoUserId));
    }

    #[test]
    fn test_garbage_principal_is_malformed() {
        for bad in ["%%%", "bm90IGpzb24=", &STANDARD.encode(b"{\"claims\": 5}")] {
            assert_eq!(trusted_identity(&headers(&[(PRINCIPAL_HEADER, bad)])).err(), Some(AuthError::Malformed));
        }
        let p = principal(json!({"claims": [{"typ": NAME_IDENTIFIER, "val": "a"}]}));
        let twice = headers(&[(PRINCIPAL_HEADER, &p), (PRINCIPAL_HEADER, &p)]);
        assert_eq!(trusted_identity(&twice).err(), Some(AuthError::Malformed));
        let mut h = HeaderMap::new();
        h.insert(PRINCIPAL_ID_HEADER, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(trusted_identity(&h).err(), Some(AuthError::Malformed));
    }
}
