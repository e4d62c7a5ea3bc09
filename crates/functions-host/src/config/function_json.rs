//! `<name>/function.json`: one trigger plus input/output bindings. The folder name is the
//! function name and, for non-forwarded invocations, the path the handler is called on.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ConfigError, expand_percent, parse_json};
use crate::ncrontab::Schedule;

/// Binding types of the extension bundle we recognise. Anything else is almost always a typo,
/// and the real host refuses it too ("The binding type(s) 'x' were not found").
const KNOWN_TYPES: &[&str] = &[
    "httpTrigger",
    "http",
    "timerTrigger",
    "serviceBusTrigger",
    "serviceBus",
    "signalRConnectionInfo",
    "signalR",
    "signalRTrigger",
    "signalRNegotiation",
    "queueTrigger",
    "queue",
    "blobTrigger",
    "blob",
    "table",
    "cosmosDBTrigger",
    "cosmosDB",
    "eventHubTrigger",
    "eventHub",
    "eventGridTrigger",
    "eventGrid",
    "sendGrid",
    "twilioSms",
    "kafkaTrigger",
    "kafka",
    "rabbitMQTrigger",
    "rabbitMQ",
    "sqlTrigger",
    "sql",
    "webPubSubTrigger",
    "webPubSub",
    "webPubSubConnection",
];

const METHODS: &[&str] = &["GET", "POST", "DELETE", "HEAD", "PATCH", "PUT", "OPTIONS", "TRACE"];

#[derive(Deserialize)]
struct RawFunction {
    bindings: Vec<Map<String, Value>>,
    #[serde(default)]
    disabled: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
}

/// One binding with `%NAME%` references resolved.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Canonical spelling from [`KNOWN_TYPES`] (the host compares case-insensitively).
    pub kind: String,
    pub direction: Direction,
    pub name: String,
    pub props: Map<String, Value>,
}

impl Binding {
    pub fn is(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }

