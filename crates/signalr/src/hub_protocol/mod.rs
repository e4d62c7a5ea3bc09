//! SignalR hub protocol messages and their JSON and MessagePack framing (https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md).
//!
//! Two users with different needs share this module:
//! - the local service reads client frames from a growing buffer (WebSocket messages and HTTP
//!   POST bodies may split or batch frames arbitrarily), so [`next_frame`] is incremental: it
//!   returns a complete frame or "need more", and refuses a frame above a size limit as soon as
//!   its length is known, before buffering it;
//! - the deployed handler parses upstream invocation bodies (an unframed JSON object or bare
//!   MessagePack array, §E.4) with [`parse_invocation_body`] and answers with a framed
//!   Completion in the caller's protocol ([`completion_frame`]).
//!
//! Arguments are carried as `serde_json::Value` for both protocols: the service converts JSON
//! REST arguments to MessagePack for MessagePack clients (§D.2), and the handler works in JSON.
//! MessagePack `bin` values become base64 strings (what System.Text.Json does with `byte[]`).

mod json;
mod msgpack;

use std::collections::BTreeMap;

use serde_json::Value;

/// The record separator that ends every JSON frame and the handshake.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The wire protocols a client may pick in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Json,
    MessagePack,
}

impl Protocol {
    /// The protocol name as the handshake spells it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::MessagePack => "messagepack",
        }
    }

    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "json" => Some(Protocol::Json),
            "messagepack" => Some(Protocol::MessagePack),
            _ => None,
        }
    }

    /// Whether frames are binary (WebSocket binary messages; not allowed over SSE).
    pub fn is_binary(self) -> bool {
        self == Protocol::MessagePack
    }

    /// The `Content-Type` the service uses for upstream `messages` calls in this protocol (§E.4).
    pub fn upstream_content_type(self) -> &'static str {
        match self {
            Protocol::Json => "application/json",
            Protocol::MessagePack => "application/x-msgpack",
        }
    }

    /// The caller's protocol from an upstream request's `Content-Type` (parameters and case
    /// ignored); `None` for anything else, which upstream handlers answer with 415 (§E.3).
    pub fn from_upstream_content_type(content_type: &str) -> Option<Protocol> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/json") {
            Some(Protocol::Json)
        } else if mime.eq_ignore_ascii_case("application/x-msgpack") {
            Some(Protocol::MessagePack)
        } else {
            None
        }
    }
}

/// Why a frame or message was refused. Messages are short and safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("The maximum message size of {0}B was exceeded.")]
    TooLarge(usize),
    #[error("Messages over 2GB in size are not supported.")]
    BadLengthPrefix,
    #[error("Error reading JSON: {0}")]
    Json(String),
    #[error("Error reading MessagePack: {0}")]
    MessagePack(String),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> ProtocolError {
    ProtocolError::Invalid(msg.into())
}

/// An Invocation (type 1) or StreamInvocation (type 4).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invocation {
    pub headers: BTreeMap<String, String>,
    /// Present only for blocking invocations (`invoke()`), absent for `send()`.
    pub invocation_id: Option<String>,
    pub target: String,
    pub arguments: Vec<Value>,
    pub stream_ids: Vec<String>,
}

/// The outcome carried by a Completion.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionResult {
    /// No `result` and no `error` (a void method).
    Void,
    Result(Value),
    Error(String),
}

/// One hub message (§C.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Invocation(Invocation),
    StreamItem {
        invocation_id: String,
        item: Value,
    },
    Completion {
        invocation_id: String,
        result: CompletionResult,
    },
    StreamInvocation(Invocation),
    CancelInvocation {
        invocation_id: String,
    },
    Ping,
    Close {
        error: Option<String>,
        allow_reconnect: bool,
    },
    Ack {
        sequence_id: u64,
    },
    Sequence {
        sequence_id: u64,
    },
    /// A message type this version does not know. ASP.NET ignores these so that newer peers
    /// can add types; we do the same.
    Unknown(i64),
}

/// Where one complete frame sits in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpan {
    /// Start of the message body (after a MessagePack length prefix).
    pub start: usize,
    /// End of the message body (before a JSON record separator).
    pub end: usize,
    /// Bytes to drop from the front of the buffer to consume this frame.
    pub consumed: usize,
}

