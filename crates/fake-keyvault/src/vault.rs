//! The vault: secrets with versions, the secrets `GET` of Key Vault's data plane, its
//! challenge-based authentication and its error bodies, and injectable faults.
//!
//! Followed from the Key Vault REST reference (https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret): `GET /secrets/{name}/{version}?api-version=V`,
//! with `/secrets/{name}` and `/secrets/{name}/` for the latest version (the Rust SDK sends the
//! trailing slash); any api-version value; integer Unix times; a 401 carrying exactly one
//! `WWW-Authenticate: Bearer authorization="…", resource="https://vault.azure.net"`; error
//! bodies `{"error":{"code","message","innererror"?}}` with the captured codes and messages.
//! Names are case-insensitive, as in Key Vault.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The tenant named in the challenge (the client ignores it; it is there to look real).
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The resource named in the challenge: the one real vaults name.
pub const RESOURCE: &str = "https://vault.azure.net";

/// One version of a secret.
#[derive(Clone)]
struct Version {
    id: String,
    value: String,
    enabled: bool,
    created: i64,
    updated: i64,
    content_type: Option<String>,
}

/// A failure to inject, for `count` requests (all, when absent) to one secret (any, when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Accept the request and never answer.
    Hang,
    /// Answer 200 with a body that is not a secret.
    Garbage,
    /// 429 Throttled.
    Throttle,
    /// 403 Forbidden / ForbiddenByRbac.
    Forbidden,
    /// 500.
    ServerError,
}

/// Counters for tests: how the vault was used.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Successful secret reads, by secret name.
    pub reads: HashMap<String, u64>,
    /// 401 challenges sent.
    pub challenges: u64,
    /// Tokens handed out by the identity endpoint.
    pub tokens_issued: u64,
    /// `client_id`s asked for at the identity endpoint (user-assigned identities).
    pub identity_client_ids: Vec<String>,
    /// Faults served.
    pub faults: u64,
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, Vec<Version>>,
    faults: Vec<Fault>,
    tokens: HashSet<String>,
    stats: Stats,
}

/// The vault's state, shared by the vault endpoint, the control API and in-process tests.
#[derive(Clone, Default)]
pub struct VaultState {
    inner: Arc<Mutex<Inner>>,
}