    pub fn str_prop(&self, key: &str) -> Option<&str> {
        self.props.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).and_then(|(_, v)| v.as_str())
    }

    pub fn is_binary(&self) -> bool {
        self.str_prop("dataType").is_some_and(|d| d.eq_ignore_ascii_case("binary"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLevel {
    Anonymous,
    Function,
    Admin,
}

#[derive(Debug, Clone)]
pub enum Trigger {
    Http {
        binding: String,
        /// Route template without the prefix, e.g. `orders/{id}`.
        route: String,
        /// Upper-case methods; `None` = every method.
        methods: Option<Vec<String>>,
        auth_level: AuthLevel,
    },
    Timer {
        binding: String,
        schedule: Schedule,
        schedule_text: String,
        run_on_startup: bool,
        use_monitor: Option<bool>,
    },
    ServiceBus {
        binding: String,
        queue: String,
        binary: bool,
    },
    /// A trigger the local host does not run (reported at start).
    Unsupported {
        kind: String,
    },
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub trigger: Trigger,
    /// Every binding, in file order (trigger included).
    pub bindings: Vec<Binding>,
    pub disabled: bool,
}

impl Function {
    pub fn load(name: &str, path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Function, ConfigError> {
        let file = format!("{name}/function.json");
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, "(file)", format!("cannot read: {e}")))?;
        Self::parse(name, &file, &text, lookup)
    }

    pub fn parse(
        name: &str,
        file: &str,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Function, ConfigError> {
        let raw: RawFunction = parse_json(file, text)?;
        let disabled = match raw.disabled {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            // `"disabled": "%SETTING%"` is allowed by the host.
            Some(Value::String(s)) => {
                let (v, _) = expand_percent(&s, lookup);
                v.eq_ignore_ascii_case("true") || v == "1"
            }
            Some(_) => return Err(ConfigError::new(file, "disabled", "must be a boolean")),
        };
        let mut bindings = Vec::new();
        for (i, raw) in raw.bindings.into_iter().enumerate() {
            bindings.push(parse_binding(file, i, raw, lookup)?);
        }
        let triggers: Vec<usize> = (0..bindings.len()).filter(|&i| bindings[i].kind.ends_with("Trigger")).collect();
        let ti = match triggers.as_slice() {
            [i] => *i,
            [] => return Err(ConfigError::new(file, "bindings", "no trigger binding (exactly one is required)")),
            [_, second, ..] => {
                return Err(ConfigError::new(
                    file,
                    format!("bindings[{second}]"),
                    "a function has exactly one trigger",
                ));
            }
        };
        for (i, b) in bindings.iter().enumerate() {
            if bindings[..i].iter().any(|o| o.name.eq_ignore_ascii_case(&b.name)) {
                return Err(ConfigError::new(
                    file,
                    format!("bindings[{i}].name"),
                    format!("duplicate name {:?}", b.name),
                ));
            }
        }
        let trigger = parse_trigger(name, file, ti, &bindings[ti])?;
        for (i, b) in bindings.iter().enumerate() {
            if b.is("serviceBus") && b.direction == Direction::Out {
                let field = format!("bindings[{i}].queueName");
                let queue = b.str_prop("queueName").ok_or_else(|| {
                    ConfigError::new(file, &field, "missing (topics are not supported by the local host)")
                })?;
                // Queue names become folder names under the data folder.
                validate_queue_name(queue).map_err(|e| ConfigError::new(file, &field, e))?;
            }
            if b.is("http") && b.direction != Direction::Out {
                return Err(ConfigError::new(file, format!("bindings[{i}].direction"), "an http binding is an output"));
            }
        }
        Ok(Function { name: name.to_string(), trigger, bindings, disabled })
    }

    /// The host's `IsHttpInAndOutFunction`: exactly one input (httpTrigger) and one output (http).
    pub fn is_http_only(&self) -> bool {
        let ins: Vec<&Binding> = self.bindings.iter().filter(|b| b.direction != Direction::Out).collect();
        let outs: Vec<&Binding> = self.bindings.iter().filter(|b| b.direction != Direction::In).collect();
        ins.len() == 1 && outs.len() == 1 && ins[0].is("httpTrigger") && outs[0].is("http")
    }

    pub fn outputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(|b| b.direction != Direction::In)
    }

    pub fn inputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(|b| b.direction != Direction::Out)
    }
}

fn parse_binding(
    file: &str,
    i: usize,
    mut raw: Map<String, Value>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Binding, ConfigError> {
    let field = |f: &str| format!("bindings[{i}].{f}");
    let take_str = |raw: &mut Map<String, Value>, key: &str| -> Result<String, ConfigError> {
        match raw.remove(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) | None => Err(ConfigError::new(file, field(key), "missing")),
            Some(_) => Err(ConfigError::new(file, field(key), "must be a string")),
        }
    };
    let ty = take_str(&mut raw, "type")?;
    let kind = KNOWN_TYPES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(&ty))
        .ok_or_else(|| ConfigError::new(file, field("type"), format!("unknown binding type {ty:?}")))?
        .to_string();
    let direction = match take_str(&mut raw, "direction")?.to_ascii_lowercase().as_str() {
        "in" => Direction::In,
        "out" => Direction::Out,
        "inout" => Direction::InOut,
        other => {
            return Err(ConfigError::new(
                file,
                field("direction"),
                format!("must be \"in\" or \"out\", found {other:?}"),
            ));
        }
    };
    let name = take_str(&mut raw, "name")?;
    let name_ok = name == "$return" || name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ConfigError::new(file, field("name"), format!("not a valid binding name: {name:?}")));
    }
    let mut props = Map::new();
    for (k, v) in raw {
        let v = match v {
            Value::String(s) => {
                let (expanded, missing) = expand_percent(&s, lookup);
                if let Some(m) = missing.first() {
                    return Err(ConfigError::new(
                        file,
                        field(&k),
                        format!(
                            "%{m}% does not resolve to a value (not in Values of the settings nor the environment)"
                        ),
                    ));
                }
                Value::String(expanded)
            }
            other => other,
        };
        props.insert(k, v);
    }
    Ok(Binding { kind, direction, name, props })
}

