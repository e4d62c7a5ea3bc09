//! What a function sees of its invocation besides its input: who it is, a log, and the sink
//! for its output bindings, which the transport may not offer.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

/// One invocation's context. Lines logged here go to `tracing` and, for enveloped
/// invocations, into the response's `Logs`, which the host attaches to the invocation.
#[derive(Debug)]
pub struct Context {
    invocation_id: String,
    function: &'static str,
    /// `None` when the request was forwarded as plain HTTP: the host then writes no outputs.
    outputs: Option<Outputs>,
    logs: Vec<String>,
}

impl Context {
    /// A context for an invocation that arrived in the envelope: outputs are honoured.
    pub fn enveloped(invocation_id: String, function: &'static str) -> Self {
        Context { invocation_id, function, outputs: Some(Outputs::default()), logs: Vec::new() }
    }

    /// A context for a forwarded HTTP request: the host writes no output bindings for it.
    pub fn forwarded(invocation_id: String, function: &'static str) -> Self {
        Context { invocation_id, function, outputs: None, logs: Vec::new() }
    }

    pub fn invocation_id(&self) -> &str {
        &self.invocation_id
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    /// Records a line. Callers must never pass secrets or tokens. Control characters are
    /// escaped ([`escape`]), so a value from a request cannot forge a log line. Traced at
    /// debug level: the per-invocation summary line is the info-level record, these detail it.
    ///
    /// A forwarded request has no `Logs` to carry the line, so there it is not even formatted
    /// unless debug logging is on: negotiate logs one on every call. Pass `format_args!` rather
    /// than `format!` to keep that free.
    pub fn log(&mut self, line: impl fmt::Display) {
        let keep = self.outputs.is_some();
        if !keep && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let line = line.to_string();
        let line = match escape(&line) {
            Cow::Borrowed(_) => line,
            Cow::Owned(escaped) => escaped,
        };
        tracing::debug!(function = self.function, invocation_id = %escape(&self.invocation_id), "{line}");
        if keep {
            self.logs.push(line);
        }
    }

    /// The sink for this invocation's output bindings, or why there is none. A function that
    /// would lose work without its output (a queue message) must refuse when this fails,
    /// rather than drop the work silently.
    pub fn outputs(&mut self) -> Result<&mut Outputs, OutputsUnavailable> {
        self.outputs.as_mut().ok_or(OutputsUnavailable)
    }

    /// Whether [`Context::outputs`] would succeed, for deciding before doing any work.
    pub fn can_write_outputs(&self) -> bool {
        self.outputs.is_some()
    }

    /// Whether HTTP bodies travel as bytes. The envelope carries them as JSON text (binary
    /// content types other than octet-stream and multipart arrive mangled), so a function
    /// speaking a binary format must refuse when this is false.
    pub fn carries_binary_bodies(&self) -> bool {
        self.outputs.is_none()
    }

    pub(crate) fn finish(self) -> (Map<String, Value>, Vec<String>) {
        (self.outputs.map(|o| o.values).unwrap_or_default(), self.logs)
    }
}

/// Values for a function's output bindings, keyed by binding name (`function.json`).
#[derive(Debug, Default)]
pub struct Outputs {
    values: Map<String, Value>,
}

impl Outputs {
    /// Sets `binding` to `value`, replacing what was there.
    pub fn set(&mut self, binding: &str, value: Value) {
        self.values.insert(binding.to_string(), value);
    }

    /// Appends `value` to `binding`: an array output becomes one message per item (a queue
    /// output written several times in one invocation).
    pub fn push(&mut self, binding: &str, value: Value) {
        match self.values.entry(binding.to_string()).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(items) => items.push(value),
            other => *other = Value::Array(vec![other.take(), value]),
        }
    }

    pub fn get(&self, binding: &str) -> Option<&Value> {
        self.values.get(binding)
    }
}

/// Output bindings cannot be written for this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output bindings are written only for invocations the Functions host sends in its envelope")]
pub struct OutputsUnavailable;

/// `s` with control characters (CR, LF, NUL, ESC, ...) and backslashes written as Rust
/// escapes, so one logged value is always one line and cannot pass for another record.
/// Borrowed when there is nothing to escape, the common case.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`] as a `Display` adaptor, for `tracing` fields: `value = %Escaped(s)`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_escape_keeps_one_line() {
        assert!(matches!(escape("plain ütf-8 text"), Cow::Borrowed(_)));
        assert_eq!(escape("eve\n2026-12-02T00:00:00Z INFO forged"), "eve\\n2026-12-02T00:00:00Z INFO forged");
        assert_eq!(escape("a\r\0\u{1b}[31m\\n"), "a\\r\\u{0}\\u{1b}[31m\\\\n");
        assert_eq!(Escaped("x\ny").to_string(), "x\\ny");
    }

    #[test]
    fn test_log_lines_are_escaped() {
        let mut ctx = Context::enveloped("id".into(), "f");
        ctx.log("user eve\nINFO forged");
        let (_, logs) = ctx.finish();
        assert_eq!(logs, vec!["user eve\\nINFO forged"]);
    }

    #[test]
    fn test_outputs_capability() {
        let mut forwarded = Context::forwarded("id".into(), "f");
        assert_eq!(forwarded.outputs().err(), Some(OutputsUnavailable));
        assert!(!forwarded.can_write_outputs() && forwarded.carries_binary_bodies());

        let mut enveloped = Context::enveloped("id".into(), "f");
        let outputs = enveloped.outputs().unwrap();
        outputs.push("queue", json!({"n": 1}));
        outputs.push("queue", json!({"n": 2}));
        outputs.set("blob", json!("x"));
        let (values, _) = enveloped.finish();
        assert_eq!(Value::Object(values), json!({"queue": [{"n": 1}, {"n": 2}], "blob": "x"}));
    }
}
