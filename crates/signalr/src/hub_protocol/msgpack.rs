//! The MessagePack hub protocol: each frame is a VarInt length (1–5 bytes, 7 bits each, least
//! significant first) followed by a MessagePack array whose first element is the message type.
//!
//! The length is checked against the size limit before the body is buffered, so a client cannot
//! make the service hold a huge buffer by announcing a huge frame. Decoding uses `rmpv` with a
//! depth limit and without trusting announced collection sizes for preallocation.

use std::collections::BTreeMap;

use base64::Engine;
use rmpv::Value as Mp;
use serde_json::Value;

use super::{CompletionResult, FrameSpan, Invocation, Message, ProtocolError, invalid};

const MAX_PREFIX: usize = 5;
const MAX_DEPTH: usize = 128;

pub(super) fn next_frame(buf: &[u8], max_size: usize) -> Result<Option<FrameSpan>, ProtocolError> {
    let mut len: u64 = 0;
    for i in 0..MAX_PREFIX {
        let Some(&b) = buf.get(i) else { return Ok(None) };
        if i == MAX_PREFIX - 1 && b > 0x07 {
            return Err(ProtocolError::BadLengthPrefix);
        }
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let start = i + 1;
            if len > max_size as u64 {
                return Err(ProtocolError::TooLarge(max_size));
            }
            let end = start + len as usize;
            return Ok((buf.len() >= end).then_some(FrameSpan { start, end, consumed: end }));
        }
    }
    unreachable!("the fifth prefix byte either ends the prefix or is rejected")
}

fn mp_error(e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::MessagePack(e.to_string())
}

/// MessagePack to JSON for arguments and results; `bin` becomes base64, extension types are
/// refused (no hub protocol value uses them).
pub(super) fn to_json(v: Mp) -> Result<Value, ProtocolError> {
    Ok(match v {
        Mp::Nil => Value::Null,
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            _ => return Err(invalid("integer out of range")),
        },
        Mp::F32(f) => serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        Mp::F64(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Mp::String(s) => Value::String(s.into_str().ok_or_else(|| mp_error("invalid UTF-8 in string"))?),
        Mp::Binary(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Mp::Array(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Mp::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let key = match k {
                    Mp::String(s) => s.into_str().ok_or_else(|| mp_error("invalid UTF-8 in map key"))?,
                    other => other.to_string(),
                };
                map.insert(key, to_json(v)?);
            }
            Value::Object(map)
        }
        Mp::Ext(..) => return Err(mp_error("extension types are not supported")),
    })
}

fn as_str(v: &Mp, what: &str) -> Result<String, ProtocolError> {
    match v {
        Mp::String(s) => s.as_str().map(str::to_string).ok_or_else(|| mp_error("invalid UTF-8 in string")),
        _ => Err(invalid(format!("Reading '{what}' as String failed."))),
    }
}

fn as_opt_str(v: &Mp, what: &str) -> Result<Option<String>, ProtocolError> {
    match v {
        Mp::Nil => Ok(None),
        other => as_str(other, what).map(Some),
    }
}

fn headers(v: &Mp) -> Result<BTreeMap<String, String>, ProtocolError> {
    match v {
        Mp::Nil => Ok(BTreeMap::new()),
        Mp::Map(entries) => {
            entries.iter().map(|(k, v)| Ok((as_str(k, "header key")?, as_str(v, "header value")?))).collect()
        }
        _ => Err(invalid("Reading map length for 'headers' failed.")),
    }
}

fn invocation(items: Vec<Mp>, id_required: bool) -> Result<Invocation, ProtocolError> {
    if items.len() < 5 {
        return Err(invalid("Invocation message has too few elements."));
    }
    let headers = headers(&items[1])?;
    let invocation_id = as_opt_str(&items[2], "invocationId")?;
    if id_required && invocation_id.is_none() {
        return Err(invalid("StreamInvocation requires an invocationId."));
    }
    let target = as_str(&items[3], "target")?;
    let mut items = items.into_iter().skip(4);
    let arguments = match items.next() {
        Some(Mp::Array(args)) => args.into_iter().map(to_json).collect::<Result<_, _>>()?,
        _ => return Err(invalid("Reading array length for 'arguments' failed.")),
    };
    let stream_ids = match items.next() {
        None | Some(Mp::Nil) => Vec::new(),
        Some(Mp::Array(ids)) => ids.iter().map(|v| as_str(v, "streamId")).collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("Reading array length for 'streamIds' failed.")),
    };
    Ok(Invocation { headers, invocation_id, target, arguments, stream_ids })
}