fn parse_trigger(fname: &str, file: &str, i: usize, b: &Binding) -> Result<Trigger, ConfigError> {
    let field = |f: &str| format!("bindings[{i}].{f}");
    if b.direction != Direction::In {
        return Err(ConfigError::new(file, field("direction"), "a trigger must be \"in\""));
    }
    let get = |k: &str| b.props.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v);
    let bool_prop = |k: &str| -> Result<Option<bool>, ConfigError> {
        match get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(v)) => Ok(Some(*v)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(ConfigError::new(file, field(k), "must be a boolean")),
        }
    };
    match b.kind.as_str() {
        "httpTrigger" => {
            let auth_level = match b.str_prop("authLevel").map(str::to_ascii_lowercase).as_deref() {
                None | Some("function") => AuthLevel::Function,
                Some("anonymous") => AuthLevel::Anonymous,
                Some("admin") | Some("system") => AuthLevel::Admin,
                Some(other) => {
                    return Err(ConfigError::new(
                        file,
                        field("authLevel"),
                        format!("must be anonymous, function or admin, found {other:?}"),
                    ));
                }
            };
            let methods = match get("methods") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => {
                    let mut out = Vec::new();
                    for (j, m) in items.iter().enumerate() {
                        let m = m.as_str().map(str::to_ascii_uppercase).unwrap_or_default();
                        if !METHODS.contains(&m.as_str()) {
                            return Err(ConfigError::new(
                                file,
                                format!("bindings[{i}].methods[{j}]"),
                                format!("not an HTTP method: {:?}", items[j]),
                            ));
                        }
                        out.push(m);
                    }
                    Some(out)
                }
                Some(_) => return Err(ConfigError::new(file, field("methods"), "must be an array")),
            };
            let route = match get("route") {
                None | Some(Value::Null) => fname.to_string(),
                Some(Value::String(r)) => r.trim_matches('/').to_string(),
                Some(_) => return Err(ConfigError::new(file, field("route"), "must be a string")),
            };
            crate::route::RouteTemplate::parse(&route).map_err(|e| ConfigError::new(file, field("route"), e))?;
            Ok(Trigger::Http { binding: b.name.clone(), route, methods, auth_level })
        }
        "timerTrigger" => {
            let text = b.str_prop("schedule").ok_or_else(|| ConfigError::new(file, field("schedule"), "missing"))?;
            let schedule = Schedule::parse(text)
                .map_err(|e| ConfigError::new(file, field("schedule"), format!("invalid NCRONTAB {text:?}: {e}")))?;
            Ok(Trigger::Timer {
                binding: b.name.clone(),
                schedule,
                schedule_text: text.to_string(),
                run_on_startup: bool_prop("runOnStartup")?.unwrap_or(false),
                use_monitor: bool_prop("useMonitor")?,
            })
        }
        "serviceBusTrigger" => {
            if get("topicName").is_some() {
                return Err(ConfigError::new(file, field("topicName"), "topics are not supported by the local host"));
            }
            let queue = b.str_prop("queueName").ok_or_else(|| ConfigError::new(file, field("queueName"), "missing"))?;
            validate_queue_name(queue).map_err(|e| ConfigError::new(file, field("queueName"), e))?;
            if bool_prop("isSessionsEnabled")? == Some(true) {
                return Err(ConfigError::new(file, field("isSessionsEnabled"), "sessions are not supported locally"));
            }
            Ok(Trigger::ServiceBus { binding: b.name.clone(), queue: queue.to_string(), binary: b.is_binary() })
        }
        other => Ok(Trigger::Unsupported { kind: other.to_string() }),
    }
}

