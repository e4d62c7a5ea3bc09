//! The plain-HTTP side of the fake: App Service's managed-identity endpoint, and a control API
//! for tests (set, rotate, disable and delete secrets; inject faults; read counters).
//!
//! The identity endpoint follows App Service's contract as `azure_identity` speaks it:
//! `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…[&client_id=…]` with the
//! `X-IDENTITY-HEADER` secret; the answer's `expires_on` is a string of Unix seconds.
//!
//! Control API (JSON):
//! - `PUT /control/secrets/{name}` `{"value": "...", "contentType"?: "..."}` → `{"version"}`: a new
//!   latest version (a rotation when the secret existed).
//! - `POST /control/secrets/{name}/disable` and `/enable` (`?version=` for one version, else the latest).
//! - `DELETE /control/secrets/{name}`.
//! - `POST /control/faults` `{"kind": "hang"|"garbage"|"throttle"|"forbidden"|"server-error",
//!   "count"?: n, "secret"?: name}`; `DELETE /control/faults`.
//! - `GET /control/stats`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use crate::vault::{Fault, RESOURCE, VaultState, unix_now};

#[derive(Clone)]
struct Side {
    vault: VaultState,
    identity_header: String,
}

pub fn router(vault: VaultState, identity_header: String) -> Router {
    Router::new()
        .route("/msi/token", get(token))
        .route("/control/secrets/{name}", put(set_secret).delete(delete_secret))
        .route("/control/secrets/{name}/disable", post(disable))
        .route("/control/secrets/{name}/enable", post(enable))
        .route("/control/faults", post(add_fault).delete(clear_faults))
        .route("/control/stats", get(stats))
        .with_state(Side { vault, identity_header })
}

async fn token(State(side): State<Side>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    let presented = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    if presented != Some(side.identity_header.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"statusCode": 401, "message": "Unauthorized request"})))
            .into_response();
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return (StatusCode::BAD_REQUEST, Json(json!({"statusCode": 400, "message": "Unsupported api-version"})))
            .into_response();
    }
    let Some(resource) = q.get("resource") else {
        return (StatusCode::BAD_REQUEST, Json(json!({"statusCode": 400, "message": "resource is required"})))
            .into_response();
    };
    if resource.trim_end_matches('/') != RESOURCE {
        // The fake only issues tokens its vault accepts.
        return (StatusCode::BAD_REQUEST, Json(json!({"statusCode": 400, "message": "unknown resource"})))
            .into_response();
    }
    let access_token = side.vault.issue_token(q.get("client_id").cloned());
    Json(json!({
        "access_token": access_token,
        "expires_on": (unix_now() + 86_400).to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSecret {
    value: String,
    #[serde(default)]
    content_type: Option<String>,
}

async fn set_secret(State(side): State<Side>, Path(name): Path<String>, Json(body): Json<NewSecret>) -> Response {
    let version = side.vault.set_secret_with(&name, &body.value, body.content_type);
    Json(json!({ "version": version })).into_response()
}

async fn delete_secret(State(side): State<Side>, Path(name): Path<String>) -> StatusCode {
    if side.vault.delete_secret(&name) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
}

async fn disable(
    State(side): State<Side>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> StatusCode {
    toggle(&side, &name, q.get("version"), false)
}

async fn enable(
    State(side): State<Side>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> StatusCode {
    toggle(&side, &name, q.get("version"), true)
}

fn toggle(side: &Side, name: &str, version: Option<&String>, enabled: bool) -> StatusCode {
    if side.vault.set_enabled(name, version.map(String::as_str), enabled) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn add_fault(State(side): State<Side>, Json(fault): Json<Fault>) -> StatusCode {
    side.vault.add_fault(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(side): State<Side>) -> StatusCode {
    side.vault.clear_faults();
    StatusCode::NO_CONTENT
}

async fn stats(State(side): State<Side>) -> Response {
    Json(side.vault.stats()).into_response()
}
