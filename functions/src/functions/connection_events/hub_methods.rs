//! The hub methods browsers may invoke, who may invoke them, and what they do.
//!
//! The caller is who the service says (`X-ASRS-User-Id` and role claims from the token minted
//! by `negotiate`). Arguments never name the caller: where the original design passed a user
//! id as an argument, it is ignored. Every failure becomes a message safe to show a browser:
//! internal details (REST statuses, endpoints) go to the log only.

use meschain_functions_protocol::Escaped;
use meschain_model::{client_methods, groups};
use serde_json::{Value, json};

use crate::dashboard::Snapshots;
use crate::hubs::{self, Hub};
use crate::marketplace::{Marketplace, SyncMode, SyncOperation, SyncRequest};
use crate::signalr_rest::SignalRRest;
use crate::sync_runtime::SyncRuntime;
use meschain_signalr::rest::Operation;
use meschain_store::{Event, EventKind, Recorder, Store, presence};

/// The group admins join to receive the dashboard broadcast.
pub use meschain_model::groups::ADMINS as ADMINS_GROUP;
/// Metrics a dashboard may subscribe to; each is a group `metrics:{name}`.
pub use meschain_model::groups::METRICS;
const ALERT_LEVELS: [&str; 4] = ["info", "warning", "error", "critical"];
const MAX_ALERT_LEN: usize = 2000;
const MAX_METRICS_PER_CALL: usize = 32;

/// Who is calling, as the service vouched for it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub hub: Hub,
    pub connection_id: String,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubMethod {
    JoinAdminGroup,
    BroadcastSystemAlert,
    HandleAdminCommand,
    JoinMarketplaceGroup,
    TriggerSync,
    SubscribeToDashboard,
}

impl HubMethod {
    const TABLE: [(Hub, &'static str, HubMethod); 6] = [
        (Hub::Admin, "JoinAdminGroup", HubMethod::JoinAdminGroup),
        (Hub::Admin, "BroadcastSystemAlert", HubMethod::BroadcastSystemAlert),
        (Hub::Admin, "HandleAdminCommand", HubMethod::HandleAdminCommand),
        (Hub::Marketplace, "JoinMarketplaceGroup", HubMethod::JoinMarketplaceGroup),
        (Hub::Marketplace, "TriggerSync", HubMethod::TriggerSync),
        (Hub::Dashboard, "SubscribeToDashboard", HubMethod::SubscribeToDashboard),
    ];

    /// The method `target` names on `hub`. Targets are case-insensitive, as in the extension.
    pub fn resolve(hub: Hub, target: &str) -> Option<HubMethod> {
        Self::TABLE.iter().find(|(h, name, _)| *h == hub && name.eq_ignore_ascii_case(target)).map(|(_, _, m)| *m)
    }

    /// Whether a caller with `roles` may invoke it.
    pub fn allowed(self, roles: &[String]) -> bool {
        match self {
            HubMethod::JoinAdminGroup | HubMethod::BroadcastSystemAlert | HubMethod::HandleAdminCommand => {
                hubs::is_admin(roles)
            }
            HubMethod::JoinMarketplaceGroup | HubMethod::TriggerSync => hubs::may_use(roles, Hub::Marketplace),
            HubMethod::SubscribeToDashboard => true,
        }
    }
}

/// Why a call failed, in words fit for the caller (its `Display` is what the browser sees).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    #[error("Unknown hub method '{}'", .0.chars().take(64).collect::<String>())]
    Unknown(String),
    #[error("You are not allowed to call this method")]
    Forbidden,
    #[error("Invalid arguments: expected {0}")]
    BadArguments(&'static str),
    #[error("{0}")]
    Refused(String),
    #[error("The realtime service is unavailable; try again shortly")]
    Unavailable,
}

impl MethodError {
    pub fn client_message(&self) -> String {
        self.to_string()
    }
}

/// What a method needs from the app.
pub struct MethodEnv<'a> {
    pub rest: &'a SignalRRest,
    /// Shared state: which marketplace groups a connection joined (another instance may
    /// serve its next call).
    pub store: &'a dyn Store,
    pub recorder: &'a Recorder,
    /// For `requestDashboardUpdate`: the snapshot `admin-broadcast` also sends.
    pub snapshots: &'a Snapshots,
    /// For `triggerSync`: whether stock and price syncs can read the store's catalogue.
    pub sync: &'a SyncRuntime,
    /// False when the invocation cannot write output bindings (forwarded requests): then a
    /// method that would queue work refuses instead of silently dropping it.
    pub can_queue: bool,
    pub now_ms: u64,
}