/// Service Bus entity names: letters, digits, `.`, `-`, `_` (no `/`: names become folder names).
fn validate_queue_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 260
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid queue name {name:?} (letters, digits, '.', '-', '_'; must start and end with a letter or digit)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SCHED").then(|| "*/5 * * * * *".to_string())
    }

    fn parse(text: &str) -> Result<Function, ConfigError> {
        Function::parse("f", "f/function.json", text, &env)
    }

    #[test]
    fn test_http_defaults() {
        let f = parse(r#"{"bindings":[{"type":"HttpTrigger","direction":"in","name":"req"},{"type":"http","direction":"out","name":"res"}]}"#)
            .unwrap();
        match &f.trigger {
            Trigger::Http { route, methods, auth_level, .. } => {
                assert_eq!(route, "f");
                assert!(methods.is_none());
                assert_eq!(*auth_level, AuthLevel::Function);
            }
            other => panic!("{other:?}"),
        }
        assert!(f.is_http_only());
    }

    #[test]
    fn test_extra_binding_is_not_http_only() {
        let f = parse(
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","methods":["post"]},
            {"type":"signalRConnectionInfo","direction":"in","name":"ci","hubName":"h"},
            {"type":"http","direction":"out","name":"res"}]}"#,
        )
        .unwrap();
        assert!(!f.is_http_only());
    }

    #[test]
    fn test_timer_schedule_from_setting() {
        let f = parse(r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"%SCHED%"}]}"#)
            .unwrap();
        assert!(matches!(f.trigger, Trigger::Timer { ref schedule_text, .. } if schedule_text == "*/5 * * * * *"));
    }

    #[test]
    fn test_garbage_is_an_error_not_a_panic() {
        let garbage = [
            "",
            "null",
            "[]",
            "{}",
            r#"{"bindings":[1,2]}"#,
            r#"{"bindings":[{"type":5,"direction":"in","name":"x"}]}"#,
            r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":5}]}"#,
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"r","route":"{"}]}"#,
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"r","methods":"get"}]}"#,
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"r","runOnStartup":[]}],"disabled":{}}"#,
            r#"{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"m","queueName":"../../etc"}]}"#,
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"\u00e9"}]}"#,
        ];
        for text in garbage {
            let e = parse(text).unwrap_err();
            assert_eq!(e.file, "f/function.json", "{text}");
            assert!(!e.field.is_empty() && !e.message.is_empty(), "{text}: {e}");
        }
    }

    #[test]
    fn test_errors_name_fields() {
        let cases = [
            (r#"{"bindings":[]}"#, "bindings"),
            (
                r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"* * *"}]}"#,
                "bindings[0].schedule",
            ),
            (
                r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"r","methods":["fetch"]}]}"#,
                "bindings[0].methods[0]",
            ),
            (r#"{"bindings":[{"type":"httpTrigger","direction":"sideways","name":"r"}]}"#, "bindings[0].direction"),
            (r#"{"bindings":[{"type":"httpTrigger","direction":"in"}]}"#, "bindings[0].name"),
            (r#"{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"m"}]}"#, "bindings[0].queueName"),
            (
                r#"{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"m","queueName":"q"},{"type":"serviceBus","direction":"out","name":"o"}]}"#,
                "bindings[1].queueName",
            ),
            (r#"{"bindings":{"type":"x"}}"#, "bindings"),
            (
                r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"r","authLevel":"public"}]}"#,
                "bindings[0].authLevel",
            ),
        ];
        for (text, field) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert_eq!(e.file, "f/function.json");
        }
    }

    #[test]
    fn test_queue_names() {
        assert!(validate_queue_name("marketplace-sync").is_ok());
        assert!(validate_queue_name("a.b_c").is_ok());
        for bad in ["", "../x", "a/b", "-a", "a-", "with space"] {
            assert!(validate_queue_name(bad).is_err(), "{bad}");
        }
    }
}
