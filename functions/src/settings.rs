//! Every setting the handler reads, parsed once at start into one typed value.
//!
//! The handler must not half-start: a process that binds and then fails on the first request
//! hides configuration mistakes behind 500s. So every setting is checked up front, all problems
//! are reported together (by name, never by value: values are often secrets), and `main`
//! exits non-zero before binding.

use meschain_signalr::connection_string::{ConnectionString, Credential};
use meschain_signalr::{AccessKey, token};

use crate::auth::AuthConfig;
use crate::cors::CorsPolicy;
use crate::signalr_rest::entra;

/// The setting names, shared with the CLI and the local tools.
pub use meschain_model::settings as names;

const TOKEN_LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;

/// The SignalR instance the app talks to.
#[derive(Debug, Clone)]
pub struct SignalRSettings {
    /// With `AuthType`, REST calls carry an Entra token and client tokens are signed with a
    /// key the service issues (https://learn.microsoft.com/azure/azure-signalr/signalr-concept-client-negotiation).
    pub connection: ConnectionString,
    /// The access key client tokens are signed with; `None` with `AuthType`.
    pub primary_key: Option<AccessKey>,
    /// The instance's other key, accepted on upstream signatures during rotation (and the
    /// only upstream key when the primary uses `AuthType`).
    pub secondary_key: Option<AccessKey>,
    /// Another instance REST calls fail over to when the primary keeps failing; access key or
    /// `AuthType`.
    pub fallback: Option<ConnectionString>,
}

impl SignalRSettings {
    /// Keys accepted on incoming signatures: primary first.
    pub fn keys(&self) -> Vec<AccessKey> {
        self.primary_key.iter().chain(&self.secondary_key).cloned().collect()
    }
}

/// All of the app's settings. `Debug` shows no secret (every secret type redacts itself).
#[derive(Debug)]
pub struct Settings {
    pub signalr: SignalRSettings,
    pub auth: AuthConfig,
    pub cors: CorsPolicy,
    pub token_lifetime_secs: u64,
    /// Six-field NCRONTAB; used by the host's timer trigger, validated here so a typo fails early.
    pub admin_broadcast_schedule: String,
    pub sync_queue_name: String,
    /// The store (embedded or Cosmos DB) and the analytics recorder.
    pub store: meschain_store::StoreSettings,
    /// Currency of the dashboard's revenue figures.
    pub currency: String,
    /// `marketplace-sync`'s time budget and lease.
    pub sync: crate::sync_runtime::SyncSettings,
}

/// One problem with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    pub name: &'static str,
    pub problem: String,
}

/// Everything wrong with the settings, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid setting(s):\n{}", .0.len(), list(.0))]
pub struct SettingsError(pub Vec<SettingProblem>);

fn list(problems: &[SettingProblem]) -> String {
    problems.iter().map(|p| format!("  {}: {}\n", p.name, p.problem)).collect()
}

impl Settings {
    /// Reads settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get`; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();
        let mut report = |name: &'static str, problem: String| problems.push(SettingProblem { name, problem });

        let signalr = parse_signalr(&get, &mut report);
        let auth = match AuthConfig::from_settings(&get) {
            Ok(a) => Some(a),
            Err(invalid) => {
                for i in invalid {
                    report(i.name, i.reason.to_string());
                }
                None
            }
        };

        let cors = match get(names::CORS_ALLOWED_ORIGINS) {
            None => Some(CorsPolicy::default()),
            Some(raw) => CorsPolicy::parse(&raw).map_err(|e| report(names::CORS_ALLOWED_ORIGINS, e)).ok(),
        };