pub(super) fn parse_message(body: &[u8]) -> Result<Message, ProtocolError> {
    let mut reader = body;
    let value = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH).map_err(mp_error)?;
    let Mp::Array(items) = value else {
        return Err(invalid("Message is not a MessagePack array."));
    };
    let kind = items.first().and_then(Mp::as_i64).ok_or_else(|| invalid("Reading 'messageType' as Int32 failed."))?;
    let need = |n: usize| {
        if items.len() < n { Err(invalid(format!("Message of type {kind} has too few elements."))) } else { Ok(()) }
    };
    let sequence_id = |items: &[Mp]| {
        need(2)?;
        items[1].as_u64().ok_or_else(|| invalid("Reading 'sequenceId' as Int64 failed."))
    };
    Ok(match kind {
        1 => Message::Invocation(invocation(items, false)?),
        4 => Message::StreamInvocation(invocation(items, true)?),
        2 => {
            need(4)?;
            headers(&items[1])?;
            let invocation_id = as_str(&items[2], "invocationId")?;
            Message::StreamItem { invocation_id, item: to_json(items.into_iter().nth(3).expect("length checked"))? }
        }
        3 => {
            need(4)?;
            headers(&items[1])?;
            let invocation_id = as_str(&items[2], "invocationId")?;
            let result = match items[3].as_i64() {
                Some(1) => {
                    need(5)?;
                    CompletionResult::Error(as_str(&items[4], "error")?)
                }
                Some(2) => CompletionResult::Void,
                Some(3) => {
                    need(5)?;
                    CompletionResult::Result(to_json(items.into_iter().nth(4).expect("length checked"))?)
                }
                _ => return Err(invalid("Invalid invocation result kind.")),
            };
            Message::Completion { invocation_id, result }
        }
        5 => {
            need(3)?;
            headers(&items[1])?;
            Message::CancelInvocation { invocation_id: as_str(&items[2], "invocationId")? }
        }
        6 => Message::Ping,
        7 => {
            need(2)?;
            let error = as_opt_str(&items[1], "error")?;
            let allow_reconnect = match items.get(2) {
                None | Some(Mp::Nil) => false,
                Some(Mp::Boolean(b)) => *b,
                Some(_) => return Err(invalid("Reading 'allowReconnect' as Boolean failed.")),
            };
            Message::Close { error, allow_reconnect }
        }
        8 => Message::Ack { sequence_id: sequence_id(&items)? },
        9 => Message::Sequence { sequence_id: sequence_id(&items)? },
        other => Message::Unknown(other),
    })
}

// Writes into a Vec cannot fail; rmp's signatures are generic over io::Write.
fn w<T, E: std::fmt::Debug>(r: Result<T, E>) {
    r.expect("writing MessagePack into a Vec cannot fail");
}

/// JSON to MessagePack, as the service does for MessagePack clients of REST sends (§D.2).
pub(super) fn write_json_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => w(rmp::encode::write_nil(out)),
        Value::Bool(b) => w(rmp::encode::write_bool(out, *b)),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                w(rmp::encode::write_uint(out, u));
            } else if let Some(i) = n.as_i64() {
                w(rmp::encode::write_sint(out, i));
            } else {
                w(rmp::encode::write_f64(out, n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => w(rmp::encode::write_str(out, s)),
        Value::Array(items) => {
            w(rmp::encode::write_array_len(out, items.len() as u32));
            for item in items {
                write_json_value(out, item);
            }
        }
        Value::Object(map) => {
            w(rmp::encode::write_map_len(out, map.len() as u32));
            for (k, v) in map {
                w(rmp::encode::write_str(out, k));
                write_json_value(out, v);
            }
        }
    }
}

fn write_headers(out: &mut Vec<u8>, headers: &BTreeMap<String, String>) {
    w(rmp::encode::write_map_len(out, headers.len() as u32));
    for (k, v) in headers {
        w(rmp::encode::write_str(out, k));
        w(rmp::encode::write_str(out, v));
    }
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => w(rmp::encode::write_str(out, s)),
        None => w(rmp::encode::write_nil(out)),
    }
}

