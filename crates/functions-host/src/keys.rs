//! Function keys for `authLevel: function` (and the master key for `admin`).
//!
//! The keys come from the settings (`FUNCTIONS_FUNCTION_KEY` / `FUNCTIONS_MASTER_KEY` in
//! `Values`) or are generated once and kept in `<data>/keys.json`, so a key printed at start keeps
//! working across restarts of `meschain dev`. `Debug` never prints them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use axum::http::HeaderMap;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::{AuthLevel, Settings};

pub const FUNCTION_KEY_SETTING: &str = "FUNCTIONS_FUNCTION_KEY";
pub const MASTER_KEY_SETTING: &str = "FUNCTIONS_MASTER_KEY";

#[derive(Clone, Serialize, Deserialize)]
pub struct Keys {
    pub function: String,
    pub master: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

fn generate() -> String {
    let b: [u8; 30] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Constant-time comparison: keys must not leak through response timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Keys {
    pub fn load(settings: &Settings, data_dir: &Path) -> std::io::Result<Keys> {
        let path = data_dir.join("keys.json");
        let stored: Option<Keys> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let stored = match stored {
            Some(k) => k,
            None => {
                let k = Keys { function: generate(), master: generate() };
                std::fs::create_dir_all(data_dir)?;
                let tmp = path.with_extension("json.tmp");
                // Owner-only: these are credentials.
                let mut f =
                    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
                std::io::Write::write_all(&mut f, &serde_json::to_vec(&k).expect("serialisable"))?;
                std::fs::rename(&tmp, &path)?;
                k
            }
        };
        Ok(Keys {
            function: settings.values.get(FUNCTION_KEY_SETTING).cloned().unwrap_or(stored.function),
            master: settings.values.get(MASTER_KEY_SETTING).cloned().unwrap_or(stored.master),
        })
    }

    /// The level a request's key grants (`?code=` or `x-functions-key`), or `None` without a valid key.
    pub fn authorize(&self, query: Option<&str>, headers: &HeaderMap) -> Option<AuthLevel> {
        let from_header = headers.get("x-functions-key").and_then(|v| v.to_str().ok()).map(str::to_string);
        let from_query = query.and_then(|q| {
            q.split('&').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k == "code").then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().to_string())
            })
        });
        let key = from_header.or(from_query)?;
        if same(&key, &self.master) {
            Some(AuthLevel::Admin)
        } else if same(&key, &self.function) {
            Some(AuthLevel::Function)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_authorize() {
        let k = Keys { function: "fk".into(), master: "mk".into() };
        let mut h = HeaderMap::new();
        assert_eq!(k.authorize(Some("code=fk"), &h), Some(AuthLevel::Function));
        assert_eq!(k.authorize(Some("a=1&code=mk"), &h), Some(AuthLevel::Admin));
        assert_eq!(k.authorize(Some("code=nope"), &h), None);
        assert_eq!(k.authorize(None, &h), None);
        h.insert("x-functions-key", "fk".parse().unwrap());
        assert_eq!(k.authorize(None, &h), Some(AuthLevel::Function));
        assert!(!format!("{k:?}").contains("fk"));
    }

    #[test]
    fn test_keys_persist_and_settings_override() {
        let d = std::env::temp_dir().join(format!("fh-keys-{}-{}", std::process::id(), rand::random::<u32>()));
        let a = Keys::load(&Settings::default(), &d).unwrap();
        let b = Keys::load(&Settings::default(), &d).unwrap();
        assert_eq!(a.function, b.function);
        let mut s = Settings::default();
        s.values.insert(FUNCTION_KEY_SETTING.into(), "mine".into());
        assert_eq!(Keys::load(&s, &d).unwrap().function, "mine");
    }
}
