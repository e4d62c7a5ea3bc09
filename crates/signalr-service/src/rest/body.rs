//! `:send` request bodies (§D.2): JSON `{target, arguments}` with field names matched
//! case-insensitively (the SDK writes PascalCase, the 2022 swagger camelCase), or the SDK's
//! MessagePack map of pre-framed messages per protocol, forwarded as-is.

use bytes::Bytes;
use meschain_signalr::hub_protocol::{self, Protocol};
use serde_json::Value;

use crate::registry::Frames;

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// 400 with this message.
    Invalid(&'static str),
    /// 415.
    UnsupportedMediaType,
}

pub fn frames(content_type: Option<&str>, body: &[u8]) -> Result<Frames, BodyError> {
    let mime = content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/json" | "" => json_frames(body),
        "application/octet-stream" | "application/x-msgpack" => binary_frames(body),
        _ => Err(BodyError::UnsupportedMediaType),
    }
}

fn json_frames(body: &[u8]) -> Result<Frames, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| BodyError::Invalid("The request body is not valid JSON."))?;
    let Value::Object(obj) = value else {
        return Err(BodyError::Invalid("The request body must be a JSON object."));
    };
    let mut target = None;
    let mut arguments = Vec::new();
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("target") {
            match v {
                Value::String(s) if !s.is_empty() => target = Some(s),
                _ => return Err(BodyError::Invalid("The 'target' field must be a non-empty string.")),
            }
        } else if k.eq_ignore_ascii_case("arguments") {
            match v {
                Value::Array(a) => arguments = a,
                Value::Null => {}
                _ => return Err(BodyError::Invalid("The 'arguments' field must be an array.")),
            }
        }
    }
    let target = target.ok_or(BodyError::Invalid("The 'target' field is required."))?;
    Ok(Frames {
        json: Bytes::from(hub_protocol::invocation_frame(Protocol::Json, &target, &arguments)),
        msgpack: Bytes::from(hub_protocol::invocation_frame(Protocol::MessagePack, &target, &arguments)),
    })
}

fn binary_frames(body: &[u8]) -> Result<Frames, BodyError> {
    let bad = BodyError::Invalid("The request body must be a MessagePack map of 'json' and 'messagepack' payloads.");
    let mut reader = body;
    let Ok(rmpv::Value::Map(entries)) = rmpv::decode::read_value_with_max_depth(&mut reader, 16) else {
        return Err(bad);
    };
    let mut json = None;
    let mut msgpack = None;
    for (k, v) in entries {
        let (Some(k), rmpv::Value::Binary(b)) = (k.as_str().map(str::to_ascii_lowercase), v) else { continue };
        match k.as_str() {
            "json" => json = Some(Bytes::from(b)),
            "messagepack" => msgpack = Some(Bytes::from(b)),
            _ => {}
        }
    }
    match (json, msgpack) {
        (Some(json), Some(msgpack)) => Ok(Frames { json, msgpack }),
        _ => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_case_insensitive_fields() {
        let f = frames(Some("application/json; charset=utf-8"), br#"{"Target":"t","Arguments":[1]}"#).unwrap();
        assert_eq!(f.json, "{\"type\":1,\"target\":\"t\",\"arguments\":[1]}\x1e");
        assert_eq!(f.msgpack, &b"\x08\x95\x01\x80\xc0\xa1t\x91\x01"[..]);
        let f = frames(None, br#"{"target":"t"}"#).unwrap();
        assert_eq!(f.json, "{\"type\":1,\"target\":\"t\",\"arguments\":[]}\x1e");
    }

    #[test]
    fn test_bad_bodies() {
        for bad in
            [&b"nope"[..], b"[]", b"{}", br#"{"target":""}"#, br#"{"target":1}"#, br#"{"target":"t","arguments":5}"#]
        {
            assert!(matches!(frames(None, bad), Err(BodyError::Invalid(_))), "{bad:?}");
        }
        assert_eq!(frames(Some("text/plain"), b"x").unwrap_err(), BodyError::UnsupportedMediaType);
        assert!(frames(Some("application/x-msgpack"), b"\xc1").is_err());
    }

    #[test]
    fn test_binary_body_forwarded() {
        // {"json": bin "a", "messagepack": bin "b"}
        let body = b"\x82\xa4json\xc4\x01a\xabmessagepack\xc4\x01b";
        let f = frames(Some("application/octet-stream"), body).unwrap();
        assert_eq!((&f.json[..], &f.msgpack[..]), (&b"a"[..], &b"b"[..]));
    }
}
