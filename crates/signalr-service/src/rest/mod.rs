//! The data-plane REST API (§D): v1 and 2022-06-01 routes, bearer-token checks, the service's
//! status codes, and `x-ms-error-code` on the 404s the Management SDK expects (§D.5).

mod body;
mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use body::BodyError;
pub use routes::{Op, Route, route, segments};

use crate::auth;
use crate::client::valid_hub_name;
use crate::registry::Target;
use crate::service::Service;

/// An error response: status, `x-ms-error-code` (also the body's `code`), message.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "code": code, "message": message }))).into_response();
    if let Ok(v) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ms-error-code", v);
    }
    response
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Error.Request.Invalid", message)
}

fn not_found(code: &str) -> Response {
    error(StatusCode::NOT_FOUND, code, code)
}

fn valid_group(g: &str) -> bool {
    !g.is_empty() && g.chars().count() <= 1024 && !g.chars().all(char::is_whitespace)
}

/// The query parameters the REST API reads (§D.4).
#[derive(Default, Debug)]
struct Params {
    api_version: Option<String>,
    application: Option<String>,
    excluded: Vec<String>,
    reason: Option<String>,
    ttl: Option<String>,
}

fn params(query: &str) -> Params {
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "api-version" => p.api_version = Some(v),
            "application" => p.application = Some(v),
            "excluded" => p.excluded.push(v),
            "reason" => p.reason = Some(v),
            "ttl" => p.ttl = Some(v),
            _ => {}
        }
    }
    p
}

pub async fn handle(
    State(svc): State<Arc<Service>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(segments) = segments(uri.path()) else {
        return error(StatusCode::NOT_FOUND, "Error.Request.NotFound", "Not found.");
    };
    let Some(Route { hub, op, v1 }) = route(&method, &segments) else {
        return error(StatusCode::NOT_FOUND, "Error.Request.NotFound", "No such API.");
    };
    let query = uri.query().unwrap_or("");
    let p = params(query);
    if op == Op::Health {
        return StatusCode::OK.into_response();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    if let Err(e) = auth::validate_rest(
        &auth::header_tokens(&headers),
        &svc.keys.current(),
        svc.config.token_leeway_secs,
        host,
        path_and_query,
    ) {
        return e.into_response();
    }
    if !v1 && p.api_version.as_deref().is_none_or(str::is_empty) {
        return invalid("The 'api-version' query parameter is required.");
    }
    let hub = hub.unwrap_or_default();
    if !valid_hub_name(&hub) {
        return invalid("Invalid hub name.");
    }
    let hub_key = match &p.application {
        Some(app) if !valid_hub_name(app) => return invalid("Invalid application name."),
        Some(app) => format!("{}_{}", app.to_ascii_lowercase(), hub.to_ascii_lowercase()),
        None => hub.to_ascii_lowercase(),
    };
    let group = match &op {
        Op::SendGroup(g)
        | Op::CloseGroup(g)
        | Op::GroupExists(g)
        | Op::AddConnectionToGroup { group: g, .. }
        | Op::RemoveConnectionFromGroup { group: g, .. }
        | Op::UserInGroup { group: g, .. }
        | Op::AddUserToGroup { group: g, .. }
        | Op::RemoveUserFromGroup { group: g, .. } => Some(g.as_str()),
        _ => None,
    };
    if group.is_some_and(|g| !valid_group(g)) {
        return invalid("Invalid group name.");
    }
    let ttl = match p.ttl.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(Duration::from_secs(n)),
        Some(Err(_)) => return invalid("The 'ttl' query parameter must be a non-negative integer."),
    };
    let frames = if op.is_send() {
        match body::frames(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &body) {
            Ok(f) => Some(f),
            Err(BodyError::Invalid(m)) => return invalid(m),
            Err(BodyError::UnsupportedMediaType) => {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Error.Request.UnsupportedMediaType",
                    "Unsupported content type.",
                );
            }
        }
    } else {
        None
    };

    if let Op::AddUserToGroup { user, group } = &op {
        svc.registry.with_hub(&hub_key, |h| h.add_user_to_group(user, group, ttl, Instant::now()));
        return StatusCode::from_u16(op.success(v1)).unwrap_or(StatusCode::OK).into_response();
    }
    // Everything else only reads or shrinks state: a hub nobody is in behaves as an empty one.
    let h = svc.registry.get(&hub_key).unwrap_or_default();
    let ok = StatusCode::from_u16(op.success(v1)).unwrap_or(StatusCode::OK).into_response();
    let excluded = &p.excluded;
    let reason = p.reason.as_deref();
    let now = Instant::now();
    match &op {
        Op::Health => ok,
        Op::SendAll | Op::SendUser(_) | Op::SendConnection(_) | Op::SendGroup(_) => {
            let target = match &op {
                Op::SendUser(u) => Target::User(u),
                Op::SendConnection(c) => Target::Connection(c),
                Op::SendGroup(g) => Target::Group(g),
                _ => Target::All,
            };
            h.send(target, excluded, frames.as_ref().expect("parsed above"));
            ok
        }
        Op::CloseAll => {
            h.close(Target::All, excluded, reason);
            ok
        }
        Op::CloseGroup(g) => {
            h.close(Target::Group(g), excluded, reason);
            ok
        }
        Op::CloseUser(u) => {
            h.close(Target::User(u), excluded, reason);
            ok
        }
        Op::ConnectionExists(c) if h.connection_exists(c) => ok,
        Op::ConnectionExists(_) => not_found("Warning.Connection.NotExisted"),
        Op::CloseConnection(c) if h.close(Target::Connection(c), &[], reason) > 0 => ok,
        Op::CloseConnection(_) => not_found("Warning.Connection.NotExisted"),
        Op::RemoveConnectionFromAllGroups(c) => {
            h.remove_from_all_groups(c);
            ok
        }
        Op::GroupExists(g) if h.group_exists(g) => ok,
        Op::GroupExists(_) => not_found("Warning.Group.NotExisted"),
        Op::AddConnectionToGroup { group, connection } if h.add_to_group(connection, group) => ok,
        Op::AddConnectionToGroup { .. } => not_found("Error.Connection.NotExisted"),
        Op::RemoveConnectionFromGroup { connection, .. } if !h.connection_exists(connection) => {
            not_found("Error.Connection.NotExisted")
        }
        Op::RemoveConnectionFromGroup { group, connection } => {
            h.remove_from_group(connection, group);
            ok
        }
        Op::UserExists(u) if h.user_exists(u) => ok,
        Op::UserExists(_) => not_found("Warning.User.NotExisted"),
        Op::UserInGroup { user, group } if h.user_in_group(user, group, now) => ok,
        Op::UserInGroup { .. } => not_found("Info.User.NotInGroup"),
        Op::AddUserToGroup { .. } => unreachable!("handled above"),
        Op::RemoveUserFromGroup { user, group } => {
            h.remove_user_from_group(user, group);
            ok
        }
        Op::RemoveUserFromAllGroups(u) => {
            h.remove_user_from_all_groups(u);
            ok
        }
    }
}
