//! Reading an app root the way Core Tools does: `host.json`, every `*/function.json`, and
//! `local.settings.json` (falling back to `local.settings.example.json`).
//!
//! Each file is first deserialised into typed structs (with `serde_path_to_error`, so a type error
//! names the JSON path), then validated; every error names the file and the field, because the
//! person reading it has to open that file and fix that field.

mod expand;
mod function_json;
mod host_json;
mod settings;

use std::path::{Path, PathBuf};

pub use expand::expand_percent;
pub use function_json::{AuthLevel, Binding, Function, Trigger};
pub use host_json::{CustomHandler, HostConfig};
pub use settings::Settings;

/// A configuration error: which file, which field, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(file: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { file: file.to_string(), field: field.into(), message: message.into() }
    }

    /// Turns a deserialisation error into one naming the JSON path that failed.
    pub(crate) fn from_serde(file: &str, err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let field = if path == "." || path.is_empty() { "(document)".to_string() } else { path };
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("invalid JSON at line {} column {}: {inner}", inner.line(), inner.column())
        } else {
            strip_position(&inner.to_string())
        };
        Self::new(file, field, message)
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Deserialises `text` as `T`, reporting the failing JSON path.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError::from_serde(file, e))?;
    de.end().map_err(|e| ConfigError::new(file, "(document)", format!("trailing characters: {e}")))?;
    Ok(value)
}

/// Everything `meschain dev` needs to know about an app root.
#[derive(Debug)]
pub struct App {
    pub root: PathBuf,
    pub host: HostConfig,
    pub settings: Settings,
    /// Sorted by name so start-up output and tests are deterministic.
    pub functions: Vec<Function>,
}

impl App {
    /// Loads and validates the app root. `env` is the process environment used for `%NAME%`
    /// references that the settings do not define (Core Tools also falls back to it).
    pub fn load(root: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<App, ConfigError> {
        let root = root.to_path_buf();
        let host = HostConfig::load(&root)?;
        let settings = Settings::load(&root)?;
        let lookup = |name: &str| settings.values.get(name).cloned().or_else(|| env(name));
        let mut functions = Vec::new();
        let entries = std::fs::read_dir(&root)
            .map_err(|e| ConfigError::new(&root.display().to_string(), "(directory)", e.to_string()))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for dir in dirs {
            let file = dir.join("function.json");
            if !file.is_file() {
                continue;
            }
            let name = dir.file_name().unwrap_or_default().to_string_lossy().to_string();
            let mut f = Function::load(&name, &file, &lookup)?;
            // Core Tools and the host also disable a function with this app setting.
            let setting = format!("AzureWebJobs.{name}.Disabled");
            if lookup(&setting).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
                f.disabled = true;
            }
            functions.push(f);
        }
        Ok(App { root, host, settings, functions })
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fh-config-{tag}-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const HOST: &str = r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}},
        "extensions":{"http":{"routePrefix":"api"},"serviceBus":{"maxConcurrentCalls":4}}}"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn test_loads_app_with_example_settings_and_resolves_references() {
        let d = tempdir("ok");
        write(&d, "host.json", HOST);
        write(
            &d,
            "local.settings.example.json",
            r#"{"IsEncrypted":false,"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom","QUEUE":"marketplace-sync"},
               "Host":{"LocalHttpPort":7072,"CORS":"*","CORSCredentials":false}}"#,
        );
        write(
            &d,
            "sync/function.json",
            r#"{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"msg","queueName":"%QUEUE%","connection":"SB"}]}"#,
        );
        write(
            &d,
            "negotiate/function.json",
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"anonymous","methods":["post"]},
               {"type":"http","direction":"out","name":"res"}]}"#,
        );
        let app = App::load(&d, &no_env).unwrap();
        assert_eq!(app.host.local_settings_port(&app.settings), 7072);
        assert_eq!(app.host.max_concurrent_calls, 4);
        assert_eq!(app.functions.len(), 2);
        match &app.function("sync").unwrap().trigger {
            Trigger::ServiceBus { queue, .. } => assert_eq!(queue, "marketplace-sync"),
            other => panic!("{other:?}"),
        }
        assert!(app.function("negotiate").unwrap().is_http_only());
        assert!(!app.function("sync").unwrap().disabled);
        let env = |n: &str| (n == "AzureWebJobs.sync.Disabled").then(|| "true".to_string());
        assert!(App::load(&d, &env).unwrap().function("sync").unwrap().disabled);
    }

    #[test]
    fn test_unknown_binding_type_names_file_and_field() {
        let d = tempdir("badtype");
        write(&d, "host.json", HOST);
        write(&d, "negotiate/function.json", r#"{"bindings":[{"type":"htpTrigger","direction":"in","name":"req"}]}"#);
        let err = App::load(&d, &no_env).unwrap_err().to_string();
        assert_eq!(err, r#"negotiate/function.json: bindings[0].type: unknown binding type "htpTrigger""#);
    }

    #[test]
    fn test_type_error_names_json_path() {
        let d = tempdir("badhost");
        write(&d, "host.json", r#"{"version":"2.0","extensions":{"serviceBus":{"maxConcurrentCalls":"many"}}}"#);
        let err = App::load(&d, &no_env).unwrap_err();
        assert_eq!(err.file, "host.json");
        assert_eq!(err.field, "extensions.serviceBus.maxConcurrentCalls");
    }

    #[test]
    fn test_unresolved_reference_is_an_error() {
        let d = tempdir("unres");
        write(&d, "host.json", HOST);
        write(
            &d,
            "t/function.json",
            r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"%NOPE%"}]}"#,
        );
        let err = App::load(&d, &no_env).unwrap_err().to_string();
        assert!(err.starts_with("t/function.json: bindings[0].schedule: "), "{err}");
        assert!(err.contains("NOPE"), "{err}");
    }

    #[test]
    fn test_bad_settings_value_names_field() {
        let d = tempdir("badsettings");
        write(&d, "host.json", HOST);
        write(&d, "local.settings.json", r#"{"Values":{"A":1}}"#);
        let err = App::load(&d, &no_env).unwrap_err();
        assert_eq!(err.file, "local.settings.json");
        assert_eq!(err.field, "Values.A");
    }

    #[test]
    fn test_missing_host_json_is_an_error() {
        let d = tempdir("nohost");
        let err = App::load(&d, &no_env).unwrap_err();
        assert_eq!(err.file, "host.json");
    }
}