impl VaultState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a new version of `name` holding `value`; it becomes the latest. Returns its id.
    pub fn set_secret(&self, name: &str, value: &str) -> String {
        self.set_secret_with(name, value, None)
    }

    pub fn set_secret_with(&self, name: &str, value: &str, content_type: Option<String>) -> String {
        let now = unix_now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let version = Version {
            id: id.clone(),
            value: value.to_owned(),
            enabled: true,
            created: now,
            updated: now,
            content_type,
        };
        self.lock().secrets.entry(name.to_ascii_lowercase()).or_default().push(version);
        id
    }

    /// Enables or disables a version (the latest when `version` is `None`). False if absent.
    pub fn set_enabled(&self, name: &str, version: Option<&str>, enabled: bool) -> bool {
        let mut inner = self.lock();
        let Some(versions) = inner.secrets.get_mut(&name.to_ascii_lowercase()) else { return false };
        let target = match version {
            Some(v) => versions.iter_mut().find(|x| x.id.eq_ignore_ascii_case(v)),
            None => versions.last_mut(),
        };
        target
            .map(|v| {
                v.enabled = enabled;
                v.updated = unix_now();
            })
            .is_some()
    }

    /// Deletes every version of `name`. False if absent.
    pub fn delete_secret(&self, name: &str) -> bool {
        self.lock().secrets.remove(&name.to_ascii_lowercase()).is_some()
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// A bearer token the vault accepts from now on.
    pub fn accept_token(&self, token: &str) {
        self.lock().tokens.insert(token.to_owned());
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Successful reads of `name` so far.
    pub fn reads(&self, name: &str) -> u64 {
        self.lock().stats.reads.get(&name.to_ascii_lowercase()).copied().unwrap_or(0)
    }

    pub(crate) fn issue_token(&self, client_id: Option<String>) -> String {
        let token = format!("fake-mi-{}", uuid::Uuid::new_v4().simple());
        let mut inner = self.lock();
        inner.tokens.insert(token.clone());
        inner.stats.tokens_issued += 1;
        inner.stats.identity_client_ids.extend(client_id);
        token
    }

    /// The first fault that applies to `name`, used up by one.
    fn take_fault(&self, name: &str) -> Option<FaultKind> {
        let mut inner = self.lock();
        let i = inner.faults.iter().position(|f| f.secret.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(name)))?;
        let kind = inner.faults[i].kind;
        match &mut inner.faults[i].count {
            Some(1) => {
                inner.faults.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        inner.stats.faults += 1;
        Some(kind)
    }
}

/// The vault's HTTP API (served over TLS by [`crate::FakeVault`]).
pub fn router(state: VaultState) -> Router {
    Router::new()
        .route("/secrets/{name}", get(latest))
        .route("/secrets/{name}/", get(latest))
        .route("/secrets/{name}/{version}", get(versioned))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NotFound", "The requested resource was not found.", None) })
        .with_state(state)
}

async fn latest(
    State(state): State<VaultState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    get_secret(state, name, None, query, headers).await
}

async fn versioned(
    State(state): State<VaultState>,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    get_secret(state, name, Some(version), query, headers).await
}

async fn get_secret(
    state: VaultState,
    name: String,
    version: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    if let Some(fault) = state.take_fault(&name) {
        return serve_fault(fault).await;
    }
    if let Some(challenge) = authenticate(&state, &headers) {
        return challenge;
    }
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return error(StatusCode::BAD_REQUEST, "BadParameter", "The 'api-version' query parameter is missing.", None);
    }
    if name.is_empty() || name.len() > 127 || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return error(StatusCode::BAD_REQUEST, "BadParameter", "The secret name is invalid.", None);
    }
    let found = {
        let inner = state.lock();
        inner.secrets.get(&name.to_ascii_lowercase()).and_then(|versions| match &version {
            Some(v) => versions.iter().find(|x| x.id.eq_ignore_ascii_case(v)).cloned(),
            None => versions.last().cloned(),
        })
    };
    let Some(found) = found else {
        let what = match &version {
            Some(v) => format!("{name}/{v}"),
            None => name.clone(),
        };
        let message = format!(
            "A secret with (name/id) {what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        );
        return error(StatusCode::NOT_FOUND, "SecretNotFound", &message, None);
    };
    if !found.enabled {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        );
    }
    *state.lock().stats.reads.entry(name.to_ascii_lowercase()).or_default() += 1;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_owned())
        .unwrap_or_else(|| "vault.azure.net".into());
    let mut body = json!({
        "value": found.value,
        "id": format!("https://{host}/secrets/{name}/{}", found.id),
        "attributes": {
            "enabled": true,
            "created": found.created,
            "updated": found.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        },
        "tags": {},
    });
    if let Some(ct) = found.content_type {
        body["contentType"] = ct.into();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// `None` when the request carries a token the vault accepts; otherwise the 401 challenge.
fn authenticate(state: &VaultState, headers: &HeaderMap) -> Option<Response> {
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let message = match token {
        Some(t) if state.lock().tokens.contains(t) => return None,
        Some(_) => "AKV10032: Invalid issuer or token.",
        None => "AKV10000: Request is missing a Bearer or PoP token.",
    };
    state.lock().stats.challenges += 1;
    let mut response = error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None);
    let challenge =
        format!(r#"Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="{RESOURCE}""#);
    // Exactly one WWW-Authenticate header: the SDK's transport keeps one value per name.
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).expect("ASCII header"));
    Some(response)
}

async fn serve_fault(kind: FaultKind) -> Response {
    match kind {
        FaultKind::Hang => std::future::pending::<Response>().await,
        FaultKind::Garbage => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "<html><body>502 Bad Gateway</body></html>")
                .into_response()
        }
        FaultKind::Throttle => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
            None,
        ),
        FaultKind::Forbidden => error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Caller is not authorized to perform action on resource.",
            Some("ForbiddenByRbac"),
        ),
        FaultKind::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The service encountered an internal error. Please try again later.",
            None,
        ),
    }
}

/// Key Vault's error body.
fn error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], json!({ "error": error }).to_string())
        .into_response()
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
