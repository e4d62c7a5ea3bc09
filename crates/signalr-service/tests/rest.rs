//! The REST API against a real service: every route's status codes and error codes, token
//! failures, body rules, and sends reaching real WebSocket clients.

mod common;

use common::*;
use meschain_signalr::hub_protocol::{Message, Protocol};
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=2022-06-01";

/// Method, path and query, body, expected status, expected `x-ms-error-code`.
type Case = (Method, String, Option<serde_json::Value>, u16, Option<&'static str>);

fn code(r: &reqwest::Response) -> Option<String> {
    r.headers().get("x-ms-error-code").map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn test_every_2022_route_status() {
    let svc = start(test_config()).await;
    let mut a = connect(&svc, "chat", Some("alice"), Protocol::Json).await;
    let c = a.connection_id.clone();
    let send = Some(json!({"target": "t", "arguments": [1]}));
    let cases: Vec<Case> = vec![
        (Method::HEAD, format!("/api/health?{V}"), None, 200, None),
        (Method::POST, format!("/api/hubs/chat/:send?{V}"), send.clone(), 202, None),
        (Method::POST, format!("/api/hubs/chat/users/alice/:send?{V}"), send.clone(), 202, None),
        (Method::POST, format!("/api/hubs/chat/connections/{c}/:send?{V}"), send.clone(), 202, None),
        (Method::POST, format!("/api/hubs/chat/groups/g/:send?{V}"), send.clone(), 202, None),
        (Method::HEAD, format!("/api/hubs/chat/connections/{c}?{V}"), None, 200, None),
        (
            Method::HEAD,
            format!("/api/hubs/chat/connections/nope?{V}"),
            None,
            404,
            Some("Warning.Connection.NotExisted"),
        ),
        (Method::HEAD, format!("/api/hubs/chat/groups/g?{V}"), None, 404, Some("Warning.Group.NotExisted")),
        (Method::PUT, format!("/api/hubs/chat/groups/g/connections/{c}?{V}"), None, 200, None),
        (
            Method::PUT,
            format!("/api/hubs/chat/groups/g/connections/nope?{V}"),
            None,
            404,
            Some("Error.Connection.NotExisted"),
        ),
        (Method::HEAD, format!("/api/hubs/chat/groups/g?{V}"), None, 200, None),
        (Method::DELETE, format!("/api/hubs/chat/groups/g/connections/{c}?{V}"), None, 200, None),
        (
            Method::DELETE,
            format!("/api/hubs/chat/groups/g/connections/nope?{V}"),
            None,
            404,
            Some("Error.Connection.NotExisted"),
        ),
        (Method::HEAD, format!("/api/hubs/chat/users/alice?{V}"), None, 200, None),
        (Method::HEAD, format!("/api/hubs/chat/users/bob?{V}"), None, 404, Some("Warning.User.NotExisted")),
        (Method::HEAD, format!("/api/hubs/chat/users/alice/groups/g2?{V}"), None, 404, Some("Info.User.NotInGroup")),
        (Method::PUT, format!("/api/hubs/chat/users/alice/groups/g2?{V}&ttl=60"), None, 200, None),
        (Method::HEAD, format!("/api/hubs/chat/users/alice/groups/g2?{V}"), None, 200, None),
        (Method::HEAD, format!("/api/hubs/chat/groups/g2?{V}"), None, 200, None),
        (Method::DELETE, format!("/api/hubs/chat/users/alice/groups/g2?{V}"), None, 204, None),
        (Method::HEAD, format!("/api/hubs/chat/groups/g2?{V}"), None, 404, Some("Warning.Group.NotExisted")),
        (Method::PUT, format!("/api/hubs/chat/users/alice/groups/g3?{V}"), None, 200, None),
        (Method::DELETE, format!("/api/hubs/chat/users/alice/groups?{V}"), None, 204, None),
        (Method::HEAD, format!("/api/hubs/chat/users/alice/groups/g3?{V}"), None, 404, Some("Info.User.NotInGroup")),
        (Method::DELETE, format!("/api/hubs/chat/connections/{c}/groups?{V}"), None, 200, None),
        (Method::POST, format!("/api/hubs/chat/groups/g/:closeConnections?{V}"), None, 204, None),
        (Method::POST, format!("/api/hubs/chat/users/nobody/:closeConnections?{V}"), None, 204, None),
        (Method::POST, format!("/api/hubs/chat/:closeConnections?{V}&excluded={c}"), None, 204, None),
        (
            Method::DELETE,
            format!("/api/hubs/chat/connections/nope?{V}"),
            None,
            404,
            Some("Warning.Connection.NotExisted"),
        ),
        (Method::POST, format!("/api/hubs/chat/:nope?{V}"), None, 404, Some("Error.Request.NotFound")),
    ];
    for (method, path, body, status, err) in cases {
        let r = rest(&svc, method.clone(), &path, body).await;
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert_eq!(code(&r).as_deref(), err, "{method} {path}");
    }
    // The four sends arrived (the group send found nobody: the connection was not in "g" yet).
    for _ in 0..3 {
        assert_eq!(invocation(a.next().await), ("t".to_string(), vec![json!(1)]));
    }
    // closeConnections with the connection excluded left it open; now close it with a reason.
    let r = rest(&svc, Method::DELETE, &format!("/api/hubs/chat/connections/{c}?{V}&reason=bye"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(a.next().await, Some(Message::Close { error: Some("bye".into()), allow_reconnect: false }));
    svc.shutdown().await;
}

#[tokio::test]
async fn test_every_v1_route_status() {
    let svc = start(test_config()).await;
    let mut a = connect(&svc, "chat", Some("alice"), Protocol::MessagePack).await;
    let c = a.connection_id.clone();
    let send = Some(json!({"Target": "t", "Arguments": ["x"]}));
    let cases: Vec<Case> = vec![
        (Method::HEAD, "/api/v1/health".into(), None, 200, None),
        (Method::POST, "/api/v1/hubs/chat".into(), send.clone(), 202, None),
        (Method::POST, "/api/v1/hubs/chat/users/alice".into(), send.clone(), 202, None),
        (Method::POST, format!("/api/v1/hubs/chat/connections/{c}"), send.clone(), 202, None),
        (Method::GET, format!("/api/v1/hubs/chat/connections/{c}"), None, 200, None),
        (Method::HEAD, "/api/v1/hubs/chat/connections/nope".into(), None, 404, Some("Warning.Connection.NotExisted")),
        (Method::PUT, format!("/api/v1/hubs/chat/groups/g/connections/{c}"), None, 200, None),
        (Method::POST, "/api/v1/hubs/chat/groups/g".into(), send.clone(), 202, None),
        (Method::GET, "/api/v1/hubs/chat/groups/g".into(), None, 200, None),
        (Method::DELETE, format!("/api/v1/hubs/chat/groups/g/connections/{c}"), None, 200, None),
        (Method::GET, "/api/v1/hubs/chat/groups/g".into(), None, 404, Some("Warning.Group.NotExisted")),
        (Method::GET, "/api/v1/hubs/chat/users/alice".into(), None, 200, None),
        (Method::PUT, "/api/v1/hubs/chat/groups/g5/users/alice".into(), None, 202, None),
        (Method::GET, "/api/v1/hubs/chat/groups/g5/users/alice".into(), None, 200, None),
        (Method::DELETE, "/api/v1/hubs/chat/groups/g5/users/alice".into(), None, 202, None),
        (Method::HEAD, "/api/v1/hubs/chat/groups/g5/users/alice".into(), None, 404, Some("Info.User.NotInGroup")),
        (Method::DELETE, "/api/v1/hubs/chat/users/alice/groups".into(), None, 200, None),
    ];
    for (method, path, body, status, err) in cases {
        let r = rest(&svc, method.clone(), &path, body).await;
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert_eq!(code(&r).as_deref(), err, "{method} {path}");
    }
    for _ in 0..4 {
        assert_eq!(invocation(a.next().await), ("t".to_string(), vec![json!("x")]));
    }
    let r = rest(&svc, Method::DELETE, &format!("/api/v1/hubs/chat/connections/{c}?reason=v1"), None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(a.next().await, Some(Message::Close { error: Some("v1".into()), allow_reconnect: false }));
    svc.shutdown().await;
}

#[tokio::test]
async fn test_token_failures() {
    let svc = start(test_config()).await;
    let path = format!("/api/hubs/chat/:send?{V}");
    let url = format!("{}{path}", base(&svc));
    let body = json!({"target": "t"});
    let post = |token: Option<String>| {
        let mut r = http().post(&url).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let challenge = |r: &reqwest::Response| r.headers()["www-authenticate"].to_str().unwrap().to_string();

    let r = post(None).await.unwrap();
    assert_eq!((r.status().as_u16(), challenge(&r)), (401, "Bearer".to_string()));
    let r = post(Some(rest_token("wrong-key", &path))).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("The signature is invalid"));
    let r = post(Some(rest_token(KEY, "/api/hubs/other/:send"))).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), "Bearer error=\"invalid_token\", error_description=\"The audience is invalid\"");
    // A client token is not a REST token (§F.2).
    let r = post(Some(client_token(KEY, "chat", None, 3600))).await.unwrap();
    assert_eq!(r.status(), 401);
    let expired = meschain_signalr::token::SigningKey::hs256(&meschain_signalr::AccessKey::new(KEY))
        .rest_token(&format!("http://localhost{path}"), now() - 7200, 60)
        .unwrap();
    let r = post(Some(expired)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("expired"));
    let r = post(Some("garbage".into())).await.unwrap();
    assert_eq!(r.status(), 401);
    // The secondary key works too, and the audience without query is accepted (docs form).
    let r = post(Some(rest_token(KEY2, "/api/hubs/chat/:send"))).await.unwrap();
    assert_eq!(r.status(), 202);
    svc.shutdown().await;
}

#[tokio::test]
async fn test_bad_requests() {
    let svc = start(test_config()).await;
    let send = Some(json!({"target": "t"}));
    for (path, body, status) in [
        ("/api/hubs/chat/:send".to_string(), send.clone(), 400),
        (format!("/api/hubs/1chat/:send?{V}"), send.clone(), 400),
        (format!("/api/hubs/chat/:send?{V}&application=9app"), send.clone(), 400),
        (format!("/api/hubs/chat/groups/%20%20/:send?{V}"), send.clone(), 400),
        (format!("/api/hubs/chat/groups/{}/:send?{V}", "g".repeat(1025)), send.clone(), 400),
        (format!("/api/hubs/chat/:send?{V}"), Some(json!({"arguments": []})), 400),
        (format!("/api/hubs/chat/:send?{V}"), Some(json!({"target": 5})), 400),
        (format!("/api/hubs/chat/:send?{V}"), Some(json!([1])), 400),
        (format!("/api/hubs/chat/users/u/groups/g?{V}&ttl=-1"), None, 400),
        (format!("/api/hubs/chat/users/u/groups/g?{V}&ttl=abc"), None, 400),
    ] {
        let method = if path.contains("ttl") { Method::PUT } else { Method::POST };
        let r = rest(&svc, method, &path, body).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(code(&r).as_deref(), Some("Error.Request.Invalid"), "{path}");
    }
    let path = format!("/api/hubs/chat/:send?{V}");
    let token = rest_token(KEY, &path);
    let url = format!("{}{path}", base(&svc));
    let r = http().post(&url).bearer_auth(&token).header("content-type", "application/json").body("{nope").send();
    assert_eq!(r.await.unwrap().status(), 400);
    let r = http().post(&url).bearer_auth(&token).header("content-type", "text/plain").body("hi").send();
    assert_eq!(r.await.unwrap().status(), 415);
    let big = format!("{{\"target\":\"t\",\"arguments\":[\"{}\"]}}", "x".repeat(1024 * 1024 + 10));
    let r = http().post(&url).bearer_auth(&token).header("content-type", "application/json").body(big).send();
    assert_eq!(r.await.unwrap().status(), 413);
    // Still serving.
    assert_eq!(rest(&svc, Method::POST, &path, Some(json!({"target":"t"}))).await.status(), 202);
    let r = http().head(format!("{}/api/health?{V}", base(&svc))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn test_sends_reach_the_right_connections() {
    let svc = start(test_config()).await;
    let mut a = connect(&svc, "chat", Some("alice"), Protocol::Json).await;
    let mut b = connect(&svc, "chat", Some("bob"), Protocol::MessagePack).await;
    let mut other = connect(&svc, "other", Some("alice"), Protocol::Json).await;
    let (ca, cb) = (a.connection_id.clone(), b.connection_id.clone());

    rest(
        &svc,
        Method::POST,
        &format!("/api/hubs/chat/:send?{V}&excluded={ca}"),
        Some(json!({"target":"all","arguments":[{"n":1.5}]})),
    )
    .await;
    assert_eq!(invocation(b.next().await), ("all".into(), vec![json!({"n":1.5})]));
    rest(&svc, Method::POST, &format!("/api/hubs/chat/users/alice/:send?{V}"), Some(json!({"target":"u"}))).await;
    assert_eq!(invocation(a.next().await), ("u".into(), vec![]));
    rest(&svc, Method::PUT, &format!("/api/hubs/chat/groups/g/connections/{ca}?{V}"), None).await;
    rest(&svc, Method::PUT, &format!("/api/hubs/chat/groups/g/connections/{cb}?{V}"), None).await;
    rest(&svc, Method::POST, &format!("/api/hubs/chat/groups/g/:send?{V}&excluded={cb}"), Some(json!({"target":"g"})))
        .await;
    assert_eq!(invocation(a.next().await).0, "g");
    rest(&svc, Method::DELETE, &format!("/api/hubs/chat/groups/g/connections/{ca}?{V}"), None).await;
    rest(&svc, Method::POST, &format!("/api/hubs/chat/groups/g/:send?{V}"), Some(json!({"target":"g2"}))).await;
    assert_eq!(invocation(b.next().await).0, "g2");
    rest(&svc, Method::POST, &format!("/api/hubs/chat/connections/{ca}/:send?{V}"), Some(json!({"target":"c"}))).await;
    assert_eq!(invocation(a.next().await).0, "c");
    // Nothing leaked to the other hub, nor extra messages to a/b.
    assert_eq!(other.next_within(std::time::Duration::from_millis(200)).await, None);
    assert_eq!(a.next_within(std::time::Duration::from_millis(100)).await, None);
    assert_eq!(b.next_within(std::time::Duration::from_millis(100)).await, None);

    // Application scoping: hub "app_chat" is addressed as hub "chat" with application=app.
    let mut scoped = connect(&svc, "app_chat", None, Protocol::Json).await;
    rest(&svc, Method::POST, &format!("/api/hubs/chat/:send?application=App&{V}"), Some(json!({"target":"s"}))).await;
    assert_eq!(invocation(scoped.next().await).0, "s");

    // User→group membership applies to later connections of the user.
    rest(&svc, Method::PUT, &format!("/api/hubs/chat/users/carol/groups/late?{V}"), None).await;
    let mut carol = connect(&svc, "chat", Some("carol"), Protocol::Json).await;
    rest(&svc, Method::POST, &format!("/api/hubs/chat/groups/late/:send?{V}"), Some(json!({"target":"late"}))).await;
    assert_eq!(invocation(carol.next().await).0, "late");

    // Close a user's connections with a reason.
    rest(&svc, Method::POST, &format!("/api/hubs/chat/users/carol/:closeConnections?{V}&reason=r"), None).await;
    assert_eq!(carol.next().await, Some(Message::Close { error: Some("r".into()), allow_reconnect: false }));
    svc.shutdown().await;
}
