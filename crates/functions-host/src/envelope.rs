//! The host's encoding rules for the `{"Data": …, "Metadata": …}` invocation body.
//!
//! The real host runs every binding value through `GetHttpScriptInvocationContextValue`:
//! byte arrays become base64, anything `JObject.FromObject` accepts becomes a JSON object, and
//! everything else goes through `JsonConvert.SerializeObject` — so a string arrives as a JSON
//! string *containing* JSON text (`"\"hello\""`), a number as a string (`"1"`) and a `DateTime`
//! as a quoted ISO string. Handlers written against the real host decode exactly this, so the
//! local host must produce it byte for byte rather than something "nicer".

use base64::Engine;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `JsonConvert.SerializeObject(string)`: the JSON text of the string, as a JSON string.
pub fn serialized_string(s: &str) -> Value {
    Value::String(Value::String(s.to_string()).to_string())
}

/// `JsonConvert.SerializeObject(number)`.
pub fn serialized_number(n: impl std::fmt::Display) -> Value {
    Value::String(n.to_string())
}

/// A `byte[]` value (e.g. `dataType: binary`): base64.
pub fn bytes_value(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// The conversion for an arbitrary JSON token that came from a message body property: objects
/// stay objects (`JObject.FromObject` accepts them), everything else is serialised to JSON text.
/// `None` for null, which the host skips.
pub fn token_value(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(_) => Some(v.clone()),
        other => Some(Value::String(other.to_string())),
    }
}

/// Adds the top-level properties of a JSON object body to the metadata, as the host's binding
/// data does; built-in names (compared case-insensitively) win.
pub fn add_body_properties(metadata: &mut serde_json::Map<String, Value>, body: &[u8]) {
    let Ok(Value::Object(props)) = serde_json::from_slice::<Value>(body) else { return };
    for (k, v) in props {
        if metadata.keys().any(|e| e.eq_ignore_ascii_case(&k)) {
            continue;
        }
        if let Some(v) = token_value(&v) {
            metadata.insert(k, v);
        }
    }
}

/// Newtonsoft's ISO format for a UTC `DateTime`: seven fractional digits with trailing zeros
/// trimmed, `Z` suffix (`2023-10-12T20:13:49.640002Z`).
pub fn datetime_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}{}Z", base_iso(t), fraction(t))
}

/// Newtonsoft's ISO format for a `DateTimeOffset` at offset zero (`…+00:00`).
pub fn datetime_offset(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}{}+00:00", base_iso(t), fraction(t))
}

/// `DateTimeOffset.MaxValue`, the expiry of a message without a time-to-live.
pub const MAX_DATETIME_OFFSET: &str = "9999-12-31T23:59:59.9999999+00:00";
pub const MAX_DATETIME_UTC: &str = "9999-12-31T23:59:59.9999999Z";

fn base_iso(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

fn fraction(t: OffsetDateTime) -> String {
    let ticks = t.nanosecond() / 100;
    if ticks == 0 {
        return String::new();
    }
    let s = format!(".{ticks:07}");
    s.trim_end_matches('0').to_string()
}

/// The current UTC time in the host's format, e.g. for `requestedAt` fields.
pub fn utc_now_iso() -> String {
    datetime_utc(OffsetDateTime::now_utc())
}

/// Parses the RFC 3339 timestamps this crate stores.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A random version-4 GUID in the usual lower-case 8-4-4-4-12 form.
pub fn guid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// `Metadata.sys`, present on every invocation.
pub fn sys(method_name: &str, now: OffsetDateTime) -> Value {
    let mut m = Map::new();
    m.insert("MethodName".into(), Value::String(method_name.to_string()));
    m.insert("UtcNow".into(), Value::String(datetime_utc(now)));
    m.insert("RandGuid".into(), Value::String(guid()));
    Value::Object(m)
}

/// `.NET Convert.FromBase64String` acceptance: whitespace ignored, standard alphabet, padded to
/// a multiple of four. The host applies it to every string output of a non-http binding.
pub fn dotnet_base64_decode(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s.chars().filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n')).collect();
    if !cleaned.len().is_multiple_of(4) {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    engine.decode(cleaned.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn test_double_encoding_matches_host_unit_test() {
        // Host test ValidateDefaultInvocationRequest: Data[name] == JsonConvert.SerializeObject("HelloWorld").
        assert_eq!(serialized_string("HelloWorld"), Value::String("\"HelloWorld\"".into()));
        let body = r#"{"a":1}"#;
        assert_eq!(serde_json::to_string(&serialized_string(body)).unwrap(), r#""\"{\\\"a\\\":1}\"""#);
        assert_eq!(serialized_number(1), Value::String("1".into()));
    }

    #[test]
    fn test_newtonsoft_dates() {
        assert_eq!(datetime_utc(datetime!(2023-10-12 20:13:49.640002 UTC)), "2023-10-12T20:13:49.640002Z");
        assert_eq!(datetime_utc(datetime!(2023-10-12 20:13:49 UTC)), "2023-10-12T20:13:49Z");
        assert_eq!(datetime_offset(datetime!(2026-08-07 03:51:56.5094963 UTC)), "2026-08-07T03:51:56.5094963+00:00");
        assert_eq!(datetime_offset(datetime!(0001-01-01 00:00 UTC)), "0001-01-01T00:00:00+00:00");
    }

    #[test]
    fn test_dotnet_base64_rule() {
        assert_eq!(dotnet_base64_decode("sync"), Some(vec![0xb3, 0x29, 0xdc]));
        assert_eq!(dotnet_base64_decode("abcd").map(|v| v.len()), Some(3));
        assert_eq!(dotnet_base64_decode("aGVs bG8="), Some(b"hello".to_vec()));
        assert_eq!(dotnet_base64_decode("hello"), None);
        assert_eq!(dotnet_base64_decode(r#"{"a":1}"#), None);
        assert_eq!(dotnet_base64_decode("queue message 1"), None);
    }

    #[test]
    fn test_token_value() {
        assert_eq!(token_value(&Value::String("world".into())), Some(Value::String("\"world\"".into())));
        assert_eq!(token_value(&serde_json::json!(2)), Some(Value::String("2".into())));
        assert_eq!(token_value(&Value::Null), None);
        assert_eq!(token_value(&serde_json::json!({"x":1})), Some(serde_json::json!({"x":1})));
    }

    #[test]
    fn test_guid_shape() {
        let g = guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
    }
}
