//! Calling the custom handler: `POST /{FunctionName}` with the JSON envelope, and reading its
//! `{"Outputs", "Logs", "ReturnValue"}` answer with the host's rules (JSON content type
//! required, non-2xx = failure with outputs and logs discarded).

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::envelope::guid;

/// The host version we claim in headers (a 4.x release, as handlers may log or check it).
pub const HOST_VERSION: &str = "4.1037.0.0";

/// Why an invocation failed. Small on purpose: callers only decide "retry/abandon" and log it.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the custom handler is not running")]
    NotRunning,
    #[error("request to the custom handler failed: {0}")]
    Transport(String),
    #[error("the custom handler did not answer within {0:?}")]
    Timeout(Duration),
    /// A failed invocation; the second field is the handler's stated reason (`message` of its
    /// JSON error body), kept so a dead-lettered message says why it failed.
    #[error("the custom handler answered HTTP {code}{suffix}", code = .0, suffix = reason_suffix(.1))]
    Status(u16, String),
    #[error("the custom handler answered with content type {0:?}, not JSON")]
    MediaType(String),
    #[error("invalid response body: {0}")]
    InvalidBody(String),
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() { String::new() } else { format!(": {reason}") }
}

/// The `message` of a failed invocation's JSON body (`{"error", "message"}`), bounded and on
/// one line; empty when there is none.
pub fn failure_reason(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    message.chars().filter(|c| !c.is_control()).take(1000).collect()
}

/// A successful invocation's parsed answer.
#[derive(Debug, Default, Clone)]
pub struct InvocationResult {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Option<Value>,
}

