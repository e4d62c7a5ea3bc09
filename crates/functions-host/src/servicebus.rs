//! Sending to Azure Service Bus over its REST API (`POST https://{ns}.servicebus.windows.net/{queue}/messages`),
//! for `meschain enqueue --namespace`. The crates.io Service Bus client is unofficial and pulls a
//! second `azure_core`, and sending one message is a single HTTPS request, so it is done here.
//!
//! Auth: a SAS token computed exactly as documented —
//! `SharedAccessSignature sr={enc(uri)}&sig={enc(base64(HMAC-SHA256(key, enc(uri) + "\n" + expiry)))}&se={expiry}&skn={keyName}`
//! with `enc` = JavaScript's `encodeURIComponent` (the documentation's Node sample) and the key
//! used as UTF-8 text, not base64-decoded — or a bearer token obtained elsewhere (Entra ID).

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

/// Characters `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

pub fn encode_uri_component(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

fn signature(key: &str, encoded_uri: &str, expiry: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{encoded_uri}\n{expiry}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The SAS token for `resource_uri`, valid until `expiry` (Unix seconds).
pub fn sas_token(resource_uri: &str, key_name: &str, key: &str, expiry: u64) -> String {
    let sr = encode_uri_component(resource_uri);
    let sig = encode_uri_component(&signature(key, &sr, expiry));
    format!("SharedAccessSignature sr={sr}&sig={sig}&se={expiry}&skn={key_name}")
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    #[error("not a SharedAccessSignature")]
    Malformed,
    #[error("unknown key name")]
    UnknownKey,
    #[error("signature mismatch")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is for another resource")]
    WrongResource,
}

/// Verifies a SAS token as Service Bus does (used by tests' stand-in service and documents the
/// contract): signature over the `sr` value as sent, not expired, resource is a prefix of `uri`.
pub fn verify_sas(token: &str, uri: &str, key_name: &str, key: &str, now: u64) -> Result<(), SasError> {
    let rest = token.strip_prefix("SharedAccessSignature ").ok_or(SasError::Malformed)?;
    let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
    for pair in rest.split('&') {
        let (k, v) = pair.split_once('=').ok_or(SasError::Malformed)?;
        match k {
            "sr" => sr = Some(v),
            "sig" => sig = Some(v),
            "se" => se = Some(v),
            "skn" => skn = Some(v),
            _ => {}
        }
    }
    let (sr, sig, se, skn) = (
        sr.ok_or(SasError::Malformed)?,
        sig.ok_or(SasError::Malformed)?,
        se.ok_or(SasError::Malformed)?,
        skn.ok_or(SasError::Malformed)?,
    );
    let expiry: u64 = se.parse().map_err(|_| SasError::Malformed)?;
    if skn != key_name {
        return Err(SasError::UnknownKey);
    }
    let sent_sig = percent_decode_str(sig).decode_utf8().map_err(|_| SasError::Malformed)?;
    let expected = signature(key, sr, expiry);
    let equal = sent_sig.len() == expected.len()
        && sent_sig.bytes().zip(expected.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
    if !equal {
        return Err(SasError::BadSignature);
    }
    if expiry < now {
        return Err(SasError::Expired);
    }
    let resource = percent_decode_str(sr).decode_utf8().map_err(|_| SasError::Malformed)?.to_ascii_lowercase();
    if !uri.to_ascii_lowercase().starts_with(resource.trim_end_matches('/')) {
        return Err(SasError::WrongResource);
    }
    Ok(())
}

/// How to authenticate to Service Bus.
#[derive(Clone)]
pub enum Auth {
    Sas { key_name: String, key: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Sas { key_name, .. } => write!(f, "Sas {{ key_name: {key_name:?}, key: <redacted> }}"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Parts of a Service Bus connection string.
#[derive(Clone)]
pub struct ConnectionString {
    /// e.g. `contoso.servicebus.windows.net`
    pub namespace_host: String,
    pub key_name: String,
    pub key: String,
    pub entity_path: Option<String>,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("namespace_host", &self.namespace_host)
            .field("key_name", &self.key_name)
            .finish()
    }
}

impl ConnectionString {
    pub fn parse(s: &str) -> Result<ConnectionString, String> {
        let (mut endpoint, mut name, mut key, mut entity) = (None, None, None, None);
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("connection string part without '=': {:?}", k_only(part)))?;
            match k.to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(v.to_string()),
                "sharedaccesskeyname" => name = Some(v.to_string()),
                "sharedaccesskey" => key = Some(v.to_string()),
                "entitypath" => entity = Some(v.to_string()),
                _ => {}
            }
        }
        let endpoint = endpoint.ok_or("connection string has no Endpoint")?;
        let host = endpoint
            .split("://")
            .nth(1)
            .ok_or("Endpoint must look like sb://<namespace>.servicebus.windows.net/")?
            .trim_end_matches('/')
            .to_string();
        Ok(ConnectionString {
            namespace_host: host,
            key_name: name.ok_or("connection string has no SharedAccessKeyName")?,
            key: key.ok_or("connection string has no SharedAccessKey")?,
            entity_path: entity,
        })
    }
}

fn k_only(part: &str) -> &str {
    part.split('=').next().unwrap_or("")
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("request failed: {0}")]
    Transport(String),
    #[error("Service Bus answered HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
}

/// `POST {queue_url}/messages`; Service Bus answers 201 Created.
pub async fn send_message(
    client: &reqwest::Client,
    queue_url: &str,
    auth: &Auth,
    body: Vec<u8>,
    content_type: &str,
    broker_properties: &serde_json::Value,
    now: u64,
) -> Result<(), SendError> {
    let authorization = match auth {
        Auth::Sas { key_name, key } => sas_token(queue_url, key_name, key, now + 3600),
        Auth::Bearer(t) => format!("Bearer {t}"),
    };
    let resp = client
        .post(format!("{}/messages", queue_url.trim_end_matches('/')))
        .header("Authorization", authorization)
        .header("Content-Type", content_type)
        .header("BrokerProperties", broker_properties.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Transport(e.to_string()))?;
    let status = resp.status().as_u16();
    if status == 201 {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(SendError::Rejected { status, body: body.chars().take(500).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently (Python: urllib.parse.quote(uri, safe="-_.!~*'()"), hmac, base64).
    const VECTOR: &str = "SharedAccessSignature sr=https%3A%2F%2Fcontoso.servicebus.windows.net%2Forders&sig=olZL07n3gj5Ec9ZfOyFd47xEJ0E%2FKGzwdEUZANCKcqU%3D&se=1700000000&skn=RootManageSharedAccessKey";

    #[test]
    fn test_sas_known_vector() {
        let t = sas_token(
            "https://contoso.servicebus.windows.net/orders",
            "RootManageSharedAccessKey",
            "abc123",
            1_700_000_000,
        );
        assert_eq!(t, VECTOR);
    }

    #[test]
    fn test_verify() {
        let uri = "https://contoso.servicebus.windows.net/orders";
        assert_eq!(verify_sas(VECTOR, uri, "RootManageSharedAccessKey", "abc123", 1_600_000_000), Ok(()));
        assert_eq!(
            verify_sas(VECTOR, uri, "RootManageSharedAccessKey", "wrong", 1_600_000_000),
            Err(SasError::BadSignature)
        );
        assert_eq!(verify_sas(VECTOR, uri, "Other", "abc123", 1_600_000_000), Err(SasError::UnknownKey));
        assert_eq!(
            verify_sas(VECTOR, uri, "RootManageSharedAccessKey", "abc123", 1_800_000_000),
            Err(SasError::Expired)
        );
        assert_eq!(
            verify_sas(
                VECTOR,
                "https://contoso.servicebus.windows.net/other",
                "RootManageSharedAccessKey",
                "abc123",
                0
            ),
            Err(SasError::WrongResource)
        );
        assert_eq!(verify_sas("Bearer x", uri, "a", "b", 0), Err(SasError::Malformed));
    }

    #[test]
    fn test_connection_string() {
        let c = ConnectionString::parse(
            "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cr3t;EntityPath=orders",
        )
        .unwrap();
        assert_eq!(c.namespace_host, "contoso.servicebus.windows.net");
        assert_eq!(c.entity_path.as_deref(), Some("orders"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(ConnectionString::parse("Endpoint=sb://x/").is_err());
    }
}