fn write_invocation(out: &mut Vec<u8>, kind: u8, inv: &Invocation) {
    let len = if inv.stream_ids.is_empty() { 5 } else { 6 };
    w(rmp::encode::write_array_len(out, len));
    w(rmp::encode::write_pfix(out, kind));
    write_headers(out, &inv.headers);
    write_opt_str(out, inv.invocation_id.as_deref());
    w(rmp::encode::write_str(out, &inv.target));
    w(rmp::encode::write_array_len(out, inv.arguments.len() as u32));
    for a in &inv.arguments {
        write_json_value(out, a);
    }
    if !inv.stream_ids.is_empty() {
        w(rmp::encode::write_array_len(out, inv.stream_ids.len() as u32));
        for s in &inv.stream_ids {
            w(rmp::encode::write_str(out, s));
        }
    }
}

fn write_body(out: &mut Vec<u8>, message: &Message) {
    match message {
        Message::Invocation(inv) => write_invocation(out, 1, inv),
        Message::StreamInvocation(inv) => write_invocation(out, 4, inv),
        Message::StreamItem { invocation_id, item } => {
            w(rmp::encode::write_array_len(out, 4));
            w(rmp::encode::write_pfix(out, 2));
            write_headers(out, &BTreeMap::new());
            w(rmp::encode::write_str(out, invocation_id));
            write_json_value(out, item);
        }
        Message::Completion { invocation_id, result } => {
            let len = if matches!(result, CompletionResult::Void) { 4 } else { 5 };
            w(rmp::encode::write_array_len(out, len));
            w(rmp::encode::write_pfix(out, 3));
            write_headers(out, &BTreeMap::new());
            w(rmp::encode::write_str(out, invocation_id));
            match result {
                CompletionResult::Error(e) => {
                    w(rmp::encode::write_pfix(out, 1));
                    w(rmp::encode::write_str(out, e));
                }
                CompletionResult::Void => w(rmp::encode::write_pfix(out, 2)),
                CompletionResult::Result(v) => {
                    w(rmp::encode::write_pfix(out, 3));
                    write_json_value(out, v);
                }
            }
        }
        Message::CancelInvocation { invocation_id } => {
            w(rmp::encode::write_array_len(out, 3));
            w(rmp::encode::write_pfix(out, 5));
            write_headers(out, &BTreeMap::new());
            w(rmp::encode::write_str(out, invocation_id));
        }
        Message::Ping => {
            w(rmp::encode::write_array_len(out, 1));
            w(rmp::encode::write_pfix(out, 6));
        }
        Message::Close { error, allow_reconnect } => {
            w(rmp::encode::write_array_len(out, 3));
            w(rmp::encode::write_pfix(out, 7));
            write_opt_str(out, error.as_deref());
            w(rmp::encode::write_bool(out, *allow_reconnect));
        }
        Message::Ack { sequence_id } | Message::Sequence { sequence_id } => {
            let kind = if matches!(message, Message::Ack { .. }) { 8 } else { 9 };
            w(rmp::encode::write_array_len(out, 2));
            w(rmp::encode::write_pfix(out, kind));
            w(rmp::encode::write_uint(out, *sequence_id));
        }
        Message::Unknown(kind) => {
            w(rmp::encode::write_array_len(out, 1));
            w(rmp::encode::write_sint(out, *kind));
        }
    }
}

