//! Applying a successful invocation's `Outputs`/`ReturnValue` to the bindings the local host
//! implements (Service Bus queue outputs) and printing its `Logs`.

use serde_json::Value;

use crate::config::{Binding, Function};
use crate::envelope::dotnet_base64_decode;
use crate::invoke::InvocationResult;
use crate::queue::{NewMessage, Queues};

/// The host's `GetBindingValue` for a non-http output item: a string that is valid base64 is
/// taken as bytes (yes, even `"sync"`), other strings as UTF-8 text, objects as JSON text.
pub fn item_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(dotnet_base64_decode(s).unwrap_or_else(|| s.as_bytes().to_vec())),
        other => Some(other.to_string().into_bytes()),
    }
}

/// An output value: an array means several items. (`dataType: binary` bindings get the same
/// treatment: their strings are expected to be base64 anyway.)
pub fn items(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(a) => a.iter().filter_map(item_bytes).collect(),
        other => item_bytes(other).into_iter().collect(),
    }
}

fn value_for<'a>(b: &Binding, result: &'a InvocationResult) -> Option<&'a Value> {
    if b.name == "$return" { result.return_value.as_ref() } else { result.output(&b.name) }
}

/// Applies outputs; an error means the invocation must count as failed (e.g. the queue write
/// failed), so a triggering message is redelivered rather than its outputs lost.
pub async fn apply(function: &Function, result: &InvocationResult, queues: &Queues) -> Result<(), String> {
    for line in &result.logs {
        println!("[{}] {line}", function.name);
    }
    for b in function.outputs() {
        let Some(value) = value_for(b, result) else { continue };
        if b.is("serviceBus") {
            let queue_name = b.str_prop("queueName").unwrap_or_default();
            let queue = queues.get(queue_name).ok_or_else(|| format!("unknown queue {queue_name:?}"))?;
            let msgs: Vec<NewMessage> =
                items(value).into_iter().map(|body| NewMessage { body, ..Default::default() }).collect();
            if !msgs.is_empty() {
                queue.enqueue(msgs).await.map_err(|e| format!("writing output {:?}: {e}", b.name))?;
            }
        } else if !b.is("http") {
            tracing::warn!(function = %function.name, binding = %b.name, kind = %b.kind,
                "the local host does not implement this output binding type; its value is dropped");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_items_follow_host_rules() {
        assert_eq!(items(&json!(["queue message 1", "queue message 2"])).len(), 2);
        assert_eq!(items(&json!("queue message 1")), vec![b"queue message 1".to_vec()]);
        assert_eq!(items(&json!("sync")), vec![vec![0xb3, 0x29, 0xdc]]);
        assert_eq!(items(&json!({"a":1})), vec![br#"{"a":1}"#.to_vec()]);
        assert_eq!(
            items(&json!("{\"id\":1005,\"quantity\":2,\"color\":\"black\"}")),
            vec![br#"{"id":1005,"quantity":2,"color":"black"}"#.to_vec()]
        );
        assert!(items(&json!(null)).is_empty());
    }
}