/// Side effects that travel back to the host as output bindings.
#[derive(Debug, Default)]
pub struct Effects {
    pub sync_requests: Vec<SyncRequest>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> MethodError {
    tracing::warn!("{what}: {}", Escaped(&e.to_string()));
    MethodError::Unavailable
}

fn string_arg(args: &[Value], i: usize) -> Option<&str> {
    args.get(i).and_then(Value::as_str)
}

/// Runs `method` for `caller`. Authorisation is checked here too, so no path can skip it.
pub async fn call(
    env: &MethodEnv<'_>,
    caller: &Caller,
    method: HubMethod,
    args: &[Value],
    effects: &mut Effects,
) -> Result<Value, MethodError> {
    if !method.allowed(&caller.roles) {
        return Err(MethodError::Forbidden);
    }
    match method {
        HubMethod::JoinAdminGroup => {
            join_group(env, caller, ADMINS_GROUP).await.map(|()| json!({ "group": ADMINS_GROUP }))
        }
        HubMethod::BroadcastSystemAlert => {
            const SIG: &str = "BroadcastSystemAlert(message: string, level: string)";
            let (Some(message), Some(level)) = (string_arg(args, 0), string_arg(args, 1)) else {
                return Err(MethodError::BadArguments(SIG));
            };
            broadcast_alert(env, caller, message, level).await
        }
        HubMethod::HandleAdminCommand => {
            const SIG: &str = "HandleAdminCommand(command: string, parameters: object)";
            let Some(command) = string_arg(args, 0) else { return Err(MethodError::BadArguments(SIG)) };
            let params = args.get(1).cloned().unwrap_or(Value::Null);
            admin_command(env, caller, command, &params, effects).await
        }
        HubMethod::JoinMarketplaceGroup => {
            let name =
                string_arg(args, 0).ok_or(MethodError::BadArguments("JoinMarketplaceGroup(marketplace: string)"))?;
            let marketplace = known_marketplace(name)?;
            join_group(env, caller, &marketplace.group()).await?;
            presence::joined_group(env.store, caller.hub.name(), &caller.connection_id, &marketplace.group())
                .await
                .map_err(|e| unavailable("remembering a joined marketplace failed", e))?;
            Ok(json!({ "group": marketplace.group() }))
        }
        HubMethod::TriggerSync => {
            const SIG: &str = "TriggerSync(operation: string, marketplace?: string)";
            let operation = string_arg(args, 0).ok_or(MethodError::BadArguments(SIG))?;
            let operation = known_operation(operation, env.sync)?;
            let joined: Vec<Marketplace> = presence::groups_of(env.store, caller.hub.name(), &caller.connection_id)
                .await
                .map_err(|e| unavailable("reading joined marketplaces failed", e))?
                .iter()
                .filter_map(|group| Marketplace::ALL.into_iter().find(|m| m.group() == *group))
                .collect();
            let marketplace = match args.get(1) {
                Some(Value::String(m)) => known_marketplace(m)?,
                None | Some(Value::Null) => match joined.as_slice() {
                    [one] => *one,
                    [] => return Err(MethodError::Refused("Join a marketplace group before triggering a sync".into())),
                    _ => {
                        return Err(MethodError::Refused(
                            "Name the marketplace: this connection joined several".into(),
                        ));
                    }
                },
                Some(_) => return Err(MethodError::BadArguments(SIG)),
            };
            if !joined.contains(&marketplace) {
                return Err(MethodError::Refused(format!(
                    "Join marketplace '{}' before triggering its sync",
                    marketplace.name()
                )));
            }
            let mode = match args.get(2) {
                None | Some(Value::Null) => None,
                Some(Value::String(m)) => Some(known_mode(m)?),
                Some(_) => {
                    return Err(MethodError::BadArguments(
                        "TriggerSync(operation: string, marketplace?: string, mode?: \"changed\" | \"full\")",
                    ));
                }
            };
            queue_sync(env, caller, marketplace, operation, mode, effects).await
        }
        HubMethod::SubscribeToDashboard => {
            const SIG: &str = "SubscribeToDashboard(metrics: string[])";
            // The original design passed a user id first; accept and ignore it.
            let list = args.iter().rev().find_map(Value::as_array).ok_or(MethodError::BadArguments(SIG))?;
            if list.len() > MAX_METRICS_PER_CALL {
                return Err(MethodError::BadArguments(SIG));
            }
            let mut subscribed = Vec::new();
            let mut ignored = Vec::new();
            for item in list {
                match item.as_str().and_then(groups::known_metric) {
                    Some(metric) if !subscribed.contains(&metric) => subscribed.push(metric),
                    Some(_) => {}
                    None => ignored.push(item.clone()),
                }
            }
            for group in subscribed.iter().filter_map(|m| groups::metric(m)) {
                join_group(env, caller, &group).await?;
            }
            Ok(json!({ "subscribed": subscribed, "ignored": ignored }))
        }
    }
}

fn known_marketplace(name: &str) -> Result<Marketplace, MethodError> {
    Marketplace::from_name(name).ok_or_else(|| {
        let known: Vec<_> = Marketplace::ALL.iter().map(|m| m.name()).collect();
        MethodError::Refused(format!("Unknown marketplace; known: {}", known.join(", ")))
    })
}

/// The operation a hub call may start: known to the model and startable without items (a hub
/// call carries none, so stock and prices need the store's catalogue), so the request is
/// refused here, with the reason, instead of failing later.
fn known_operation(name: &str, sync: &SyncRuntime) -> Result<SyncOperation, MethodError> {
    let catalogue = sync.catalog_status();
    let startable = || {
        let ops = SyncOperation::ALL.iter().filter(|o| o.startable_from_hub(catalogue.configured));
        ops.map(|o| o.name()).collect::<Vec<_>>()
    };
    match SyncOperation::from_name(name) {
        Some(op) if op.startable_from_hub(catalogue.configured) => Ok(op),
        Some(op) => Err(MethodError::Refused(format!(
            "A {} sync needs items, from a queue message or the store's catalogue ({}); from here: {}",
            op.name(),
            catalogue.reason.as_deref().unwrap_or("not configured"),
            startable().join(", ")
        ))),
        None => Err(MethodError::Refused(format!("Unknown sync operation; startable: {}", startable().join(", ")))),
    }
}

fn known_mode(name: &str) -> Result<SyncMode, MethodError> {
    SyncMode::from_name(name).ok_or_else(|| MethodError::Refused("Unknown sync mode; known: changed, full".into()))
}

async fn join_group(env: &MethodEnv<'_>, caller: &Caller, group: &str) -> Result<(), MethodError> {
    let op = Operation::AddConnectionToGroup { group, connection: &caller.connection_id };
    match env.rest.run(caller.hub.name(), op).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(MethodError::Refused("This connection is no longer connected".into())),
        Err(e) => Err(unavailable("adding a connection to a group failed", e)),
    }
}

