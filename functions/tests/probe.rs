//! The hostile-input probe's findings, each against the real binary: what used to
//! panic, hang or pass through is now refused with a 4xx/503, bounded, or escaped.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AUDIENCE, Handler, ISSUER, login, now, settings};
use serde_json::{Map, Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn negotiate(h: &Handler, token: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/api/negotiate", h.base))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    (status, resp.json().await.unwrap())
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ready(h: &Handler) -> bool {
    let mut s = TcpStream::connect(h.base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// The login-key source is down: the caller's token may be fine, so 503 (retry), not 401.
#[tokio::test]
async fn test_jwks_down_is_503_json() {
    let mut s = settings();
    s.insert("AUTH_JWKS_URL", format!("http://127.0.0.1:{}/keys", closed_port()));
    let h = Handler::start(&s);
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let rs256 = format!(
        "{}.{}.c2ln",
        b64(json!({"alg": "RS256", "kid": "k1"})),
        b64(json!({"sub": "u", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600}))
    );
    let (status, body) = negotiate(&h, &rs256).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "auth_unavailable");
    assert_eq!(body["message"], "the signing keys could not be loaded");
    // HS256 logins do not need the key source and still work.
    assert_eq!(negotiate(&h, &login("alice", &["admin"])).await.0, 200);
}

/// 30,000 distinct header names used to make `HeaderMap` panic and abort the process.
#[tokio::test]
async fn test_30000_envelope_header_names_are_refused_and_the_handler_survives() {
    let h = Handler::start(&settings());
    let headers: Map<String, Value> = (0..30_000).map(|i| (format!("x-probe-{i}"), json!(["v"]))).collect();
    let envelope = json!({"Data": {"req": {"Method": "POST", "Headers": headers}}, "Metadata": {}});
    for function in ["negotiate", "connection-events"] {
        let resp = client().post(format!("{}/{function}", h.base)).json(&envelope).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 431, "{function}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "too_many_headers", "{function}: {body}");
    }
    assert!(ready(&h), "the handler still serves");
}

/// A client that sends half its headers and goes silent cannot hold SIGTERM: the handler
/// exits within its shutdown grace period (3 s) plus start-up slack.
#[test]
fn test_sigterm_completes_despite_a_silent_half_sent_request() {
    let h = Handler::start(&settings());
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut silent = TcpStream::connect(&addr).unwrap();
    silent.write_all(b"POST /api/negotiate HTTP/1.1\r\nhost: x\r\ncontent-le").unwrap();
    // And one mid-body: headers complete, body promised but never sent.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(b"POST /api/negotiate HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{").unwrap();
    // A real wait in a test of a real shutdown grace: let both requests reach the server.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = h.terminate();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop((silent, stalled));
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 40 clients each send all but the last byte of a 4 MiB body and stall. Without a cap they
/// held ~160 MiB; the handler holds at most its 64 MiB budget and answers 503 past it.
#[test]
fn test_stalled_bodies_are_capped() {
    const BODY: usize = 4 * 1024 * 1024;
    let h = Handler::start(&settings());
    let addr = h.base.trim_start_matches("http://").to_string();
    let chunk = vec![b'x'; BODY - 1];
    let mut streams = Vec::new();
    let mut busy = 0;
    for _ in 0..40 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let head = format!("POST /api/negotiate HTTP/1.1\r\nhost: x\r\ncontent-length: {BODY}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        // A refused upload sees its connection closed (an error here) or a 503 to read.
        let written = s.write_all(&chunk).is_ok();
        let mut buf = [0u8; 12];
        let answered = s.read(&mut buf).map(|n| buf[..n].starts_with(b"HTTP/1.1 503")).unwrap_or(false);
        if !written || answered {
            busy += 1;
        }
        streams.push(s);
    }
    let rss_mib = rss_kib(h.pid()) / 1024;
    assert!(busy >= 40 - 16, "only {busy} of 40 stalled uploads were refused");
    assert!(rss_mib < 140, "handler RSS {rss_mib} MiB with 40 stalled 4 MiB bodies");
    assert!(ready(&h), "the handler still serves");
    drop(streams);
}

/// A verified `sub` the service could not carry intact (CR/LF/NUL break `X-ASRS-User-Id`;
/// `, ` would read as an extra claim in `X-ASRS-User-Claims`) is refused with a clear 400.
#[tokio::test]
async fn test_user_ids_and_roles_the_service_cannot_carry_are_refused() {
    let h = Handler::start(&settings());
    for (sub, roles) in [
        ("eve\r\nx-asrs-user-id: admin", &["viewer"][..]),
        ("eve\0", &["viewer"][..]),
        ("eve, role: admin", &["viewer"][..]),
        ("eve", &["viewer, role: admin"][..]),
        ("eve", &["admin\n"][..]),
    ] {
        let (status, body) = negotiate(&h, &login(sub, roles)).await;
        assert_eq!(status, 400, "{sub:?} {roles:?}: {body}");
        assert_eq!(body["error"], "unrepresentable_identity");
        assert!(body["message"].as_str().unwrap().contains("control character"), "{body}");
    }
    assert_eq!(negotiate(&h, &login("Doe,Jane", &["admin"])).await.0, 200, "a comma alone is fine");
}

/// A newline in a logged value (here a login's `sub`, logged at debug when refused) cannot
/// start a log line of its own.
#[tokio::test]
async fn test_a_newline_in_a_logged_value_cannot_forge_a_log_line() {
    let h = Handler::start_logging(&settings(), "debug");
    let forged = "2026-12-02T00:00:00.000000Z  INFO invocation done function=negotiate FORGED";
    let (status, _) = negotiate(&h, &login(&format!("eve\n{forged}"), &["viewer"])).await;
    assert_eq!(status, 400);
    let lines = h.output_until("negotiate refused: user id");
    let refused = lines.iter().find(|l| l.contains("negotiate refused: user id")).expect("the refusal is logged");
    assert!(refused.contains(&format!("eve\\n{forged}")), "escaped in place: {refused}");
    assert!(!lines.iter().any(|l| l.starts_with("2026-12-02T00:00:00")), "{lines:#?}");
}

/// A `RUST_LOG` the handler cannot read is named in a warning at start, and the handler still
/// starts and serves, logging at info.
#[tokio::test]
async fn test_an_unreadable_rust_log_is_a_warning_and_the_handler_serves() {
    let h = Handler::start_logging(&settings(), "meschain=loud,,=");
    let warning = h.startup.iter().find(|l| l.contains("RUST_LOG ignored")).expect("a warning at start");
    assert!(warning.contains("WARN") && warning.contains("logging at info"), "{warning}");
    assert_eq!(negotiate(&h, &login("ada", &["admin"])).await.0, 200);
    let lines = h.output_until("invocation done");
    assert!(lines.iter().any(|l| l.contains("INFO") && l.contains("function=\"negotiate\"")), "{lines:#?}");
}

/// Worker threads batch their log lines (`log_output`): after a burst of concurrent requests
/// every invocation's line is written, once, whole, without waiting for more traffic, and a
/// warning in the middle of a busy stretch is written too.
#[tokio::test]
async fn test_a_burst_logs_every_invocation_once_and_whole() {
    const BURST: usize = 400;
    let h = Handler::start(&settings());
    let token = login("ada", &["admin"]);
    let client = client();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let request = client
            .post(format!("{}/api/negotiate", h.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("x-azure-functions-invocationid", format!("burst-{i}"));
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    // A refused enveloped invocation logs a warning among the info lines.
    let bad = client.post(format!("{}/admin-broadcast", h.base)).body("{not json").send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }

    let mut seen = std::collections::HashSet::new();
    let mut warned = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    // Until both are in: the warning may be written after the last burst line.
    while (seen.len() < BURST || !warned) && Instant::now() < deadline {
        let Ok(line) = h.output.recv_timeout(Duration::from_millis(200)) else { continue };
        warned |= line.contains("WARN") && line.contains("bad envelope");
        if let Some(id) = line.split("invocation_id=").nth(1).and_then(|rest| rest.split_whitespace().next()) {
            if !id.starts_with("burst-") {
                continue;
            }
            assert_eq!(line.matches("invocation done").count(), 1, "one whole line: {line}");
            assert!(line.starts_with("20"), "starts with its timestamp: {line}");
            assert!(seen.insert(id.to_string()), "{id} logged twice");
        }
    }
    assert_eq!(seen.len(), BURST, "every invocation is logged once the burst is over");
    assert!(warned, "the warning was written");
}