        let token_lifetime_secs = match get(names::SIGNALR_TOKEN_LIFETIME_SECONDS) {
            None => Some(token::DEFAULT_LIFETIME_SECS),
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) if TOKEN_LIFETIME_RANGE.contains(&n) => Some(n),
                _ => {
                    report(
                        names::SIGNALR_TOKEN_LIFETIME_SECONDS,
                        format!(
                            "must be a whole number of seconds from {} to {}",
                            TOKEN_LIFETIME_RANGE.start(),
                            TOKEN_LIFETIME_RANGE.end()
                        ),
                    );
                    None
                }
            },
        };

        // A required setting that must pass a shape check.
        let mut required = |name: &'static str, valid: fn(&str) -> bool, rule: &str| match get(name) {
            None => {
                report(name, format!("is required: {rule}"));
                None
            }
            Some(v) if valid(&v) => Some(v),
            Some(_) => {
                report(name, format!("must be {rule}"));
                None
            }
        };
        let schedule = required(
            names::ADMIN_BROADCAST_SCHEDULE,
            looks_like_ncrontab,
            "a six-field NCRONTAB expression (second minute hour day month day-of-week), e.g. */5 * * * * *",
        );
        let queue = required(
            names::SYNC_QUEUE_NAME,
            valid_queue_name,
            "1-260 characters of letters, digits, '.', '-', '_', '/', starting and ending with a letter or digit",
        );

        // The store reads its own settings; a problem message starts with the setting's name.
        let store = meschain_store::StoreSettings::from_lookup(get)
            .map_err(|e| {
                let name =
                    meschain_store::settings::names::ALL.into_iter().find(|n| e.starts_with(n)).unwrap_or("store");
                report(name, e.trim_start_matches(name).trim().to_string());
            })
            .ok();
        let currency = match get(names::DASHBOARD_CURRENCY) {
            None => Some("TRY".to_string()),
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c),
            Some(_) => {
                report(names::DASHBOARD_CURRENCY, "must be a three-letter ISO 4217 code, e.g. TRY".into());
                None
            }
        };

        if let Err(conflicts) = meschain_marketplace::selection::check(&get) {
            conflicts.into_iter().for_each(|problem| report(names::MARKETPLACE_SANDBOX, problem));
        }

        // Optional: only the `catalog-sync` timer uses it, and the host checks it too.
        if let Some(v) = get(names::CATALOG_SYNC_SCHEDULE)
            && !looks_like_ncrontab(&v)
        {
            report(names::CATALOG_SYNC_SCHEDULE, "must be a six-field NCRONTAB expression, e.g. 0 */15 * * * *".into());
        }
        let sync = crate::sync_runtime::SyncSettings::from_lookup(&get)
            .map_err(|problems| problems.into_iter().for_each(|(name, problem)| report(name, problem)))
            .ok();

        match (signalr, auth, cors, token_lifetime_secs, schedule, queue, store, currency, sync) {
            (
                Some(signalr),
                Some(auth),
                Some(cors),
                Some(token_lifetime_secs),
                Some(admin_broadcast_schedule),
                Some(sync_queue_name),
                Some(store),
                Some(currency),
                Some(sync),
            ) if problems.is_empty() => Ok(Settings {
                signalr,
                auth,
                cors,
                token_lifetime_secs,
                admin_broadcast_schedule,
                sync_queue_name,
                store,
                currency,
                sync,
            }),
            _ => Err(SettingsError(problems)),
        }
    }
}