async fn broadcast_alert(
    env: &MethodEnv<'_>,
    caller: &Caller,
    message: &str,
    level: &str,
) -> Result<Value, MethodError> {
    let level = level.to_ascii_lowercase();
    if !ALERT_LEVELS.contains(&level.as_str()) {
        return Err(MethodError::Refused(format!("Alert level must be one of {}", ALERT_LEVELS.join(", "))));
    }
    if message.trim().is_empty() || message.chars().count() > MAX_ALERT_LEN {
        return Err(MethodError::Refused(format!("Alert message must have 1 to {MAX_ALERT_LEN} characters")));
    }
    let alert = json!({
        "message": message,
        "level": level,
        "from": caller.user_id,
        "at": meschain_model::clock::rfc3339_millis(env.now_ms),
    });
    let mut failed = 0;
    for hub in Hub::ALL {
        if let Err(e) = env
            .rest
            .send(
                hub.name(),
                Operation::SendToAll { excluded: &[] },
                client_methods::SYSTEM_ALERT,
                std::slice::from_ref(&alert),
            )
            .await
        {
            failed += 1;
            tracing::warn!(hub = hub.name(), "systemAlert not delivered: {}", Escaped(&e.to_string()));
        }
    }
    match failed {
        0 => Ok(json!({ "delivered": Hub::ALL.len() })),
        n if n == Hub::ALL.len() => Err(MethodError::Unavailable),
        n => Err(MethodError::Refused(format!("The alert reached {} of {} hubs", Hub::ALL.len() - n, Hub::ALL.len()))),
    }
}

async fn admin_command(
    env: &MethodEnv<'_>,
    caller: &Caller,
    command: &str,
    params: &Value,
    effects: &mut Effects,
) -> Result<Value, MethodError> {
    match command {
        "requestDashboardUpdate" => {
            let snapshot = env.snapshots.build(env.now_ms).await.snapshot;
            let op = Operation::SendToConnection { connection: &caller.connection_id };
            env.rest
                .send(caller.hub.name(), op, client_methods::UPDATE_ADMIN_DASHBOARD, &[snapshot])
                .await
                .map_err(|e| unavailable("sending a dashboard snapshot failed", e))?;
            Ok(json!({ "sent": true }))
        }
        "triggerSync" => {
            const SIG: &str = "HandleAdminCommand(\"triggerSync\", { marketplace: string, operation: string, mode?: \"changed\" | \"full\" })";
            let (Some(m), Some(o)) =
                (params.get("marketplace").and_then(Value::as_str), params.get("operation").and_then(Value::as_str))
            else {
                return Err(MethodError::BadArguments(SIG));
            };
            let mode = match params.get("mode") {
                None | Some(Value::Null) => None,
                Some(Value::String(m)) => Some(known_mode(m)?),
                Some(_) => return Err(MethodError::BadArguments(SIG)),
            };
            queue_sync(env, caller, known_marketplace(m)?, known_operation(o, env.sync)?, mode, effects).await
        }
        "broadcastAlert" => {
            const SIG: &str = "HandleAdminCommand(\"broadcastAlert\", { message: string, level: string })";
            let (Some(message), Some(level)) =
                (params.get("message").and_then(Value::as_str), params.get("level").and_then(Value::as_str))
            else {
                return Err(MethodError::BadArguments(SIG));
            };
            broadcast_alert(env, caller, message, level).await
        }
        other => Err(MethodError::Refused(format!(
            "Unknown admin command '{}'; known: requestDashboardUpdate, triggerSync, broadcastAlert",
            other.chars().take(64).collect::<String>()
        ))),
    }
}

