//! The `meschain` binary's host commands end to end: `dev` (real process, real node custom
//! handler), `enqueue` (local and Service Bus REST against a loopback stand-in), `queue`, `token`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_meschain");

/// Removes a test's app folder when the test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn handler_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions-host/tests/handler/handler.mjs").display().to_string()
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meschain-cli-{tag}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn app(tag: &str, sync_function_json: &str) -> (PathBuf, PathBuf) {
    let root = temp(tag);
    let record = root.join("record.jsonl");
    std::fs::write(&record, "").unwrap();
    std::fs::write(
        root.join("host.json"),
        json!({
            "version": "2.0",
            "customHandler": { "description": { "defaultExecutablePath": "node", "arguments": [handler_script()] } },
            "extensions": { "serviceBus": { "maxConcurrentCalls": 2 } }
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        root.join("local.settings.example.json"),
        json!({ "Values": {
            "FUNCTIONS_WORKER_RUNTIME": "custom",
            "RECORD_FILE": record.display().to_string(),
            "SYNC_QUEUE_NAME": "marketplace-sync",
            "AUTH_JWT_SECRET": "local-dev-login-secret-0123456789abcdef",
            "AUTH_ISSUER": "meschain-dev",
            "AUTH_AUDIENCE": "meschain-realtime"
        } })
        .to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("marketplace-sync")).unwrap();
    std::fs::write(root.join("marketplace-sync/function.json"), sync_function_json).unwrap();
    (root, record)
}

const SYNC_FUNCTION: &str = r#"{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"message","queueName":"%SYNC_QUEUE_NAME%","connection":"ServiceBusConnection"}]}"#;

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Starts `meschain dev`, waits for its "Ready in" line.
fn start_dev(root: &Path, port: u16) -> Child {
    let mut child = Command::new(BIN)
        .args(["dev", "--app-root", root.to_str().unwrap(), "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("Ready in ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("meschain dev ready");
    child
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn decode_twice(v: &Value) -> Value {
    let once: String = serde_json::from_str(v.as_str().unwrap()).unwrap();
    serde_json::from_str(&once).unwrap()
}

#[test]
fn test_dev_stops_on_bad_function_json_naming_file_and_field() {
    let (root, _) = app("badfn", r#"{"bindings":[{"type":"htpTrigger","direction":"in","name":"req"}]}"#);
    let _cleanup = Cleanup(root.clone());
    let out = run(&["dev", "--app-root", root.to_str().unwrap(), "--port", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"marketplace-sync/function.json: bindings[0].type: unknown binding type "htpTrigger""#),
        "{err}"
    );
}

#[test]
fn test_dev_stops_when_handler_missing() {
    let (root, _) = app("nohandler", SYNC_FUNCTION);
    let _cleanup = Cleanup(root.clone());
    std::fs::write(
        root.join("host.json"),
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}"#,
    )
    .unwrap();
    let out = run(&["dev", "--app-root", root.to_str().unwrap(), "--port", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host.json: customHandler.description.defaultExecutablePath:"), "{err}");
}

#[test]
fn test_enqueue_queue_resubmit_and_kill9_restart() {
    let (root, record) = app("flow", SYNC_FUNCTION);
    let _cleanup = Cleanup(root.clone());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut dev = start_dev(&root, port);

    // A sync request reaches the function with the host's encoding.
    let items = root.join("items.json");
    std::fs::write(&items, r#"[{"barcode":"A-1","quantity":3}]"#).unwrap();
    let out = run(&[
        "enqueue",
        "--marketplace",
        "trendyol",
        "--operation",
        "inventory",
        "--items",
        items.to_str().unwrap(),
        "--host-url",
        &url,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the sync request", Duration::from_secs(10), || !records(&record).is_empty());
    let rec = &records(&record)[0];
    assert_eq!(rec["path"], "/marketplace-sync");
    let msg = decode_twice(&rec["body"]["Data"]["message"]);
    assert_eq!(msg["marketplace"], "trendyol");
    assert_eq!(msg["operation"], "inventory");
    assert_eq!(msg["items"], json!([{ "barcode": "A-1", "quantity": 3 }]));
    assert!(msg["requestedAt"].as_str().unwrap().ends_with('Z'));
    let md = &rec["body"]["Metadata"];
    assert_eq!(md["MessageId"], json!(format!("\"{}\"", msg["requestId"].as_str().unwrap())));
    assert_eq!(md["DeliveryCount"], "1");
    assert_eq!(md["marketplace"], "\"trendyol\"");

    // A request the handler always rejects (a prices sync whose item has no price) ends in the
    // dead-letter queue after 10 deliveries.
    let failing = root.join("failing-items.json");
    std::fs::write(&failing, r#"[{"barcode": "always-fail", "quantity": 1}]"#).unwrap();
    let args = ["enqueue", "--marketplace", "ozon", "--operation", "prices", "--items", failing.to_str().unwrap()];
    let out = run(&[&args[..], &["--host-url", &url]].concat());
    assert!(out.status.success());
    let dead = || -> Value {
        let out = run(&["queue", "dead-letters", "--host-url", &url]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    wait_until("a dead letter", Duration::from_secs(15), || dead().as_array().unwrap().len() == 1);
    let d = dead();
    assert_eq!(d[0]["deliveryCount"], 10);
    let id = d[0]["messageId"].as_str().unwrap().to_string();
    let deliveries = |id: &str| {
        records(&record).iter().filter(|r| r["body"]["Metadata"]["MessageId"] == json!(format!("\"{id}\""))).count()
    };
    assert_eq!(deliveries(&id), 10);

    // Resubmit: back on the queue with DeliveryCount starting over.
    let out = run(&["queue", "resubmit", &id, "--host-url", &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the resubmitted message back in dead letters", Duration::from_secs(15), || {
        deliveries(&id) == 20 && dead().as_array().unwrap().len() == 1
    });
    let counts: Vec<String> = records(&record)
        .iter()
        .filter(|r| r["body"]["Metadata"]["MessageId"] == json!(format!("\"{id}\"")))
        .map(|r| r["body"]["Metadata"]["DeliveryCount"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(counts[10], "1");

    // Bad input is refused with a clear error.
    let out = run(&["queue", "resubmit", "no-such-id", "--host-url", &url]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    std::fs::write(&items, r#"{"not":"an array"}"#).unwrap();
    let out = run(&[
        "enqueue",
        "--marketplace",
        "trendyol",
        "--operation",
        "full",
        "--items",
        items.to_str().unwrap(),
        "--host-url",
        &url,
    ]);
    assert!(!out.status.success());
    let out =
        run(&["enqueue", "--marketplace", "trendyol", "--operation", "full", "--queue", "nope", "--host-url", &url]);
    assert!(!out.status.success());
    let out = run(&["enqueue", "--marketplace", "etsy", "--operation", "full", "--host-url", &url]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--marketplace must be one of"));
    let out = run(&["queue", "list", "--host-url", "http://example.com:7071"]);
    assert!(!out.status.success(), "non-loopback host URLs are refused");

    // SIGKILL: the handler dies with it (no orphan on the port) and the queue survives a restart.
    let handler_port = status(&url)["handler"]["port"].as_u64().unwrap();
    dev.kill().unwrap();
    dev.wait().unwrap();
    wait_until("the orphaned handler to exit", Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", handler_port as u16)).is_err()
    });
    let mut dev = start_dev(&root, port);
    assert_eq!(dead()[0]["messageId"], id);
    let out = run(&["queue", "list", "--host-url", &url]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([]));
    dev.kill().unwrap();
    dev.wait().unwrap();
}

fn status(url: &str) -> Value {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /admin/host/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

#[test]
fn test_token_uses_local_identity_settings() {
    let (root, _) = app("token", SYNC_FUNCTION);
    let _cleanup = Cleanup(root.clone());
    let out =
        run(&["token", "--user", "alice", "--role", "admin", "--role", "ops", "--app-root", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["roles"], json!(["admin", "ops"]));
    assert_eq!(claims["iss"], "meschain-dev");
    assert_eq!(claims["aud"], "meschain-realtime");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);

    std::fs::write(root.join("local.settings.json"), r#"{"Values":{}}"#).unwrap();
    let out = run(&["token", "--user", "alice", "--app-root", root.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("local.settings.json: Values.AUTH_JWT_SECRET"));
}

/// A loopback stand-in for `POST https://{ns}.servicebus.windows.net/{queue}/messages`:
/// 201 for a valid SAS token, 401 otherwise. Serves `n` requests.
fn service_bus_stand_in(n: usize) -> (u16, std::thread::JoinHandle<Vec<(u16, String)>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut head = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                head.push(line.trim_end().to_string());
                line.clear();
            }
            let header = |name: &str| {
                head.iter().find_map(|h| {
                    let (k, v) = h.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let path = head[0].split_whitespace().nth(1).unwrap().to_string();
            let queue_uri = format!("http://127.0.0.1:{port}{}", path.trim_end_matches("/messages"));
            let now = meschain_model::clock::now_secs();
            let ok = meschain_functions_host::servicebus::verify_sas(
                &header("authorization").unwrap_or_default(),
                &queue_uri,
                "send",
                "sb-key",
                now,
            )
            .is_ok();
            let status = if ok { 201 } else { 401 };
            write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            seen.push((status, String::from_utf8_lossy(&body).to_string()));
        }
        seen
    });
    (port, h)
}

#[test]
fn test_enqueue_to_service_bus_rest_with_sas() {
    let (port, server) = service_bus_stand_in(3);
    let endpoint = format!("http://127.0.0.1:{port}");
    let base = [
        "enqueue",
        "--marketplace",
        "hepsiburada",
        "--operation",
        "orders",
        "--namespace",
        "contoso",
        "--queue",
        "orders",
        "--endpoint",
        &endpoint,
    ];
    let ok = Command::new(BIN).args(base).args(["--sas-key-name", "send", "--sas-key", "sb-key"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = Command::new(BIN).args(base).args(["--sas-key-name", "send", "--sas-key", "wrong"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("401"));
    let cs = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=sb-key";
    let via_cs = Command::new(BIN).args(base).args(["--connection-string", cs]).output().unwrap();
    assert!(via_cs.status.success(), "{}", String::from_utf8_lossy(&via_cs.stderr));
    let seen = server.join().unwrap();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![201, 401, 201]);
    let body: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(body["marketplace"], "hepsiburada");
    assert_eq!(body["operation"], "orders");
    assert!(body.get("items").is_none(), "no items, no field: {body}");
}