/// Finds the first complete frame in `buf`. `Ok(None)` means "need more bytes"; an error means
/// the stream is unusable (the connection should be closed). Frame bodies above `max_size`
/// bytes are refused as soon as that is known.
pub fn next_frame(protocol: Protocol, buf: &[u8], max_size: usize) -> Result<Option<FrameSpan>, ProtocolError> {
    match protocol {
        Protocol::Json => json::next_frame(buf, max_size),
        Protocol::MessagePack => msgpack::next_frame(buf, max_size),
    }
}

/// Parses one frame body (as located by [`next_frame`]).
pub fn parse_message(protocol: Protocol, body: &[u8]) -> Result<Message, ProtocolError> {
    match protocol {
        Protocol::Json => json::parse_message(body),
        Protocol::MessagePack => msgpack::parse_message(body),
    }
}

/// Serialises a message with its framing.
pub fn write_message(protocol: Protocol, message: &Message) -> Vec<u8> {
    match protocol {
        Protocol::Json => json::write_message(message),
        Protocol::MessagePack => msgpack::write_message(message),
    }
}

/// A framed non-blocking Invocation (no `invocationId`): what REST sends become (§C.5).
pub fn invocation_frame(protocol: Protocol, target: &str, arguments: &[Value]) -> Vec<u8> {
    let invocation = Invocation { target: target.to_string(), arguments: arguments.to_vec(), ..Invocation::default() };
    write_message(protocol, &Message::Invocation(invocation))
}

/// A framed Completion for a blocking invocation, in the caller's protocol: what the handler
/// answers upstream `messages` calls with (§E.5) and what the service writes on failures.
pub fn completion_frame(protocol: Protocol, invocation_id: &str, result: Result<Value, String>) -> Vec<u8> {
    let result = match result {
        Ok(v) => CompletionResult::Result(v),
        Err(e) => CompletionResult::Error(e),
    };
    write_message(protocol, &Message::Completion { invocation_id: invocation_id.to_string(), result })
}

/// A framed Completion with neither result nor error (upstream answered 204 or an empty 200).
pub fn empty_completion_frame(protocol: Protocol, invocation_id: &str) -> Vec<u8> {
    write_message(
        protocol,
        &Message::Completion { invocation_id: invocation_id.to_string(), result: CompletionResult::Void },
    )
}

/// A framed Ping.
pub fn ping_frame(protocol: Protocol) -> Vec<u8> {
    write_message(protocol, &Message::Ping)
}

/// A framed Close. ASP.NET writes `allowReconnect` only when true.
pub fn close_frame(protocol: Protocol, error: Option<&str>, allow_reconnect: bool) -> Vec<u8> {
    write_message(protocol, &Message::Close { error: error.map(str::to_string), allow_reconnect })
}

/// Parses an upstream `messages` body: the client's Invocation without transport framing
/// (§E.4): a JSON object, or a bare MessagePack array when the content type is
/// `application/x-msgpack`. Anything other than an Invocation is refused.
pub fn parse_invocation_body(content_type_is_msgpack: bool, body: &[u8]) -> Result<Invocation, ProtocolError> {
    let protocol = if content_type_is_msgpack { Protocol::MessagePack } else { Protocol::Json };
    match parse_message(protocol, body)? {
        Message::Invocation(inv) => Ok(inv),
        _ => Err(invalid("Expected an Invocation message.")),
    }
}

/// The client's handshake request (always JSON, §C.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    pub protocol: String,
    pub version: i64,
}

/// Finds and parses the handshake request at the front of `buf`; `Ok(None)` = need more.
/// Returns the request and how many bytes it used (frames may follow in the same buffer).
pub fn parse_handshake(buf: &[u8], max_size: usize) -> Result<Option<(HandshakeRequest, usize)>, ProtocolError> {
    let Some(span) = json::next_frame(buf, max_size)? else {
        return Ok(None);
    };
    let value: Value = serde_json::from_slice(&buf[span.start..span.end]).map_err(|e| json_error(&e))?;
    let obj = value.as_object().ok_or_else(|| invalid("Unexpected JSON Token Type. Expected a JSON Object."))?;
    let protocol = match obj.get("protocol") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid("Expected 'protocol' to be of type String.")),
        None => return Err(invalid("Missing required property 'protocol'. Message content: ")),
    };
    let version = match obj.get("version") {
        Some(v) => v.as_i64().ok_or_else(|| invalid("Expected 'version' to be of type Integer."))?,
        None => return Err(invalid("Missing required property 'version'.")),
    };
    Ok(Some((HandshakeRequest { protocol, version }, span.consumed)))
}