fn push_varint(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(super) fn write_message(message: &Message) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    write_body(&mut body, message);
    let mut out = Vec::with_capacity(body.len() + MAX_PREFIX);
    push_varint(&mut out, body.len());
    out.extend_from_slice(&body);
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
        assert_eq!(write_message(&Message::Ping), b"\x02\x91\x06");
        let inv = Invocation { target: "t".into(), arguments: vec![json!(1), json!("a")], ..Default::default() };
        // [1, {}, nil, "t", [1, "a"]]
        assert_eq!(write_message(&Message::Invocation(inv)), b"\x0a\x95\x01\x80\xc0\xa1t\x92\x01\xa1a");
        // [7, "x", true]
        assert_eq!(
            write_message(&Message::Close { error: Some("x".into()), allow_reconnect: true }),
            b"\x05\x93\x07\xa1x\xc3"
        );
        // [7, nil, false]
        assert_eq!(write_message(&Message::Close { error: None, allow_reconnect: false }), b"\x04\x93\x07\xc0\xc2");
    }

    #[test]
    fn test_varint_prefix() {
        let mut out = Vec::new();
        push_varint(&mut out, 0x7f);
        assert_eq!(out, [0x7f]);
        out.clear();
        push_varint(&mut out, 0x80);
        assert_eq!(out, [0x80, 0x01]);
        out.clear();
        push_varint(&mut out, 0x3fff);
        assert_eq!(out, [0xff, 0x7f]);
        // A 200-byte body needs a two-byte prefix and is found exactly.
        let mut frame = vec![0xc8, 0x01];
        frame.extend(std::iter::repeat_n(0u8, 200));
        assert_eq!(next_frame(&frame, 1000).unwrap(), Some(FrameSpan { start: 2, end: 202, consumed: 202 }));
        assert_eq!(next_frame(&frame[..150], 1000).unwrap(), None);
        assert_eq!(next_frame(&frame[..1], 1000).unwrap(), None);
        assert_eq!(next_frame(&frame, 100).unwrap_err(), ProtocolError::TooLarge(100));
    }

    #[test]
    fn test_huge_varints_are_refused_before_buffering() {
        // 2^31 announced in five bytes: over the protocol's 2 GB limit.
        assert_eq!(
            next_frame(&[0x80, 0x80, 0x80, 0x80, 0x08], usize::MAX).unwrap_err(),
            ProtocolError::BadLengthPrefix
        );
        assert_eq!(next_frame(&[0xff; 5], usize::MAX).unwrap_err(), ProtocolError::BadLengthPrefix);
        // 1 GB announced, nothing sent after it: refused by the size limit at once.
        assert_eq!(next_frame(&[0x80, 0x80, 0x80, 0x80, 0x04], 1 << 20).unwrap_err(), ProtocolError::TooLarge(1 << 20));
        assert_eq!(next_frame(&[0xff, 0xff, 0xff, 0xff], 1 << 20).unwrap(), None);
    }

    #[test]
    fn test_roundtrip_every_type() {
        let mut headers = BTreeMap::new();
        headers.insert("h".to_string(), "v".to_string());
        let inv = Invocation {
            headers,
            invocation_id: Some("3".into()),
            target: "t".into(),
            arguments: vec![json!(-1), json!(u64::MAX), json!(1.5), json!({"a":[true,null]})],
            stream_ids: vec!["s1".into()],
        };
        let all = vec![
            Message::Invocation(inv.clone()),
            Message::StreamInvocation(inv),
            Message::StreamItem { invocation_id: "1".into(), item: json!("x") },
            Message::Completion { invocation_id: "1".into(), result: CompletionResult::Void },
            Message::Completion { invocation_id: "1".into(), result: CompletionResult::Result(json!([1])) },
            Message::Completion { invocation_id: "1".into(), result: CompletionResult::Error("x".into()) },
            Message::CancelInvocation { invocation_id: "1".into() },
            Message::Ping,
            Message::Close { error: None, allow_reconnect: false },
            Message::Ack { sequence_id: 4 },
            Message::Sequence { sequence_id: 5 },
        ];
        for m in all {
            assert_eq!(roundtrip(&m), m);
        }
    }

    #[test]
    fn test_six_element_invocation_and_binary_args() {
        // [1, {}, "0", "t", [bin(01 02)], ["s"]]
        let body = b"\x96\x01\x80\xa10\xa1t\x91\xc4\x02\x01\x02\x91\xa1s";
        let Message::Invocation(inv) = parse_message(body).unwrap() else { panic!("not an invocation") };
        assert_eq!(inv.arguments, vec![json!("AQI=")]);
        assert_eq!(inv.stream_ids, vec!["s".to_string()]);
    }

    #[test]
    fn test_garbage_is_refused() {
        for bad in [
            &b""[..],
            b"\xc1",
            b"\x01",
            b"\x90",
            b"\x91\xa1x",
            b"\x92\x01\x80",
            b"\x95\x01\x80\xc0\x01\x90",
            b"\x95\x01\x80\xc0\xa1t\x01",
            b"\x94\x03\x80\xa11\x09",
            b"\x94\x03\x80\xa11\x03",
            b"\x93\x05\x80\x01",
            b"\x91\x08",
            b"\x93\x07\x01",
            b"\x95\x01\x80\xc0\xa1t\x91\xd4\x01\x01",
            b"\x95\x01\x80\xc0\xa2\xff\xfe\x90",
            b"\xdd\xff\xff\xff\xff",
        ] {
            assert!(parse_message(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_message(b"\x91\x63").unwrap(), Message::Unknown(99));
        let mut deep = vec![0x95, 0x01, 0x80, 0xc0, 0xa1, b't'];
        deep.extend(std::iter::repeat_n(0x91u8, 10_000));
        deep.push(0xc0);
        assert!(parse_message(&deep).is_err());
    }
}
