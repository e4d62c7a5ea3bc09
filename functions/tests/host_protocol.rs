//! The handler as the Functions host sees it: readiness, enveloped invocations, forwarded
//! requests, bad input of every kind, start-up refusal on bad settings, and SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Handler, settings, start_failure};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(ct.starts_with("application/json"), "status {status}: content type {ct:?}");
    (status, resp.json().await.unwrap())
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../tests/fixtures/host/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn test_readiness_and_unknown_routes() {
    let h = Handler::start(&settings());
    let c = client();
    assert_eq!(c.get(format!("{}/", h.base)).send().await.unwrap().status(), 200);

    let (status, body) = json_of(c.post(format!("{}/no-such-function", h.base)).body("{}").send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_function")));
    let (status, _) = json_of(c.post(format!("{}/api/no/such/route", h.base)).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = json_of(c.get(format!("{}/negotiate", h.base)).send().await.unwrap()).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn test_bad_envelopes_get_4xx_and_the_handler_keeps_serving() {
    let h = Handler::start(&settings());
    let c = client();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"{not json".to_vec()),
        ("empty", Vec::new()),
        ("array", b"[1,2]".to_vec()),
        ("Data not object", br#"{"Data":"x"}"#.to_vec()),
        ("no req binding", br#"{"Data":{}}"#.to_vec()),
        ("req not object", br#"{"Data":{"req":"x"}}"#.to_vec()),
        ("no method", br#"{"Data":{"req":{}}}"#.to_vec()),
        ("bad header", br#"{"Data":{"req":{"Method":"POST","Headers":{"a b":["x"]}}}}"#.to_vec()),
        ("invalid utf-8", vec![0xff, 0xfe, 0x00]),
        ("deep nesting", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        // What the direct reader hands to the reference reader, which names it.
        (
            "nesting past the limit in a field not read",
            format!(r#"{{"Data":{{"req":{{"Method":"POST","Params":{}{}}}}}}}"#, "[".repeat(200), "]".repeat(200))
                .into_bytes(),
        ),
        (
            "header value with a newline",
            br#"{"Data":{"req":{"Method":"POST","Headers":{"x":["a
b"]}}}}"#
                .to_vec(),
        ),
        ("header value not a string", br#"{"Data":{"req":{"Method":"POST","Headers":{"x":[["a"]]}}}}"#.to_vec()),
        ("Metadata not object", br#"{"Data":{"req":{"Method":"POST"}},"Metadata":5}"#.to_vec()),
        ("trailing bytes", br#"{"Data":{"req":{"Method":"POST"}}} x"#.to_vec()),
    ];
    for (what, body) in cases {
        let (status, json) = json_of(c.post(format!("{}/negotiate", h.base)).body(body).send().await.unwrap()).await;
        assert_eq!(status, 400, "{what}: {json}");
        assert_eq!(json["error"], "bad_envelope", "{what}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    // Over the body limit, enveloped and forwarded.
    let huge = vec![b'x'; 5 * 1024 * 1024];
    let (status, json) =
        json_of(c.post(format!("{}/negotiate", h.base)).body(huge.clone()).send().await.unwrap()).await;
    assert_eq!((status, json["error"].as_str()), (413, Some("payload_too_large")));
    let (status, _) = json_of(c.post(format!("{}/api/negotiate", h.base)).body(huge).send().await.unwrap()).await;
    assert_eq!(status, 413);
    // Still serving.
    assert_eq!(c.get(format!("{}/", h.base)).send().await.unwrap().status(), 200);
}

/// The host's own payload shapes (tests/fixtures/host, from https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers) are understood: the unauthenticated
/// request is refused inside a well-formed envelope response.
#[tokio::test]
async fn test_reference_http_payloads() {
    let h = Handler::start(&settings());
    let c = client();
    for name in ["http-nonforwarded-fixture-azfunc.json", "http-nonforwarded-docs-order.json"] {
        let resp = c
            .post(format!("{}/negotiate", h.base))
            .header("X-Azure-Functions-InvocationId", "11111111-2222-3333-4444-555555555555")
            .json(&fixture(name))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, 200, "{name}: the invocation itself succeeds");
        let res = &body["Outputs"]["res"];
        assert_eq!(res["statusCode"], 401, "{name}: {body}");
        assert!(res["headers"]["www-authenticate"].as_str().unwrap().starts_with("Bearer error=\"invalid_token\""));
        let inner: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
        assert_eq!(inner["error"], "invalid_token");
        assert!(body["Logs"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("refused")), "{body}");
    }
    // The log line is written after the answer, on the handler's own time: wait for it (5 s at most).
    let lines = h.output_until("11111111-2222-3333-4444-555555555555").join("\n");
    assert!(lines.contains("11111111-2222-3333-4444-555555555555"), "the invocation id is logged: {lines}");
}

#[tokio::test]
async fn test_forwarded_preflight_and_method() {
    let h = Handler::start(&settings());
    let c = client();
    let resp = c
        .request(reqwest::Method::OPTIONS, format!("{}/api/negotiate", h.base))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, x-signalr-user-agent")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(resp.headers()["access-control-allow-credentials"], "true");

    let resp = c
        .request(reqwest::Method::OPTIONS, format!("{}/api/negotiate", h.base))
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    let (status, _) = json_of(c.get(format!("{}/api/negotiate", h.base)).send().await.unwrap()).await;
    assert_eq!(status, 405);
}

#[test]
fn test_bad_settings_stop_the_handler_before_it_binds() {
    let mut s = settings();
    s.insert("AUTH_JWT_SECRET", "too-short-but-secret".into());
    s.insert("SIGNALR_TOKEN_LIFETIME_SECONDS", "0".into());
    s.remove("SYNC_QUEUE_NAME");
    let (code, output) = start_failure(&s);
    assert_eq!(code, Some(1), "{output}");
    for name in ["AUTH_JWT_SECRET", "SIGNALR_TOKEN_LIFETIME_SECONDS", "SYNC_QUEUE_NAME"] {
        assert!(output.contains(name), "{name} not named in: {output}");
    }
    assert!(!output.contains("too-short-but-secret"), "a secret was echoed: {output}");
    assert!(!output.contains("listening"), "it must not bind: {output}");

    let mut s = settings();
    s.insert("AzureSignalRConnectionString", "Endpoint=http://localhost;AccessKey=do-not-print-me;Port=banana".into());
    let (code, output) = start_failure(&s);
    assert_eq!(code, Some(1));
    assert!(output.contains("AzureSignalRConnectionString") && !output.contains("do-not-print-me"), "{output}");
}

/// SIGTERM lets an in-flight request finish, then the process exits cleanly.
#[test]
fn test_sigterm_finishes_in_flight_work() {
    let h = Handler::start(&settings());
    let addr = h.base.trim_start_matches("http://").to_string();
    let body = serde_json::to_vec(&json!({"Data": {"req": {"Method": "POST", "Headers": {}}}})).unwrap();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST /negotiate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    // Real waits: this tests the shutdown grace of a real process, whose clock a test cannot
    // drive. The first lets the partial request reach the server; the second lets SIGTERM
    // land while the request is still in flight (both well under the 3 s grace).
    std::thread::sleep(Duration::from_millis(200));

    let pid = h.pid();
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "in-flight request was cut: {response:?}");
    assert!(h.terminate().success());
}