/// The handshake response: `{}` on success or `{"error":"…"}`, always JSON with a separator.
pub fn handshake_response(error: Option<&str>) -> Vec<u8> {
    let mut out = match error {
        None => b"{}".to_vec(),
        Some(e) => serde_json::to_vec(&serde_json::json!({ "error": e })).expect("a JSON object serialises"),
    };
    out.push(RECORD_SEPARATOR);
    out
}

pub(crate) fn json_error(e: &serde_json::Error) -> ProtocolError {
    ProtocolError::Json(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_handshake_roundtrip_and_trailing_frames() {
        let buf = b"{\"protocol\":\"messagepack\",\"version\":1}\x1e\x02\x91\x06";
        let (req, used) = parse_handshake(buf, 1024).unwrap().unwrap();
        assert_eq!(req, HandshakeRequest { protocol: "messagepack".into(), version: 1 });
        assert_eq!(&buf[used..], b"\x02\x91\x06");
        assert_eq!(parse_handshake(b"{\"protocol\":\"json\"", 1024).unwrap(), None);
        assert!(parse_handshake(b"{\"protocol\":1,\"version\":1}\x1e", 1024).is_err());
        assert!(parse_handshake(b"{\"version\":1}\x1e", 1024).is_err());
        assert!(parse_handshake(b"[]\x1e", 1024).is_err());
        assert!(parse_handshake(b"\xff\xfe\x1e", 1024).is_err());
        assert_eq!(parse_handshake(&[b' '; 100], 10).unwrap_err(), ProtocolError::TooLarge(10));
        assert_eq!(handshake_response(None), b"{}\x1e");
        assert_eq!(handshake_response(Some("bad \"x\"")), b"{\"error\":\"bad \\\"x\\\"\"}\x1e");
    }

    #[test]
    fn test_invocation_body_both_protocols() {
        let inv =
            parse_invocation_body(false, br#"{"type":1,"invocationId":"0","target":"broadcast","arguments":["hi"]}"#)
                .unwrap();
        assert_eq!(inv.invocation_id.as_deref(), Some("0"));
        assert_eq!(inv.target, "broadcast");
        assert_eq!(inv.arguments, vec![json!("hi")]);
        // [1, {}, "0", "broadcast", ["hi"]] as MessagePack, unframed.
        let body = b"\x95\x01\x80\xa10\xa9broadcast\x91\xa2hi";
        let inv2 = parse_invocation_body(true, body).unwrap();
        assert_eq!(inv, inv2);
        assert!(parse_invocation_body(false, br#"{"type":6}"#).is_err());
        assert!(parse_invocation_body(true, b"\x91\x06").is_err());
        assert!(parse_invocation_body(true, b"\xc1").is_err());
    }

    #[test]
    fn test_protocol_from_content_type() {
        assert_eq!(Protocol::from_upstream_content_type("application/json; charset=utf-8"), Some(Protocol::Json));
        assert_eq!(Protocol::from_upstream_content_type("Application/X-MsgPack"), Some(Protocol::MessagePack));
        assert_eq!(Protocol::from_upstream_content_type("text/plain"), None);
        for p in [Protocol::Json, Protocol::MessagePack] {
            assert_eq!(Protocol::from_upstream_content_type(p.upstream_content_type()), Some(p));
            assert_eq!(Protocol::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn test_completion_frames() {
        assert_eq!(
            completion_frame(Protocol::Json, "7", Ok(json!({"a":1}))),
            b"{\"type\":3,\"invocationId\":\"7\",\"result\":{\"a\":1}}\x1e"
        );
        assert_eq!(
            completion_frame(Protocol::Json, "7", Err("Invocation failed, status code 404".into())),
            b"{\"type\":3,\"invocationId\":\"7\",\"error\":\"Invocation failed, status code 404\"}\x1e"
        );
        assert_eq!(empty_completion_frame(Protocol::Json, "1"), b"{\"type\":3,\"invocationId\":\"1\"}\x1e");
        // [3, {}, "1", 2]: a 6-byte body.
        assert_eq!(empty_completion_frame(Protocol::MessagePack, "1"), b"\x06\x94\x03\x80\xa11\x02");
        // [3, {}, "1", 3, 42]
        assert_eq!(completion_frame(Protocol::MessagePack, "1", Ok(json!(42))), b"\x07\x95\x03\x80\xa11\x03\x2a");
        // [3, {}, "1", 1, "e"]
        assert_eq!(completion_frame(Protocol::MessagePack, "1", Err("e".into())), b"\x08\x95\x03\x80\xa11\x01\xa1e");
    }
}
