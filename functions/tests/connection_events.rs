//! `connection-events` through the real binary: upstream calls signed as the service signs
//! them, answered as the service expects (framed completions in the caller's protocol), with
//! the hub methods' REST side effects going to a local SignalR service.

mod common;

use std::time::Duration;

use common::{ACCESS_KEY, Handler, SECONDARY_KEY, settings};
use meschain_signalr::AccessKey;
use meschain_signalr::hub_protocol::{self, CompletionResult, Invocation, Message, Protocol};
use meschain_signalr::upstream::sign;
use meschain_signalr_service::{Config, RunningService};
use serde_json::{Value, json};

async fn service() -> RunningService {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config =
        Config { access_keys: vec![AccessKey::new(ACCESS_KEY), AccessKey::new(SECONDARY_KEY)], ..Config::default() };
    meschain_signalr_service::start(config, listener).await.unwrap()
}

async fn start() -> (RunningService, Handler) {
    let svc = service().await;
    let mut s = settings();
    s.insert(
        "AzureSignalRConnectionString",
        format!("Endpoint=http://localhost;Port={};AccessKey={ACCESS_KEY};Version=1.0;", svc.local_addr().port()),
    );
    s.insert(
        "AzureSignalRSecondaryConnectionString",
        format!("Endpoint=http://localhost;Port={};AccessKey={SECONDARY_KEY};Version=1.0;", svc.local_addr().port()),
    );
    (svc, Handler::start(&s))
}

fn keys() -> Vec<AccessKey> {
    vec![AccessKey::new(ACCESS_KEY), AccessKey::new(SECONDARY_KEY)]
}

fn headers(hub: &str, category: &str, event: &str, user: Option<&str>, roles: &[&str]) -> Vec<(String, String)> {
    let mut h = vec![
        ("X-ASRS-Connection-Id".into(), "conn-1".into()),
        ("X-ASRS-Hub".into(), hub.to_lowercase()),
        ("X-ASRS-Category".into(), category.into()),
        ("X-ASRS-Event".into(), event.into()),
        ("X-ASRS-Signature".into(), sign("conn-1", &keys())),
    ];
    if let Some(u) = user {
        h.push(("X-ASRS-User-Id".into(), u.into()));
        let claims: Vec<String> =
            std::iter::once(format!("asrs.s.uid: {u}")).chain(roles.iter().map(|r| format!("role: {r}"))).collect();
        h.push(("X-ASRS-User-Claims".into(), claims.join(", ")));
    }
    h
}

