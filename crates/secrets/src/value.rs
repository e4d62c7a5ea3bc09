//! A secret's value: shown to no one by `Debug` or `Display`, wiped from memory when dropped.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret value. Cloning shares one allocation; `Debug` prints `SecretValue(<redacted>)`.
/// The only way to the text is [`SecretValue::expose`], so every use is easy to find.
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroizing<String>>);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(Arc::new(Zeroizing::new(value.into())))
    }

    /// The secret text, for the one place that needs it (signing, a connection string parser).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        // Only used to notice rotation; not on a path an attacker can time.
        self.expose() == other.expose()
    }
}

impl Eq for SecretValue {}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_debug_is_redacted() {
        let v = SecretValue::new("hunter2-hunter2");
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted>)");
        assert_eq!(format!("{:?}", Some(v.clone())), "Some(SecretValue(<redacted>))");
        assert_eq!(v.expose(), "hunter2-hunter2");
        assert_eq!(v, SecretValue::new("hunter2-hunter2"));
        assert_ne!(v, SecretValue::new("other"));
    }
}