fn parse_signalr(
    get: &impl Fn(&str) -> Option<String>,
    report: &mut impl FnMut(&'static str, String),
) -> Option<SignalRSettings> {
    let primary = match get(names::SIGNALR_CONNECTION_STRING) {
        None => {
            report(names::SIGNALR_CONNECTION_STRING, "is required".into());
            return None;
        }
        Some(raw) => {
            raw.parse::<ConnectionString>().map_err(|e| report(names::SIGNALR_CONNECTION_STRING, e.to_string())).ok()?
        }
    };
    if let Some(problem) = entra_problem(&primary) {
        report(names::SIGNALR_CONNECTION_STRING, problem);
        return None;
    }
    let primary_key = primary.access_key().cloned();
    let secondary_key = match get(names::SIGNALR_SECONDARY_CONNECTION_STRING) {
        None => None,
        Some(raw) => {
            let name = names::SIGNALR_SECONDARY_CONNECTION_STRING;
            let cs = raw.parse::<ConnectionString>().map_err(|e| report(name, e.to_string())).ok()?;
            if cs.endpoint.host_str() != primary.endpoint.host_str() {
                report(name, format!("must point at the same instance as {}", names::SIGNALR_CONNECTION_STRING));
                return None;
            }
            match cs.credential {
                Credential::AccessKey(k) => Some(k),
                // This setting exists only to supply a second key for upstream signatures;
                // an AuthType string has none, so accepting it would silently do nothing.
                Credential::EntraId(_) => {
                    report(
                        name,
                        "must carry an AccessKey (it supplies the key upstream signatures are checked with); \
                         Entra ID belongs in AzureSignalRConnectionString"
                            .into(),
                    );
                    return None;
                }
            }
        }
    };
    if primary_key.is_none() && secondary_key.is_none() {
        // The service signs upstream calls with the instance's access keys (§E.3). The official
        // extension skips the check for identity connections; this handler never runs hub
        // methods for an unverified caller, so it needs a key to check them with.
        report(
            names::SIGNALR_SECONDARY_CONNECTION_STRING,
            format!(
                "is required when {} uses AuthType: upstream requests (connection-events) are verified with an \
                 AccessKey of the instance",
                names::SIGNALR_CONNECTION_STRING
            ),
        );
        return None;
    }
    let fallback = match get(names::SIGNALR_FALLBACK_CONNECTION_STRING) {
        None => None,
        Some(raw) => {
            let name = names::SIGNALR_FALLBACK_CONNECTION_STRING;
            let cs = raw.parse::<ConnectionString>().map_err(|e| report(name, e.to_string())).ok()?;
            if let Some(problem) = entra_problem(&cs) {
                report(name, problem);
                return None;
            }
            Some(cs)
        }
    };
    Some(SignalRSettings { connection: primary, primary_key, secondary_key, fallback })
}

/// What is wrong with an `AuthType` connection string's credential settings, if anything.
fn entra_problem(cs: &ConnectionString) -> Option<String> {
    match &cs.credential {
        Credential::AccessKey(_) => None,
        Credential::EntraId(auth) => entra::check(auth).err().map(|e| e.0),
    }
}

/// A shape check, not a parser: six fields of NCRONTAB characters. The host parses it for real.
fn looks_like_ncrontab(s: &str) -> bool {
    let fields: Vec<&str> = s.split_whitespace().collect();
    fields.len() == 6 && fields.iter().all(|f| f.bytes().all(|b| b.is_ascii_alphanumeric() || b"*/,-?".contains(&b)))
}

/// Service Bus entity naming rules.
fn valid_queue_name(s: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (1..=260).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        && ends_ok(s.chars().next())
        && ends_ok(s.chars().last())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    pub(crate) fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            (
                names::SIGNALR_CONNECTION_STRING,
                "Endpoint=http://localhost;Port=8888;AccessKey=primary-key;Version=1.0;".to_string(),
            ),
            (names::AUTH_JWT_SECRET, SECRET.to_string()),
            (names::AUTH_ISSUER, "meschain-dev".to_string()),
            (names::AUTH_AUDIENCE, "meschain-realtime".to_string()),
            (names::CORS_ALLOWED_ORIGINS, "http://localhost:5173, https://admin.meschain-sync.com".to_string()),
            (names::ADMIN_BROADCAST_SCHEDULE, "*/5 * * * * *".to_string()),
            (names::SYNC_QUEUE_NAME, "marketplace-sync".to_string()),
        ])
    }

    pub(crate) fn load(map: &HashMap<&'static str, String>) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|n| map.get(n).cloned())
    }

    fn problems(map: &HashMap<&'static str, String>) -> Vec<(&'static str, String)> {
        load(map).unwrap_err().0.into_iter().map(|p| (p.name, p.problem)).collect()
    }

    #[test]
    fn test_valid_settings() {
        let s = load(&base()).unwrap();
        assert_eq!(s.token_lifetime_secs, 3600);
        assert_eq!(s.signalr.keys().len(), 1);
        assert!(s.cors.allows("https://admin.meschain-sync.com"));
        assert!(!format!("{s:?}").contains(SECRET), "Debug must not leak the JWT secret");
        assert!(!format!("{s:?}").contains("primary-key"), "Debug must not leak the access key");
    }

    #[test]
    fn test_all_missing_reports_every_required_name() {
        let names: Vec<_> = problems(&HashMap::new()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![
                names::SIGNALR_CONNECTION_STRING,
                names::AUTH_JWT_SECRET,
                names::ADMIN_BROADCAST_SCHEDULE,
                names::SYNC_QUEUE_NAME
            ]
        );
    }

    #[test]
    fn test_invalid_values_are_named_not_echoed() {
        let mut m = base();
        m.insert(names::AUTH_JWT_SECRET, "short-secret-value".into());
        m.insert(names::SIGNALR_TOKEN_LIFETIME_SECONDS, "forever".into());
        m.insert(names::CORS_ALLOWED_ORIGINS, "*".into());
        m.insert(names::AUTH_TRUST_EASY_AUTH, "maybe".into());
        m.insert(names::ADMIN_BROADCAST_SCHEDULE, "*/5 * * * *".into());
        m.insert(names::SYNC_QUEUE_NAME, "-bad-".into());
        m.insert(names::SIGNALR_SECONDARY_CONNECTION_STRING, "Endpoint=http://other;AccessKey=secondary-secret".into());
        let err = load(&m).unwrap_err();
        let text = err.to_string();
        for leaked in ["short-secret-value", "secondary-secret", "forever"] {
            assert!(!text.contains(leaked), "{text}");
        }
        let named: Vec<_> = err.0.iter().map(|p| p.name).collect();
        for n in [
            names::SIGNALR_SECONDARY_CONNECTION_STRING,
            names::AUTH_JWT_SECRET,
            names::AUTH_TRUST_EASY_AUTH,
            names::CORS_ALLOWED_ORIGINS,
            names::SIGNALR_TOKEN_LIFETIME_SECONDS,
            names::ADMIN_BROADCAST_SCHEDULE,
            names::SYNC_QUEUE_NAME,
        ] {
            assert!(named.contains(&n), "{n} not reported in {text}");
        }
    }

    #[test]
    fn test_connection_string_problems() {
        let mut m = base();
        m.insert(names::SIGNALR_CONNECTION_STRING, "AccessKey=k".into());
        assert!(problems(&m)[0].1.contains("Endpoint"));
    }

    #[test]
    fn test_entra_id_connection_strings() {
        const MSI: &str = "Endpoint=https://x.service.signalr.net;AuthType=azure.msi;ClientId=cid";
        const SECONDARY: &str = "Endpoint=https://x.service.signalr.net;AccessKey=secondary-key";
        let mut m = base();
        m.insert(names::SIGNALR_CONNECTION_STRING, MSI.into());
        // No access key anywhere: upstream calls could not be verified.
        let p = problems(&m);
        assert_eq!(p[0].0, names::SIGNALR_SECONDARY_CONNECTION_STRING);
        assert!(p[0].1.contains("AuthType") && p[0].1.contains("upstream"), "{}", p[0].1);

        m.insert(names::SIGNALR_SECONDARY_CONNECTION_STRING, SECONDARY.into());
        let s = load(&m).unwrap();
        assert!(s.signalr.primary_key.is_none());
        assert_eq!(s.signalr.keys(), vec![AccessKey::new("secondary-key")]);

        // Incomplete or unsupported application credentials are named, secrets never echoed.
        for (cs, expect) in [
            ("Endpoint=https://x.service.signalr.net;AuthType=azure.app;ClientId=c", "ClientId, TenantId"),
            (
                "Endpoint=https://x.service.signalr.net;AuthType=azure.app;ClientId=c;TenantId=t;clientCert=/c.pem",
                "clientCert is not supported",
            ),
            ("Endpoint=https://x.service.signalr.net;AuthType=azure.msi;ClientId=", "must not be empty"),
            ("Endpoint=https://x.service.signalr.net;AuthType=kerberos", "AuthType kerberos"),
        ] {
            m.insert(names::SIGNALR_CONNECTION_STRING, cs.into());
            let p = problems(&m);
            assert_eq!(p[0].0, names::SIGNALR_CONNECTION_STRING, "{cs}");
            assert!(p[0].1.contains(expect), "{cs}: {}", p[0].1);
        }
        m.insert(
            names::SIGNALR_CONNECTION_STRING,
            "Endpoint=https://x.service.signalr.net;AuthType=azure.app;ClientId=c;TenantId=t;ClientSecret=app-secret"
                .into(),
        );
        let s = load(&m).unwrap();
        assert!(!format!("{s:?}").contains("app-secret"));

        // The secondary only supplies an upstream key, so it must have one.
        m.insert(names::SIGNALR_SECONDARY_CONNECTION_STRING, MSI.into());
        assert!(problems(&m)[0].1.contains("must carry an AccessKey"));

        // A fallback instance may use Entra ID, with the same checks.
        let mut m = base();
        m.insert(
            names::SIGNALR_FALLBACK_CONNECTION_STRING,
            "Endpoint=https://y.service.signalr.net;AuthType=azure".into(),
        );
        assert!(load(&m).unwrap().signalr.fallback.is_some());
        m.insert(
            names::SIGNALR_FALLBACK_CONNECTION_STRING,
            "Endpoint=https://y.service.signalr.net;AuthType=aad;ClientId=c;TenantId=t;clientCert=/c.pem".into(),
        );
        assert_eq!(problems(&m)[0].0, names::SIGNALR_FALLBACK_CONNECTION_STRING);
    }

    #[test]
    fn test_secondary_key_and_jwks_choices() {
        let mut m = base();
        m.insert(
            names::SIGNALR_SECONDARY_CONNECTION_STRING,
            "Endpoint=http://localhost;Port=8888;AccessKey=secondary-key".into(),
        );
        m.insert(names::AUTH_JWKS_URL, "https://login.example.com/keys".into());
        let s = load(&m).unwrap();
        assert_eq!(s.signalr.keys().len(), 2);
        assert!(matches!(s.auth.jwks, Some(crate::auth::JwksSource::Url(_))));

        m.insert(names::AUTH_OIDC_ISSUER, "https://login.example.com/".into());
        assert!(problems(&m).iter().any(|(n, _)| *n == names::AUTH_OIDC_ISSUER));

        let mut m = base();
        m.insert(names::AUTH_JWKS_URL, "http://evil.example.com/keys".into());
        assert!(problems(&m).iter().any(|(n, _)| *n == names::AUTH_JWKS_URL));
        m.insert(names::AUTH_JWKS_URL, "http://127.0.0.1:9/keys".into());
        assert!(load(&m).is_ok());
    }

    #[test]
    fn test_easy_auth_alone_is_an_identity_source() {
        let mut m = base();
        m.remove(names::AUTH_JWT_SECRET);
        assert!(problems(&m).iter().any(|(_, p)| p.contains("no caller could authenticate")));
        m.insert(names::AUTH_TRUST_EASY_AUTH, "TRUE".into());
        assert!(load(&m).unwrap().auth.trust_easy_auth);
    }

    #[test]
    fn test_lifetime_bounds() {
        let mut m = base();
        for (v, ok) in [("60", true), ("86400", true), ("59", false), ("86401", false), ("-1", false), ("1e3", false)] {
            m.insert(names::SIGNALR_TOKEN_LIFETIME_SECONDS, v.into());
            assert_eq!(load(&m).is_ok(), ok, "{v}");
        }
    }

    #[test]
    fn test_shape_checks() {
        assert!(looks_like_ncrontab("0 */5 * * * MON-FRI"));
        assert!(!looks_like_ncrontab("0 */5 * * *"));
        assert!(!looks_like_ncrontab("0 */5 * * * * *"));
        assert!(!looks_like_ncrontab("0 $(rm) * * * *"));
        assert!(valid_queue_name("marketplace-sync"));
        assert!(valid_queue_name("a"));
        assert!(!valid_queue_name("a b"));
        assert!(!valid_queue_name(&"a".repeat(261)));
    }
}