async fn forwarded(h: &Handler, headers: &[(String, String)], content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/signalr/upstream", h.base))
        .timeout(Duration::from_secs(20))
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

fn invocation(target: &str, args: Value, blocking: bool) -> Vec<u8> {
    let mut v = json!({"type": 1, "target": target, "arguments": args});
    if blocking {
        v["invocationId"] = json!("7");
    }
    serde_json::to_vec(&v).unwrap()
}

fn completion(protocol: Protocol, frame: &[u8]) -> CompletionResult {
    let span = hub_protocol::next_frame(protocol, frame, 1 << 20).unwrap().expect("one complete frame");
    assert_eq!(span.consumed, frame.len(), "exactly one frame");
    match hub_protocol::parse_message(protocol, &frame[span.start..span.end]).unwrap() {
        Message::Completion { invocation_id, result } => {
            assert_eq!(invocation_id, "7");
            result
        }
        other => panic!("expected a completion, got {other:?}"),
    }
}

#[tokio::test]
async fn test_signature_and_header_checks() {
    let (_svc, h) = start().await;
    let good = headers("MesChainAdminHub", "connections", "connected", Some("alice"), &["admin"]);
    assert_eq!(forwarded(&h, &good, "application/json", br#"{"type":10}"#.to_vec()).await.0, 200);

    let mut unsigned = good.clone();
    unsigned.retain(|(k, _)| k != "X-ASRS-Signature");
    assert_eq!(forwarded(&h, &unsigned, "application/json", b"{}".to_vec()).await.0, 401);
    let mut tampered = good.clone();
    tampered[0].1 = "conn-2".into();
    assert_eq!(forwarded(&h, &tampered, "application/json", b"{}".to_vec()).await.0, 401);
    let mut rotated = good.clone();
    rotated[4].1 = sign("conn-1", &[AccessKey::new(SECONDARY_KEY)]);
    assert_eq!(forwarded(&h, &rotated, "application/json", b"{}".to_vec()).await.0, 200, "secondary key alone");
    let mut no_hub = good.clone();
    no_hub.retain(|(k, _)| k != "X-ASRS-Hub");
    assert_eq!(forwarded(&h, &no_hub, "application/json", b"{}".to_vec()).await.0, 400);
    assert_eq!(forwarded(&h, &good, "text/plain", b"{}".to_vec()).await.0, 415);
    let disc = headers("MesChainAdminHub", "connections", "disconnected", Some("alice"), &["admin"]);
    assert_eq!(forwarded(&h, &disc, "application/json", br#"{"Type":11,"Error":"gone"}"#.to_vec()).await.0, 200);
}

#[tokio::test]
async fn test_unknown_and_forbidden_methods_get_error_completions() {
    let (_svc, h) = start().await;
    let hd = headers("MesChainAdminHub", "messages", "DropEverything", Some("vic"), &["viewer"]);
    let (status, body) = forwarded(&h, &hd, "application/json", invocation("DropEverything", json!([]), true)).await;
    assert_eq!(status, 200);
    assert_eq!(
        completion(Protocol::Json, &body),
        CompletionResult::Error("Unknown hub method 'DropEverything'".into())
    );

    let hd = headers("MesChainAdminHub", "messages", "JoinAdminGroup", Some("vic"), &["viewer"]);
    let (_, body) =
        forwarded(&h, &hd, "application/json", invocation("JoinAdminGroup", json!(["vic", "super_admin"]), true)).await;
    assert_eq!(
        completion(Protocol::Json, &body),
        CompletionResult::Error("You are not allowed to call this method".into())
    );

    // The target must match the event header.
    let hd = headers("MesChainAdminHub", "messages", "JoinAdminGroup", Some("alice"), &["admin"]);
    assert_eq!(
        forwarded(&h, &hd, "application/json", invocation("BroadcastSystemAlert", json!([]), true)).await.0,
        400
    );
    // Garbage bodies.
    for body in [b"".to_vec(), b"{".to_vec(), br#"{"type":6}"#.to_vec(), vec![0xff; 100]] {
        assert_eq!(forwarded(&h, &hd, "application/json", body).await.0, 400);
    }
}

#[tokio::test]
async fn test_msgpack_invocation_gets_msgpack_completion() {
    let (_svc, h) = start().await;
    let inv = Invocation {
        invocation_id: Some("7".into()),
        target: "SubscribeToDashboard".into(),
        arguments: vec![json!(["orders", "bogus"])],
        ..Invocation::default()
    };
    let framed = hub_protocol::write_message(Protocol::MessagePack, &Message::Invocation(inv));
    // Upstream bodies carry no framing: strip the VarInt length prefix.
    let span = hub_protocol::next_frame(Protocol::MessagePack, &framed, 1 << 20).unwrap().unwrap();
    let body = framed[span.start..span.end].to_vec();
    let hd = headers("MesChainDashboardHub", "messages", "SubscribeToDashboard", Some("vic"), &["viewer"]);
    let (status, resp) = forwarded(&h, &hd, "application/x-msgpack", body).await;
    assert_eq!(status, 200);
    // conn-1 is not connected to the service, so joining its group is refused.
    assert_eq!(
        completion(Protocol::MessagePack, &resp),
        CompletionResult::Error("This connection is no longer connected".into())
    );
}

#[tokio::test]
async fn test_trigger_sync_names_the_caller_and_is_enveloped_only() {
    let (_svc, h) = start().await;
    let hd = headers("MesChainAdminHub", "messages", "HandleAdminCommand", Some("alice"), &["admin"]);
    let args = json!(["triggerSync", {"marketplace": "trendyol", "operation": "orders", "requestedBy": "mallory"}]);

    // Forwarded: no output binding can carry the request, so it is refused rather than lost.
    let (_, body) = forwarded(&h, &hd, "application/json", invocation("HandleAdminCommand", args.clone(), true)).await;
    assert!(matches!(completion(Protocol::Json, &body), CompletionResult::Error(e) if e.contains("Functions host")));

    // Enveloped, as the host sends it: exactly one sync request, naming the verified caller.
    let mut header_map = serde_json::Map::new();
    for (k, v) in &hd {
        header_map.insert(k.clone(), json!([v]));
    }
    header_map.insert("Content-Type".into(), json!(["application/json"]));
    let body_text = String::from_utf8(invocation("HandleAdminCommand", args, true)).unwrap();
    let envelope = json!({"Data": {"req": {"Method": "POST", "Headers": header_map, "Query": {}, "Body": body_text}}, "Metadata": {}});
    let resp =
        reqwest::Client::new().post(format!("{}/connection-events", h.base)).json(&envelope).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let requests = out["Outputs"]["syncRequests"].as_array().expect("syncRequests output");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["requestedBy"], "alice");
    assert_eq!(requests[0]["marketplace"], "trendyol");
    assert_eq!(requests[0]["operation"], "orders");
    let res = &out["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    let frame = res["body"].as_str().unwrap().as_bytes();
    let CompletionResult::Result(result) = completion(Protocol::Json, frame) else { panic!("{out}") };
    assert_eq!(result["requestId"], requests[0]["requestId"]);

    // MessagePack cannot travel in the envelope: refused with a clear status.
    let mut msgpack_headers = header_map.clone();
    msgpack_headers.insert("Content-Type".into(), json!(["application/x-msgpack"]));
    let envelope = json!({"Data": {"req": {"Method": "POST", "Headers": msgpack_headers, "Body": "x"}}});
    let out: Value = reqwest::Client::new()
        .post(format!("{}/connection-events", h.base))
        .json(&envelope)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["Outputs"]["res"]["statusCode"], 415);
    assert!(out["Outputs"].get("syncRequests").is_none());
}

/// `admin-broadcast` takes the host's timer envelope and sends through the REST API; a bad
/// envelope is a failed invocation with a clear error.
#[tokio::test]
async fn test_admin_broadcast_timer_invocations() {
    let (_svc, h) = start().await;
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../tests/fixtures/host/timer-fixture-azfunc.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let c = reqwest::Client::new();
    let resp = c.post(format!("{}/admin-broadcast", h.base)).json(&fixture).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert!(out["Logs"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("sent to admins")), "{out}");

    for bad in [json!({"Data": {}}), json!({"Data": {"timer": "soon"}})] {
        let resp = c.post(format!("{}/admin-broadcast", h.base)).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "bad_envelope");
    }
}