/// The order window of a sync started from a hub method.
const HUB_ORDERS_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

async fn queue_sync(
    env: &MethodEnv<'_>,
    caller: &Caller,
    marketplace: Marketplace,
    operation: SyncOperation,
    mode: Option<SyncMode>,
    effects: &mut Effects,
) -> Result<Value, MethodError> {
    if !env.can_queue {
        return Err(MethodError::Refused("Sync requests can only be queued through the Functions host".into()));
    }
    let Some(user) = caller.user_id.as_deref() else {
        return Err(MethodError::Refused("A sync must be requested by a signed-in user".into()));
    };
    let mut request = SyncRequest::new(marketplace, operation, user);
    // The request's id is the sync's: the page that asked can follow its own sync's updates.
    request.sync_id = Some(request.request_id.clone());
    match operation {
        SyncOperation::Orders => {
            if mode.is_some() {
                return Err(MethodError::Refused(
                    "An orders sync has no mode (changed or full are for stock and prices)".into(),
                ));
            }
            // A hub call names no order window; "sync orders now" on the dashboard means the last
            // day's orders.
            request.since =
                Some(meschain_model::clock::rfc3339_millis(env.now_ms.saturating_sub(HUB_ORDERS_WINDOW_MS)));
        }
        SyncOperation::Inventory | SyncOperation::Prices => {
            // A hub call carries no items: stock and prices come from the store's catalogue
            // (`known_operation` refused them when there is none).
            request.mode = Some(mode.unwrap_or_default());
        }
    }
    env.recorder.record(
        Event::new(EventKind::SyncRequested, env.now_ms)
            .with_hub(caller.hub.name())
            .with_connection(&caller.connection_id)
            .with_user(Some(user))
            .with_marketplace(marketplace.name())
            .with_sync(&request.request_id)
            .with_name(operation.name()),
    );
    let id = request.request_id.clone();
    effects.sync_requests.push(request);
    let mut answer =
        json!({ "requestId": id, "syncId": id, "marketplace": marketplace.name(), "operation": operation.name() });
    if let Some(mode) = effects.sync_requests.last().and_then(|r| r.mode) {
        answer["mode"] = json!(mode.name());
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Every method on every hub against every role.
    #[test]
    fn test_authorization_table() {
        let admin = roles(&["admin"]);
        let super_admin = roles(&["super_admin"]);
        let manager = roles(&["marketplace_manager"]);
        let viewer = roles(&["viewer"]);
        let none = roles(&[]);
        use HubMethod::*;
        let table: [(HubMethod, [bool; 5]); 6] = [
            (JoinAdminGroup, [true, true, false, false, false]),
            (BroadcastSystemAlert, [true, true, false, false, false]),
            (HandleAdminCommand, [true, true, false, false, false]),
            (JoinMarketplaceGroup, [true, true, true, false, false]),
            (TriggerSync, [true, true, true, false, false]),
            (SubscribeToDashboard, [true, true, true, true, true]),
        ];
        for (method, expected) in table {
            for (r, ok) in [&admin, &super_admin, &manager, &viewer, &none].into_iter().zip(expected) {
                assert_eq!(method.allowed(r), ok, "{method:?} {r:?}");
            }
        }
    }

    #[test]
    fn test_methods_belong_to_their_hub() {
        assert_eq!(HubMethod::resolve(Hub::Admin, "joinadmingroup"), Some(HubMethod::JoinAdminGroup));
        assert_eq!(HubMethod::resolve(Hub::Dashboard, "JoinAdminGroup"), None);
        assert_eq!(HubMethod::resolve(Hub::Marketplace, "SubscribeToDashboard"), None);
        assert_eq!(HubMethod::resolve(Hub::Admin, "DropDatabase"), None);
    }

    #[test]
    fn test_error_messages_leak_nothing() {
        let long = "x".repeat(1000);
        assert!(MethodError::Unknown(long).client_message().len() < 100);
        assert!(!MethodError::Unavailable.client_message().contains("http"));
    }
}
