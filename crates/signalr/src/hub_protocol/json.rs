//! The JSON hub protocol: one JSON object per frame, each ended by 0x1E.
//!
//! Writing is done by hand (not through a derived struct) because the field order, the omitted
//! fields and the exact bytes are part of what tests pin down, and because it is on the
//! broadcast hot path where a `Value` tree per message would be wasted work.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{CompletionResult, FrameSpan, Invocation, Message, ProtocolError, RECORD_SEPARATOR, invalid, json_error};

pub(super) fn next_frame(buf: &[u8], max_size: usize) -> Result<Option<FrameSpan>, ProtocolError> {
    match buf.iter().position(|&b| b == RECORD_SEPARATOR) {
        Some(end) if end > max_size => Err(ProtocolError::TooLarge(max_size)),
        Some(end) => Ok(Some(FrameSpan { start: 0, end, consumed: end + 1 })),
        None if buf.len() > max_size => Err(ProtocolError::TooLarge(max_size)),
        None => Ok(None),
    }
}

fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ProtocolError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("Expected '{name}' to be of type String."))),
    }
}

fn required_string(obj: &Map<String, Value>, name: &str) -> Result<String, ProtocolError> {
    string_field(obj, name)?.ok_or_else(|| invalid(format!("Missing required property '{name}'.")))
}

fn headers(obj: &Map<String, Value>) -> Result<BTreeMap<String, String>, ProtocolError> {
    match obj.get("headers") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(invalid("Expected header value to be of type String.")),
            })
            .collect(),
        Some(_) => Err(invalid("Expected 'headers' to be of type Object.")),
    }
}

fn invocation(obj: &Map<String, Value>, id_required: bool) -> Result<Invocation, ProtocolError> {
    let invocation_id = string_field(obj, "invocationId")?;
    if id_required && invocation_id.is_none() {
        return Err(invalid("Missing required property 'invocationId'."));
    }
    let target = required_string(obj, "target")?;
    let arguments = match obj.get("arguments") {
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(invalid("Expected 'arguments' to be of type Array.")),
        None => return Err(invalid("Missing required property 'arguments'.")),
    };
    let stream_ids = match obj.get("streamIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid("Expected stream id to be a String.")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("Expected 'streamIds' to be of type Array.")),
    };
    Ok(Invocation { headers: headers(obj)?, invocation_id, target, arguments, stream_ids })
}

pub(super) fn parse_message(body: &[u8]) -> Result<Message, ProtocolError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let Value::Object(obj) = value else {
        return Err(invalid("Unexpected JSON Token Type. Expected a JSON Object."));
    };
    let kind = match obj.get("type") {
        Some(v) => v.as_i64().ok_or_else(|| invalid("Expected 'type' to be of type Integer."))?,
        None => return Err(invalid("Missing required property 'type'.")),
    };
    let sequence_id = || match obj.get("sequenceId") {
        Some(v) => v.as_u64().ok_or_else(|| invalid("Expected 'sequenceId' to be of type Integer.")),
        None => Err(invalid("Missing required property 'sequenceId'.")),
    };
    Ok(match kind {
        1 => Message::Invocation(invocation(&obj, false)?),
        2 => Message::StreamItem {
            invocation_id: required_string(&obj, "invocationId")?,
            item: obj.get("item").cloned().unwrap_or(Value::Null),
        },
        3 => {
            let invocation_id = required_string(&obj, "invocationId")?;
            let error = string_field(&obj, "error")?;
            let result = match (error, obj.get("result")) {
                (Some(_), Some(_)) => {
                    return Err(invalid("The 'error' and 'result' properties are mutually exclusive."));
                }
                (Some(e), None) => CompletionResult::Error(e),
                (None, Some(r)) => CompletionResult::Result(r.clone()),
                (None, None) => CompletionResult::Void,
            };
            Message::Completion { invocation_id, result }
        }
        4 => Message::StreamInvocation(invocation(&obj, true)?),
        5 => Message::CancelInvocation { invocation_id: required_string(&obj, "invocationId")? },
        6 => Message::Ping,
        7 => Message::Close {
            error: string_field(&obj, "error")?,
            allow_reconnect: match obj.get("allowReconnect") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(invalid("Expected 'allowReconnect' to be of type Boolean.")),
            },
        },
        8 => Message::Ack { sequence_id: sequence_id()? },
        9 => Message::Sequence { sequence_id: sequence_id()? },
        other => Message::Unknown(other),
    })
}

fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).expect("JSON values serialise into a Vec");
}

fn push_invocation(out: &mut Vec<u8>, kind: u8, inv: &Invocation) {
    out.extend_from_slice(format!("{{\"type\":{kind},").as_bytes());
    if !inv.headers.is_empty() {
        out.extend_from_slice(b"\"headers\":");
        push_json(out, &inv.headers);
        out.push(b',');
    }
    if let Some(id) = &inv.invocation_id {
        out.extend_from_slice(b"\"invocationId\":");
        push_json(out, id);
        out.push(b',');
    }
    out.extend_from_slice(b"\"target\":");
    push_json(out, &inv.target);
    out.extend_from_slice(b",\"arguments\":");
    push_json(out, &inv.arguments);
    if !inv.stream_ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":");
        push_json(out, &inv.stream_ids);
    }
    out.push(b'}');
}

pub(super) fn write_message(message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    match message {
        Message::Invocation(inv) => push_invocation(&mut out, 1, inv),
        Message::StreamInvocation(inv) => push_invocation(&mut out, 4, inv),
        Message::StreamItem { invocation_id, item } => {
            out.extend_from_slice(b"{\"type\":2,\"invocationId\":");
            push_json(&mut out, invocation_id);
            out.extend_from_slice(b",\"item\":");
            push_json(&mut out, item);
            out.push(b'}');
        }
        Message::Completion { invocation_id, result } => {
            out.extend_from_slice(b"{\"type\":3,\"invocationId\":");
            push_json(&mut out, invocation_id);
            match result {
                CompletionResult::Void => {}
                CompletionResult::Result(v) => {
                    out.extend_from_slice(b",\"result\":");
                    push_json(&mut out, v);
                }
                CompletionResult::Error(e) => {
                    out.extend_from_slice(b",\"error\":");
                    push_json(&mut out, e);
                }
            }
            out.push(b'}');
        }
        Message::CancelInvocation { invocation_id } => {
            out.extend_from_slice(b"{\"type\":5,\"invocationId\":");
            push_json(&mut out, invocation_id);
            out.push(b'}');
        }
        Message::Ping => out.extend_from_slice(b"{\"type\":6}"),
        Message::Close { error, allow_reconnect } => {
            out.extend_from_slice(b"{\"type\":7");
            if let Some(e) = error {
                out.extend_from_slice(b",\"error\":");
                push_json(&mut out, e);
            }
            if *allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
            out.push(b'}');
        }
        Message::Ack { sequence_id } => {
            out.extend_from_slice(format!("{{\"type\":8,\"sequenceId\":{sequence_id}}}").as_bytes())
        }
        Message::Sequence { sequence_id } => {
            out.extend_from_slice(format!("{{\"type\":9,\"sequenceId\":{sequence_id}}}").as_bytes())
        }
        Message::Unknown(kind) => out.extend_from_slice(format!("{{\"type\":{kind}}}").as_bytes()),
    }
    out.push(RECORD_SEPARATOR);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(m: &Message) -> Message {
        let bytes = write_message(m);
        let span = next_frame(&bytes, 1 << 20).unwrap().unwrap();
        assert_eq!(span.consumed, bytes.len());
        parse_message(&bytes[span.start..span.end]).unwrap()
    }

    #[test]
    fn test_exact_bytes() {
        let inv = Invocation { target: "newMessage".into(), arguments: vec![json!("hi")], ..Default::default() };
        assert_eq!(
            write_message(&Message::Invocation(inv)),
            b"{\"type\":1,\"target\":\"newMessage\",\"arguments\":[\"hi\"]}\x1e"
        );
        assert_eq!(write_message(&Message::Ping), b"{\"type\":6}\x1e");
        assert_eq!(write_message(&Message::Close { error: None, allow_reconnect: false }), b"{\"type\":7}\x1e");
        assert_eq!(
            write_message(&Message::Close { error: Some("bye".into()), allow_reconnect: true }),
            b"{\"type\":7,\"error\":\"bye\",\"allowReconnect\":true}\x1e"
        );
    }

    #[test]
    fn test_roundtrip_every_type() {
        let mut headers = BTreeMap::new();
        headers.insert("h".to_string(), "v".to_string());
        let inv = Invocation {
            headers,
            invocation_id: Some("3".into()),
            target: "t".into(),
            arguments: vec![json!(1), json!({"a":[true,null]})],
            stream_ids: vec!["s1".into()],
        };
        let all = vec![
            Message::Invocation(inv.clone()),
            Message::StreamInvocation(inv),
            Message::StreamItem { invocation_id: "1".into(), item: json!(2.5) },
            Message::Completion { invocation_id: "1".into(), result: CompletionResult::Void },
            Message::Completion { invocation_id: "1".into(), result: CompletionResult::Result(json!(null)) },
            Message::Completion { invocation_id: "1".into(), result: CompletionResult::Error("x".into()) },
            Message::CancelInvocation { invocation_id: "1".into() },
            Message::Ping,
            Message::Close { error: Some("e".into()), allow_reconnect: true },
            Message::Ack { sequence_id: 4 },
            Message::Sequence { sequence_id: 5 },
        ];
        for m in all {
            assert_eq!(roundtrip(&m), m);
        }
    }

    #[test]
    fn test_incremental_and_limits() {
        assert_eq!(next_frame(b"{\"type\":6}", 100).unwrap(), None);
        let two = b"{\"type\":6}\x1e{\"type\":6}\x1e";
        let first = next_frame(two, 100).unwrap().unwrap();
        assert_eq!(first, FrameSpan { start: 0, end: 10, consumed: 11 });
        assert!(next_frame(&two[first.consumed..], 100).unwrap().is_some());
        assert_eq!(next_frame(two, 5).unwrap_err(), ProtocolError::TooLarge(5));
        assert_eq!(next_frame(&[b'x'; 6], 5).unwrap_err(), ProtocolError::TooLarge(5));
    }

    #[test]
    fn test_garbage_is_refused() {
        for bad in [
            &b""[..],
            b"nope",
            b"[1,2]",
            b"{}",
            b"{\"type\":\"1\"}",
            b"{\"type\":1}",
            b"{\"type\":1,\"target\":\"t\"}",
            b"{\"type\":1,\"target\":5,\"arguments\":[]}",
            b"{\"type\":1,\"target\":\"t\",\"arguments\":{}}",
            b"{\"type\":1,\"target\":\"t\",\"arguments\":[],\"headers\":{\"a\":1}}",
            b"{\"type\":3,\"invocationId\":\"1\",\"result\":1,\"error\":\"e\"}",
            b"{\"type\":3}",
            b"{\"type\":4,\"target\":\"t\",\"arguments\":[]}",
            b"{\"type\":8}",
            b"{\"type\":7,\"allowReconnect\":\"yes\"}",
            b"\xff\xfe",
            b"{\"type\":1,",
        ] {
            assert!(parse_message(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_message(b"{\"type\":99}").unwrap(), Message::Unknown(99));
        // Deep nesting is refused by serde_json's recursion limit instead of overflowing the stack.
        let deep = format!("{{\"type\":1,\"target\":\"t\",\"arguments\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse_message(deep.as_bytes()).is_err());
    }
}
