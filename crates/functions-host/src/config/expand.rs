//! `%NAME%` app-setting references, as used in binding properties and handler arguments.

/// Expands every `%NAME%` in `input` with `lookup`. Returns the expanded text and the names that
/// did not resolve (left out of the text). Bindings treat unresolved names as an error; handler
/// arguments silently drop them, as the host's `SanitizeExpandedArgument` does.
pub fn expand_percent(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(input.len());
    let mut missing = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) if end > 0 && is_setting_name(&after[..end]) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => missing.push(name.to_string()),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, missing)
}

fn is_setting_name(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "Q").then(|| "orders".to_string())
    }

    #[test]
    fn test_expands_known_and_reports_missing() {
        assert_eq!(expand_percent("%Q%", &lookup), ("orders".into(), vec![]));
        assert_eq!(expand_percent("a-%Q%-%X%", &lookup), ("a-orders-".into(), vec!["X".to_string()]));
    }

    #[test]
    fn test_lone_percent_is_literal() {
        assert_eq!(expand_percent("100%", &lookup).0, "100%");
        assert_eq!(expand_percent("5% of %Q%", &lookup).0, "5% of orders");
        assert_eq!(expand_percent("%%", &lookup).0, "%%");
    }
}
