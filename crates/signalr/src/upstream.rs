//! The serverless upstream's authentication and identity headers (https://learn.microsoft.com/azure/azure-signalr/concept-upstream).
//!
//! `X-ASRS-Signature` is `sha256=HEX(HMAC-SHA256(UTF-8(access key), UTF-8(connection id)))`,
//! one entry per access key, comma-joined. `X-ASRS-User-Claims` is .NET's
//! `Claim.ToString()` (`"type: value"`) joined with `", "`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::AccessKey;

pub const HEADER_CONNECTION_ID: &str = "x-asrs-connection-id";
pub const HEADER_HUB: &str = "x-asrs-hub";
pub const HEADER_CATEGORY: &str = "x-asrs-category";
pub const HEADER_EVENT: &str = "x-asrs-event";
pub const HEADER_SIGNATURE: &str = "x-asrs-signature";
pub const HEADER_USER_ID: &str = "x-asrs-user-id";
pub const HEADER_USER_CLAIMS: &str = "x-asrs-user-claims";
pub const HEADER_CLIENT_QUERY: &str = "x-asrs-client-query";

fn mac(key: &AccessKey, connection_id: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(connection_id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The `X-ASRS-Signature` value for `connection_id`: one `sha256=HEX` per key, no spaces,
/// upper-case hex as the service and the Functions extension write it.
pub fn sign(connection_id: &str, keys: &[AccessKey]) -> String {
    keys.iter().map(|k| format!("sha256={}", hex::encode_upper(mac(k, connection_id)))).collect::<Vec<_>>().join(",")
}

/// Whether any entry of `header` is a valid signature of `connection_id` under any of `keys`.
/// Entries are trimmed, the `sha256=` prefix is case-insensitive, hex of either case is
/// accepted, and the comparison is constant-time.
pub fn verify<'k>(connection_id: &str, header: &str, keys: impl IntoIterator<Item = &'k AccessKey>) -> bool {
    let expected: Vec<[u8; 32]> = keys.into_iter().map(|k| mac(k, connection_id)).collect();
    let mut ok = false;
    for entry in header.split(',') {
        let entry = entry.trim();
        let Some(prefix) = entry.get(..7) else { continue };
        if !prefix.eq_ignore_ascii_case("sha256=") {
            continue;
        }
        let mut presented = [0u8; 32];
        if hex::decode_to_slice(&entry[7..], &mut presented).is_err() {
            continue;
        }
        for e in &expected {
            // Keep looping after a match so timing does not reveal which entry matched.
            ok |= bool::from(e.ct_eq(&presented));
        }
    }
    ok
}

/// Formats claims as `X-ASRS-User-Claims`.
pub fn format_claims<'a>(claims: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    claims.into_iter().map(|(t, v)| format!("{t}: {v}")).collect::<Vec<_>>().join(", ")
}

/// Parses `X-ASRS-User-Claims` into `(type, value)` pairs, keeping repeated types.
///
/// The format is ambiguous when a value contains `", "`. A segment starts a new claim only if
/// it looks like `type: value` with a type free of whitespace and commas; any other segment is
/// part of the previous value. So `note: a, b` parses as one claim with value `a, b`, while a
/// value containing `", x: y"` cannot be told apart from two claims (nothing can: the service
/// does not escape it).
pub fn parse_claims(header: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for segment in header.split(", ") {
        match segment.split_once(": ") {
            Some((t, v)) if !t.is_empty() && !t.contains(|c: char| c.is_whitespace() || c == ',') => {
                out.push((t.to_string(), v.to_string()));
            }
            _ => match out.last_mut() {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(segment);
                }
                None if segment.trim().is_empty() => {}
                // A leading fragment with no type has no claim to belong to: drop it.
                None => {}
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<AccessKey> {
        vec![AccessKey::new("primary-key"), AccessKey::new("secondary-key")]
    }

    #[test]
    fn test_known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC-style vector.
        let s = sign("The quick brown fox jumps over the lazy dog", &[AccessKey::new("key")]);
        assert_eq!(s, "sha256=F7BC83F430538424B13298E6AA6FB143EF4D59A14946175997479DBC2D1A3CD8");
    }

    #[test]
    fn test_two_keys_and_rotation() {
        let header = sign("conn1", &keys());
        assert_eq!(header.matches("sha256=").count(), 2);
        assert!(!header.contains(' '));
        assert!(verify("conn1", &header, &keys()));
        // After rotation the app may know only the new secondary key.
        assert!(verify("conn1", &header, &[AccessKey::new("secondary-key")]));
        assert!(!verify("conn1", &header, &[AccessKey::new("rotated-away")]));
    }

    #[test]
    fn test_tampered_id_spaces_and_case() {
        let header = sign("conn1", &keys());
        assert!(!verify("conn2", &header, &keys()));
        let spaced = header.replace(',', " , ");
        assert!(verify("conn1", &spaced, &keys()));
        let lower = header.to_lowercase();
        assert!(verify("conn1", &lower, &keys()));
        let upper_prefix = header.replace("sha256=", "SHA256=");
        assert!(verify("conn1", &upper_prefix, &keys()));
    }

    #[test]
    fn test_garbage_signatures() {
        for h in ["", ",", "sha256=", "sha256=zz", "md5=00", "sha256=ab", "é", "sha256=é€", &"a".repeat(10_000)] {
            assert!(!verify("conn1", h, &keys()), "{h:?}");
        }
        assert!(!verify("conn1", &sign("conn1", &keys()), &[]));
    }

    #[test]
    fn test_claims_roundtrip_with_repeats() {
        let h = format_claims([("asrs.s.uid", "u1"), ("role", "admin"), ("role", "super_admin")]);
        assert_eq!(h, "asrs.s.uid: u1, role: admin, role: super_admin");
        assert_eq!(
            parse_claims(&h),
            vec![
                ("asrs.s.uid".into(), "u1".into()),
                ("role".into(), "admin".into()),
                ("role".into(), "super_admin".into())
            ]
        );
    }

    #[test]
    fn test_claims_with_commas_and_uris() {
        let h =
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier: u1, name: Doe, Jane, role: admin";
        assert_eq!(
            parse_claims(h),
            vec![
                ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier".into(), "u1".into()),
                ("name".into(), "Doe, Jane".into()),
                ("role".into(), "admin".into())
            ]
        );
        assert!(parse_claims("").is_empty());
        assert!(parse_claims("no separator here").is_empty());
    }
}
