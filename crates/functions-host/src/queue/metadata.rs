//! The Service Bus trigger's invocation body, encoded as the host (Service Bus extension 5.x)
//! encodes it: the body as a double-encoded string (or base64 with `dataType: binary`), string
//! metadata JSON-quoted, numbers and dates as strings, the SDK objects as `{}`, and a JSON body's
//! top-level properties as extra metadata keys.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::store::StoredMessage;
use crate::envelope::{
    MAX_DATETIME_OFFSET, MAX_DATETIME_UTC, add_body_properties, bytes_value, datetime_offset, datetime_utc,
    serialized_number, serialized_string, sys,
};

/// The fully qualified namespace the local queue claims to be.
pub const LOCAL_NAMESPACE: &str = "localhost";

pub struct Delivery<'a> {
    pub message: &'a StoredMessage,
    pub lock_token: &'a str,
    pub function: &'a str,
    pub binding: &'a str,
    pub binary: bool,
    pub client_id: &'a str,
}

/// `{"Data": {binding: body}, "Metadata": {...}}` for one delivery.
pub fn invocation_body(d: &Delivery<'_>, now: OffsetDateTime) -> Value {
    let m = d.message;
    let body = m.body_bytes();
    let data_value = if d.binary {
        bytes_value(&body)
    } else {
        // The extension binds the message as a string (UTF-8), which then gets serialised again.
        serialized_string(&String::from_utf8_lossy(&body))
    };
    let mut data = Map::new();
    data.insert(d.binding.to_string(), data_value);

    let enqueued = m.enqueued_at();
    let quoted = |s: &str| serialized_string(s);
    let mut md = Map::new();
    for k in ["MessageReceiver", "MessageSession", "MessageActions", "SessionActions", "ReceiveActions"] {
        md.insert(k.into(), json!({}));
    }
    md.insert(
        "Client".into(),
        json!({
            "FullyQualifiedNamespace": LOCAL_NAMESPACE,
            "IsClosed": false,
            "TransportType": 0,
            "Identifier": d.client_id,
        }),
    );
    md.insert("DeliveryCount".into(), serialized_number(m.delivery_count));
    md.insert("LockToken".into(), quoted(d.lock_token));
    md.insert("ExpiresAtUtc".into(), quoted(MAX_DATETIME_UTC));
    md.insert("ExpiresAt".into(), quoted(MAX_DATETIME_OFFSET));
    md.insert("EnqueuedTimeUtc".into(), quoted(&datetime_utc(enqueued)));
    md.insert("EnqueuedTime".into(), quoted(&datetime_offset(enqueued)));
    md.insert("MessageId".into(), quoted(&m.message_id));
    if let Some(ct) = &m.content_type {
        md.insert("ContentType".into(), quoted(ct));
    }
    if let Some(c) = &m.correlation_id {
        md.insert("CorrelationId".into(), quoted(c));
    }
    if let Some(s) = &m.subject {
        md.insert("Subject".into(), quoted(s));
        md.insert("Label".into(), quoted(s));
    }
    md.insert("SequenceNumber".into(), serialized_number(m.sequence_number));
    md.insert("ApplicationProperties".into(), Value::Object(m.application_properties.clone()));
    md.insert("UserProperties".into(), Value::Object(m.application_properties.clone()));
    md.insert("sys".into(), sys(d.function, now));
    if !d.binary {
        add_body_properties(&mut md, &body);
    }
    json!({ "Data": data, "Metadata": md })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use time::macros::datetime;

    const FIXTURE: &str = include_str!("../../../../tests/fixtures/host/servicebus-ext5-fixture-azfunc.json");

    fn message(body: &str) -> StoredMessage {
        StoredMessage {
            sequence_number: 1,
            message_id: "4e773554-f6b7-4ea2-b07d-4c5fd5aba741".into(),
            body: base64::engine::general_purpose::STANDARD.encode(body),
            content_type: Some("application/json".into()),
            correlation_id: None,
            subject: None,
            application_properties: Map::new(),
            enqueued_time: "2023-10-12T20:13:49Z".into(),
            delivery_count: 1,
            dead_letter_reason: None,
            dead_letter_error_description: None,
        }
    }

    #[test]
    fn test_matches_reference_metadata_shape() {
        let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
        let m = message(r#"{"message":"hello","number":2}"#);
        let d = Delivery {
            message: &m,
            lock_token: "4e773554-f6b7-4ea2-b07d-4c5fd5aba741",
            function: "helloQueue",
            binding: "queue",
            binary: false,
            client_id: "x",
        };
        let v = invocation_body(&d, datetime!(2023-10-12 20:13:49.640002 UTC));
        let md = v["Metadata"].as_object().unwrap();
        let fmd = fixture["Metadata"].as_object().unwrap();
        // Every key of the reference is present, with the same JSON type.
        for (k, fv) in fmd {
            if k == "message" {
                continue; // the fixture's body differs from its Data (edited fixture)
            }
            let ours = md.get(k).unwrap_or_else(|| panic!("missing {k}"));
            assert_eq!(std::mem::discriminant(ours), std::mem::discriminant(fv), "{k}");
        }
        // Exact values where the reference's rules fix them.
        for k in [
            "DeliveryCount",
            "LockToken",
            "MessageId",
            "ContentType",
            "SequenceNumber",
            "MessageReceiver",
            "ApplicationProperties",
        ] {
            assert_eq!(md[k], fmd[k], "{k}");
        }
        assert_eq!(md["EnqueuedTimeUtc"], "\"2023-10-12T20:13:49Z\"");
        assert_eq!(md["sys"]["MethodName"], "helloQueue");
        assert_eq!(md["sys"]["UtcNow"], "2023-10-12T20:13:49.640002Z");
        // Body properties: strings quoted, numbers as strings.
        assert_eq!(md["message"], "\"hello\"");
        assert_eq!(md["number"], "2");
        // Data: double-encoded.
        assert_eq!(v["Data"]["queue"], Value::String("\"{\\\"message\\\":\\\"hello\\\",\\\"number\\\":2}\"".into()));
        let once: Value = serde_json::from_str(v["Data"]["queue"].as_str().unwrap()).unwrap();
        assert_eq!(once.as_str().unwrap(), r#"{"message":"hello","number":2}"#);
    }

    #[test]
    fn test_binary_body_is_base64_and_adds_no_properties() {
        let m = message(r#"{"a":1}"#);
        let d = Delivery { message: &m, lock_token: "t", function: "f", binding: "b", binary: true, client_id: "x" };
        let v = invocation_body(&d, OffsetDateTime::now_utc());
        assert_eq!(v["Data"]["b"], base64::engine::general_purpose::STANDARD.encode(r#"{"a":1}"#));
        assert!(v["Metadata"].get("a").is_none());
    }
}