impl InvocationResult {
    /// Output by binding name (the host's keys are case-insensitive).
    pub fn output(&self, name: &str) -> Option<&Value> {
        self.outputs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// Parses a 2xx response body. Pure so it can be tested without a handler.
pub fn parse_response(content_type: Option<&str>, body: &[u8]) -> Result<InvocationResult, InvokeError> {
    let ct = content_type.unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") && essence != "text/json" {
        return Err(InvokeError::MediaType(ct.to_string()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| InvokeError::InvalidBody(e.to_string()))?;
    let Value::Object(map) = v else {
        return Err(InvokeError::InvalidBody("not a JSON object".into()));
    };
    let mut result = InvocationResult::default();
    for (k, v) in map {
        match k.to_ascii_lowercase().as_str() {
            "outputs" => match v {
                Value::Object(o) => result.outputs = o,
                Value::Null => {}
                _ => return Err(InvokeError::InvalidBody("Outputs is not an object".into())),
            },
            "logs" => match v {
                Value::Array(items) => {
                    result.logs = items
                        .into_iter()
                        .map(|i| match i {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect()
                }
                Value::Null => {}
                _ => return Err(InvokeError::InvalidBody("Logs is not an array".into())),
            },
            "returnvalue" => result.return_value = (!v.is_null()).then_some(v),
            _ => {}
        }
    }
    Ok(result)
}

/// Sends invocations to whichever handler process is currently ready.
#[derive(Clone)]
pub struct Invoker {
    client: reqwest::Client,
    forward_client: reqwest::Client,
    port: watch::Receiver<Option<u16>>,
    timeout: Option<Duration>,
}

impl Invoker {
    /// `port` carries the ready handler's port (`None` while it is starting or restarting).
    pub fn new(port: watch::Receiver<Option<u16>>, timeout: Option<Duration>) -> Invoker {
        let client = reqwest::Client::builder().no_proxy().build().expect("reqwest client");
        // Forwarded requests must give the caller the handler's own redirects.
        let forward_client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        Invoker { client, forward_client, port, timeout }
    }

    /// Waits (bounded) for a ready handler. The host queues invocations during a restart too.
    pub async fn ready_port(&self) -> Result<u16, InvokeError> {
        let mut rx = self.port.clone();
        let wait = tokio::time::timeout(Duration::from_secs(35), rx.wait_for(|p| p.is_some())).await;
        match wait {
            Ok(Ok(p)) => Ok(p.expect("checked by wait_for")),
            _ => Err(InvokeError::NotRunning),
        }
    }

    /// `POST /{function}` with `body` = `{"Data":…, "Metadata":…}`.
    pub async fn invoke(&self, function: &str, body: &Value) -> Result<InvocationResult, InvokeError> {
        let port = self.ready_port().await?;
        let url = format!("http://127.0.0.1:{port}/{function}");
        let req = self
            .client
            .post(url)
            .header("X-Azure-Functions-InvocationId", guid())
            .header("X-Azure-Functions-HostVersion", HOST_VERSION)
            .header("User-Agent", format!("Azure-Functions-Host/{HOST_VERSION}"))
            .header("traceparent", traceparent())
            .header("Content-Type", "application/json; charset=utf-8")
            .body(serde_json::to_vec(body).expect("serialising a Value cannot fail"));
        let send = async {
            let resp = req.send().await.map_err(|e| InvokeError::Transport(e.to_string()))?;
            let status = resp.status();
            let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = resp.bytes().await.map_err(|e| InvokeError::Transport(e.to_string()))?;
            if !status.is_success() {
                return Err(InvokeError::Status(status.as_u16(), failure_reason(&bytes)));
            }
            parse_response(ct.as_deref(), &bytes)
        };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| InvokeError::Timeout(t))?,
            None => send.await,
        }
    }

    /// The client used for forwarded HTTP requests (redirects not followed).
    pub fn forward_client(&self) -> &reqwest::Client {
        &self.forward_client
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

fn traceparent() -> String {
    let t: [u8; 16] = rand::random();
    let s: [u8; 8] = rand::random();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("00-{}-{}-00", hex(&t), hex(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS_GENERIC: &str = include_str!("../../../tests/fixtures/host/response-docs-generic.json");
    const USER_REPORT: &str = include_str!("../../../tests/fixtures/host/response-http-res-user-report.json");

    #[test]
    fn test_failure_reason() {
        assert_eq!(
            failure_reason(br#"{"error":"bad_envelope","message":"invalid sync request: x\ny"}"#),
            "invalid sync request: xy"
        );
        assert_eq!(failure_reason(b"oops"), "");
        assert_eq!(InvokeError::Status(400, "why".into()).to_string(), "the custom handler answered HTTP 400: why");
        assert_eq!(InvokeError::Status(500, String::new()).to_string(), "the custom handler answered HTTP 500");
    }

    #[test]
    fn test_parses_documented_responses() {
        let r = parse_response(Some("application/json; charset=utf-8"), DOCS_GENERIC.as_bytes()).unwrap();
        assert_eq!(r.logs, vec!["Log message 1", "Log message 2"]);
        assert_eq!(r.output("myqueueoutput").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(r.return_value, Some(Value::String("{\"hello\":\"world\"}".into())));
        let r = parse_response(Some("application/json"), USER_REPORT.as_bytes()).unwrap();
        assert_eq!(r.output("res").unwrap()["statusCode"], 200);
    }

    #[test]
    fn test_rejects_non_json() {
        assert!(matches!(parse_response(Some("text/plain"), b"{}"), Err(InvokeError::MediaType(_))));
        assert!(matches!(parse_response(None, b"{}"), Err(InvokeError::MediaType(_))));
        assert!(matches!(parse_response(Some("application/json"), b"{"), Err(InvokeError::InvalidBody(_))));
        assert!(matches!(parse_response(Some("application/json"), b"[1]"), Err(InvokeError::InvalidBody(_))));
        assert!(matches!(
            parse_response(Some("application/json"), br#"{"Outputs":"x"}"#),
            Err(InvokeError::InvalidBody(_))
        ));
    }

    #[test]
    fn test_keys_are_case_insensitive_and_nulls_ok() {
        let r =
            parse_response(Some("application/json"), br#"{"outputs":{"a":1},"logs":null,"returnValue":null}"#).unwrap();
        assert_eq!(r.output("A"), Some(&serde_json::json!(1)));
        assert!(r.logs.is_empty());
        assert!(r.return_value.is_none());
    }
}
