//! Integration tests: the real local host (in-process, port 0) driving a real custom-handler
//! process (`tests/handler/handler.mjs`, run with node), checked against the host's documented
//! encoding and the reference payloads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use meschain_functions_host::config::App;
use meschain_functions_host::dev::{DevHost, DevOptions};
use meschain_functions_host::worker::WorkerExit;
use serde_json::{Value, json};

struct TestApp {
    root: PathBuf,
    data: PathBuf,
    record: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn handler_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/handler/handler.mjs").display().to_string()
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fh-it-{tag}-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn make_app(tag: &str, functions: &[(&str, Value)], forwarding: bool, extra_values: Value) -> TestApp {
    let root = temp(tag);
    let record = root.join("record.jsonl");
    std::fs::write(&record, "").unwrap();
    let host = json!({
        "version": "2.0",
        "customHandler": {
            "description": { "defaultExecutablePath": "node", "arguments": [handler_script(), "--port", "%FUNCTIONS_CUSTOMHANDLER_PORT%", "%UNSET_SETTING%"] },
            "enableForwardingHttpRequest": forwarding
        },
        "extensions": { "http": { "routePrefix": "api" }, "serviceBus": { "maxConcurrentCalls": 4 } },
        "functionTimeout": "00:00:10"
    });
    std::fs::write(root.join("host.json"), host.to_string()).unwrap();
    let mut values = json!({ "FUNCTIONS_WORKER_RUNTIME": "custom", "RECORD_FILE": record.display().to_string() });
    if let Value::Object(extra) = extra_values {
        for (k, v) in extra {
            values[k] = v;
        }
    }
    std::fs::write(root.join("local.settings.json"), json!({ "IsEncrypted": false, "Values": values }).to_string())
        .unwrap();
    for (name, fj) in functions {
        std::fs::create_dir_all(root.join(name)).unwrap();
        std::fs::write(root.join(name).join("function.json"), fj.to_string()).unwrap();
    }
    let data = root.join(".data");
    TestApp { root, data, record }
}

async fn start(app: &TestApp) -> DevHost {
    start_with_routes(app, Router::new()).await
}

async fn start_with_routes(app: &TestApp, routes: Router) -> DevHost {
    let loaded = App::load(&app.root, &|n| std::env::var(n).ok()).unwrap();
    let host = DevHost::start(
        loaded,
        DevOptions { data_dir: app.data.clone(), port: Some(0), extra_env: BTreeMap::new(), handler: None, routes },
    )
    .await
    .unwrap();
    assert!(host.wait_ready(Duration::from_secs(20)).await, "handler did not become ready");
    host
}

fn records(app: &TestApp) -> Vec<Value> {
    std::fs::read_to_string(&app.record)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn wait_records(app: &TestApp, timeout: Duration, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = records(app);
        if pred(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; records: {r:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn enqueue(base: &str, queue: &str, body: Value) -> String {
    let r = client()
        .post(format!("{base}/admin/queues/{queue}/messages"))
        .header("X-Meschain-Control", "1")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["messageId"].as_str().unwrap().to_string()
}

async fn get_json(url: &str) -> Value {
    client().get(url).send().await.unwrap().json().await.unwrap()
}

/// An anonymous HTTP function (trigger + `http` output) on `route`.
fn anonymous_http(route: &str) -> Value {
    json!({ "bindings": [
        { "type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "route": route },
        { "type": "http", "direction": "out", "name": "res" }
    ] })
}

fn sb_trigger(queue: &str) -> Value {
    json!({ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": queue, "connection": "ServiceBusConnection" } ] })
}

fn base(host: &DevHost) -> String {
    format!("http://127.0.0.1:{}", host.local_addr.port())
}

fn unquote(v: &Value) -> String {
    serde_json::from_str::<String>(v.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_timer_invocation_envelope() {
    let app = make_app(
        "timer",
        &[
            (
                "fast",
                json!({ "bindings": [ { "type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "*/1 * * * * *" } ] }),
            ),
            (
                "monitored",
                json!({ "bindings": [ { "type": "timerTrigger", "direction": "in", "name": "myTimer", "schedule": "*/1 * * * * *", "useMonitor": true } ] }),
            ),
        ],
        false,
        json!({}),
    );
    let host = start(&app).await;
    let recs = wait_records(&app, Duration::from_secs(10), "two timer firings each", |r| {
        r.iter().filter(|x| x["path"] == "/fast").count() >= 2
            && r.iter().filter(|x| x["path"] == "/monitored").count() >= 2
    })
    .await;
    let fast = recs.iter().find(|x| x["path"] == "/fast").unwrap();
    // `%NAME%` in arguments: expanded from the handler's environment; unknown names dropped.
    let port = get_json(&format!("{}/admin/host/status", base(&host))).await["handler"]["port"].to_string();
    assert_eq!(fast["argv"], json!(["--port", port]));
    assert_eq!(fast["method"], "POST");
    let h = &fast["headers"];
    assert!(h["x-azure-functions-invocationid"].as_str().unwrap().len() == 36);
    assert!(h["user-agent"].as_str().unwrap().starts_with("Azure-Functions-Host/"));
    assert!(h["x-azure-functions-hostversion"].as_str().unwrap().starts_with("4."));
    assert!(h["content-type"].as_str().unwrap().starts_with("application/json"));
    let body = &fast["body"];
    assert_eq!(body["Data"]["timer"]["Schedule"], json!({ "AdjustForDST": true }));
    assert_eq!(body["Data"]["timer"]["ScheduleStatus"], Value::Null, "sub-minute schedules are unmonitored");
    assert_eq!(body["Data"]["timer"]["IsPastDue"], false);
    let md = body["Metadata"].as_object().unwrap();
    assert_eq!(md.keys().collect::<Vec<_>>(), vec!["sys"]);
    assert_eq!(md["sys"]["MethodName"], "fast");
    assert!(md["sys"]["UtcNow"].as_str().unwrap().ends_with('Z'));
    // Monitored: ScheduleStatus present, first Last is DateTime.MinValue, then the previous occurrence.
    let mons: Vec<&Value> = recs.iter().filter(|x| x["path"] == "/monitored").collect();
    let s0 = &mons[0]["body"]["Data"]["myTimer"]["ScheduleStatus"];
    assert_eq!(s0["Last"], "0001-01-01T00:00:00+00:00");
    let s1 = &mons[1]["body"]["Data"]["myTimer"]["ScheduleStatus"];
    assert_eq!(s1["Last"], s0["Next"], "Last of a run is the occurrence fired before");
    assert!(s1["Next"].as_str().unwrap().ends_with("+00:00"));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_queue_metadata_redelivery_and_dead_letter() {
    let app = make_app("sb", &[("marketplace-sync", sb_trigger("marketplace-sync"))], false, json!({}));
    let host = start(&app).await;
    let b = base(&host);
    let fixture: Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/host/servicebus-ext5-fixture-azfunc.json")).unwrap();

    // Fails twice, then succeeds on the third delivery.
    let flaky = enqueue(&b, "marketplace-sync", json!({ "fail": 2, "marketplace": "trendyol" })).await;
    let recs = wait_records(&app, Duration::from_secs(10), "three deliveries", |r| r.len() >= 3).await;
    let counts: Vec<String> =
        recs.iter().map(|r| r["body"]["Metadata"]["DeliveryCount"].as_str().unwrap().to_string()).collect();
    assert_eq!(counts, vec!["1", "2", "3"]);
    let md = recs[0]["body"]["Metadata"].as_object().unwrap();
    for k in fixture["Metadata"].as_object().unwrap().keys() {
        if k != "message" {
            assert!(md.contains_key(k), "metadata key {k} missing");
        }
    }
    assert_eq!(unquote(&md["MessageId"]), flaky);
    assert_eq!(unquote(&md["ContentType"]), "application/json");
    assert_eq!(md["marketplace"], "\"trendyol\"");
    assert_eq!(md["fail"], "2");
    assert_eq!(md["sys"]["MethodName"], "marketplace-sync");
    assert!(md["SequenceNumber"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(unquote(&md["EnqueuedTimeUtc"]).ends_with('Z'));
    let tokens: std::collections::HashSet<String> =
        recs.iter().map(|r| r["body"]["Metadata"]["LockToken"].as_str().unwrap().to_string()).collect();
    assert_eq!(tokens.len(), 3, "each delivery has its own lock token");
    // Data is double-encoded JSON text.
    let data = &recs[0]["body"]["Data"]["msg"];
    let once: String = serde_json::from_str(data.as_str().unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&once).unwrap(), json!({ "fail": 2, "marketplace": "trendyol" }));

    // Always fails: ten deliveries then the dead-letter queue.
    let doomed = enqueue(&b, "marketplace-sync", json!({ "fail": 1000 })).await;
    let recs = wait_records(&app, Duration::from_secs(15), "ten deliveries of the doomed message", |r| {
        r.iter().filter(|x| x["body"]["Metadata"]["MessageId"] == json!(format!("\"{doomed}\""))).count() >= 10
    })
    .await;
    let doomed_counts: Vec<u32> = recs
        .iter()
        .filter(|x| x["body"]["Metadata"]["MessageId"] == json!(format!("\"{doomed}\"")))
        .map(|x| x["body"]["Metadata"]["DeliveryCount"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(doomed_counts, (1..=10).collect::<Vec<u32>>());
    let deadline = Instant::now() + Duration::from_secs(5);
    let dead = loop {
        let d = get_json(&format!("{b}/admin/queues/marketplace-sync/deadletters")).await;
        if d.as_array().unwrap().len() == 1 || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead[0]["messageId"], doomed);
    assert_eq!(dead[0]["deliveryCount"], 10);
    assert_eq!(dead[0]["deadLetterReason"], "MaxDeliveryCountExceeded");
    // A probe enqueued after the dead-lettering: once it has been delivered, an eleventh
    // delivery of the doomed message (enqueued earlier) would have been too.
    let probe = enqueue(&b, "marketplace-sync", json!({ "fail": 0 })).await;
    wait_records(&app, Duration::from_secs(10), "the probe", |r| {
        r.iter().any(|x| x["body"]["Metadata"]["MessageId"] == json!(format!("\"{probe}\"")))
    })
    .await;
    assert_eq!(
        records(&app).iter().filter(|x| x["body"]["Metadata"]["MessageId"] == json!(format!("\"{doomed}\""))).count(),
        10,
        "no eleventh delivery"
    );
    assert_eq!(get_json(&format!("{b}/admin/queues/marketplace-sync/messages")).await, json!([]));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_invalid_handler_response_is_a_failure() {
    let app = make_app("badresp", &[("q", sb_trigger("q"))], false, json!({}));
    let host = start(&app).await;
    let id = enqueue(&base(&host), "q", json!({ "badJson": true })).await;
    let recs = wait_records(&app, Duration::from_secs(15), "ten deliveries", |r| r.len() >= 10).await;
    assert!(recs.iter().all(|r| r["body"]["Metadata"]["MessageId"] == json!(format!("\"{id}\""))));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_output_bindings_reach_the_queue() {
    let producer = json!({ "bindings": [
        { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "requests" },
        { "type": "serviceBus", "direction": "out", "name": "out", "queueName": "%RESULTS_QUEUE%" }
    ] });
    let web = json!({ "bindings": [
        { "type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "methods": ["post"], "route": "start" },
        { "type": "http", "direction": "out", "name": "res" },
        { "type": "serviceBus", "direction": "out", "name": "out", "queueName": "results" }
    ] });
    let app = make_app(
        "outputs",
        &[("producer", producer), ("consumer", sb_trigger("results")), ("web", web)],
        false,
        json!({ "RESULTS_QUEUE": "results" }),
    );
    let host = start(&app).await;
    let b = base(&host);
    enqueue(&b, "requests", json!({ "output": [{ "done": 1 }, { "done": 2 }] })).await;
    let r = client()
        .post(format!("{b}/api/start?out=yes"))
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let recs = wait_records(&app, Duration::from_secs(10), "three consumer invocations", |r| {
        r.iter().filter(|x| x["path"] == "/consumer").count() >= 3
    })
    .await;
    let mut bodies: Vec<Value> = recs
        .iter()
        .filter(|x| x["path"] == "/consumer")
        .map(|x| {
            let once: String = serde_json::from_str(x["body"]["Data"]["msg"].as_str().unwrap()).unwrap();
            serde_json::from_str(&once).unwrap()
        })
        .collect();
    bodies.sort_by_key(|v| v.to_string());
    assert_eq!(bodies, vec![json!({ "done": 1 }), json!({ "done": 2 }), json!({ "fromHttp": "yes" })]);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_http_wrapped_auth_methods_and_garbage() {
    let keyed = json!({ "bindings": [
        { "type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "function", "methods": ["get", "post"], "route": "orders/{id:int}" },
        { "type": "http", "direction": "out", "name": "res" }
    ] });
    let app = make_app("http", &[("orders", keyed)], false, json!({ "FUNCTIONS_FUNCTION_KEY": "test-key" }));
    let host = start(&app).await;
    assert_eq!(host.keys.function, "test-key");
    let b = base(&host);
    let c = client();
    assert_eq!(c.get(format!("{b}/api/orders/7")).send().await.unwrap().status(), 401);
    assert_eq!(c.get(format!("{b}/api/orders/7?code=wrong")).send().await.unwrap().status(), 401);
    assert_eq!(c.delete(format!("{b}/api/orders/7?code=test-key")).send().await.unwrap().status(), 405);
    assert_eq!(c.get(format!("{b}/api/orders/abc?code=test-key")).send().await.unwrap().status(), 404);
    assert_eq!(c.get(format!("{b}/api/nothing")).send().await.unwrap().status(), 404);
    assert_eq!(c.get(format!("{b}/elsewhere")).send().await.unwrap().status(), 404);
    let r = c
        .post(format!("{b}/api/orders/42?x=1&x=2"))
        .header("x-functions-key", "test-key")
        .header("content-type", "application/json")
        .body(r#"{"qty":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let echoed: Value = r.json().await.unwrap();
    let req = &echoed["received"];
    assert_eq!(req["Method"], "POST");
    assert!(req["Url"].as_str().unwrap().ends_with("/api/orders/42?x=1&x=2"));
    assert_eq!(req["Query"], json!({ "x": "1,2" }));
    assert_eq!(req["Params"], json!({ "id": "42" }));
    assert_eq!(req["Body"], r#"{"qty":2}"#);
    assert_eq!(req["Headers"]["Content-Type"], json!(["application/json"]));
    assert_eq!(req["Identities"][0]["AuthenticationType"], "WebJobsAuthLevel");
    assert_eq!(echoed["metadata"]["id"], "\"42\"");
    assert_eq!(echoed["metadata"]["qty"], "2");
    let rec = records(&app);
    assert_eq!(rec.last().unwrap()["path"], "/orders", "wrapped invocations go to /{{FunctionName}}");

    // Control endpoint garbage.
    let r = c.post(format!("{b}/admin/queues/none/messages")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 403, "missing control header");
    let r = c
        .post(format!("{b}/admin/queues/none/messages"))
        .header("X-Meschain-Control", "1")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(format!("{b}/admin/queues/none/deadletters")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(format!("{b}/admin/%ff%fe")).send().await.unwrap();
    assert!(r.status().is_client_error());
    // Oversized HTTP trigger body.
    // (Raw socket: the host answers 413 from the header alone, before the body is sent.)
    let status = raw_status(
        host.local_addr,
        &format!(
            "POST /api/orders/1?code=test-key HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            meschain_functions_host::http_trigger::MAX_BODY + 1
        ),
    )
    .await;
    assert_eq!(status, "413");
    // Malformed HTTP gets a 4xx from the server, not a hang.
    assert_eq!(raw_status(host.local_addr, "GARBAGE\r\n\r\n").await, "400");
    host.shutdown().await;
}

async fn raw_status(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("answer in time").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_control_rejects_bad_input() {
    let app = make_app("control", &[("q", sb_trigger("q"))], false, json!({}));
    let host = start(&app).await;
    let b = base(&host);
    let c = client();
    let post = |hdr: Option<&'static str>, body: Vec<u8>| {
        let mut r = c.post(format!("{b}/admin/queues/q/messages")).header("X-Meschain-Control", "1").body(body);
        if let Some(h) = hdr {
            r = r.header("BrokerProperties", h);
        }
        r.send()
    };
    assert_eq!(post(Some("not json"), b"{}".to_vec()).await.unwrap().status(), 400);
    assert_eq!(post(Some(r#"{"MessageId": 5}"#), b"{}".to_vec()).await.unwrap().status(), 400);
    assert_eq!(post(None, vec![b'x'; 300 * 1024]).await.unwrap().status(), 413);
    let r = c
        .post(format!("{b}/admin/queues/q/deadletters/123/resubmit"))
        .header("X-Meschain-Control", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_forwarded_http_function() {
    let fj = json!({ "bindings": [
        { "type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "route": "fwd/{x}" },
        { "type": "http", "direction": "out", "name": "res" }
    ] });
    let app = make_app("fwd", &[("fwd", fj)], true, json!({}));
    let host = start(&app).await;
    let b = base(&host);
    let r = client().put(format!("{b}/api/fwd/1?q=2")).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-handler"], "forwarded");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({ "method": "PUT", "path": "/api/fwd/1?q=2", "body": "hello" }));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_embedding_routes_share_the_listener() {
    use axum::routing::get;
    let echo = anonymous_http("echo");
    let app = make_app("routes", &[("echo", echo)], false, json!({}));
    // An app route, one that tries to shadow the control endpoint, and a fallback that must not
    // swallow the HTTP triggers.
    let routes = Router::new()
        .route("/", get(|| async { "page" }))
        .route("/admin/host/status", get(|| async { "shadowed" }))
        .fallback(|| async { "app fallback" });
    let host = start_with_routes(&app, routes).await;
    let b = base(&host);
    let page = client().get(format!("{b}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "page");
    let status = get_json(&format!("{b}/admin/host/status")).await;
    assert_eq!(status["handler"]["starts"], 1, "the control endpoint comes first: {status}");
    assert_eq!(client().get(format!("{b}/api/echo")).send().await.unwrap().status(), 200);
    let missing = client().get(format!("{b}/api/nothing-here")).send().await.unwrap();
    assert_eq!(missing.status(), 404, "unknown paths still get the host's 404");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_handler_crash_is_restarted() {
    let crash = anonymous_http("crash");
    let echo = anonymous_http("echo");
    let app = make_app("crash", &[("crash", crash), ("echo", echo)], false, json!({}));
    let host = start(&app).await;
    let b = base(&host);
    let status = get_json(&format!("{b}/admin/host/status")).await;
    let pid1 = status["handler"]["pid"].clone();
    assert_eq!(status["handler"]["starts"], 1);
    let r = client().post(format!("{b}/api/crash")).send().await.unwrap();
    assert_eq!(r.status(), 500, "the invocation that killed the handler fails");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = get_json(&format!("{b}/admin/host/status")).await;
        if s["handler"]["starts"] == 2 && s["state"] == "Running" {
            assert_ne!(s["handler"]["pid"], pid1);
            break;
        }
        assert!(Instant::now() < deadline, "handler not restarted: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client().get(format!("{b}/api/echo")).send().await.unwrap().status(), 200);
    let pids: std::collections::HashSet<String> = records(&app).iter().map(|r| r["pid"].to_string()).collect();
    assert_eq!(pids.len(), 2);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_host_gives_up_after_three_failures() {
    let app = make_app("giveup", &[("q", sb_trigger("q"))], false, json!({ "EXIT_AT_START": "3" }));
    let loaded = App::load(&app.root, &|n| std::env::var(n).ok()).unwrap();
    let mut host = DevHost::start(
        loaded,
        DevOptions {
            data_dir: app.data.clone(),
            port: Some(0),
            extra_env: BTreeMap::new(),
            handler: None,
            routes: Router::new(),
        },
    )
    .await
    .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(20), host.wait()).await.expect("gave up in time");
    match exit {
        WorkerExit::GaveUp(msg) => assert!(msg.contains("3 failures"), "{msg}"),
        other => panic!("{other:?}"),
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_intentional_restart_is_not_counted() {
    // Exit code 200 asks for a restart; with it the handler never reaches "ready", but the host
    // keeps restarting instead of giving up after three.
    let app = make_app("exit200", &[("q", sb_trigger("q"))], false, json!({ "EXIT_AT_START": "200" }));
    let loaded = App::load(&app.root, &|n| std::env::var(n).ok()).unwrap();
    let mut host = DevHost::start(
        loaded,
        DevOptions {
            data_dir: app.data.clone(),
            port: Some(0),
            extra_env: BTreeMap::new(),
            handler: None,
            routes: Router::new(),
        },
    )
    .await
    .unwrap();
    let b = base(&host);
    // Each start is a Node process, slow on a loaded machine: wait for the fourth start (past
    // the three a crashing handler gets) rather than for a fixed time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = get_json(&format!("{b}/admin/host/status")).await;
        if s["handler"]["starts"].as_u64().unwrap() > 3 || tokio::time::Instant::now() > deadline {
            break s;
        }
        assert!(tokio::time::timeout(Duration::from_millis(200), host.wait()).await.is_err(), "must not give up: {s}");
    };
    assert!(s["handler"]["starts"].as_u64().unwrap() > 3, "{s}");
    assert!(tokio::time::timeout(Duration::from_millis(500), host.wait()).await.is_err(), "must not give up");
    host.shutdown().await;
}

/// Run as a child process by `test_kill9_loses_no_message` (needs a process to SIGKILL).
#[test]
#[ignore = "helper process for test_kill9_loses_no_message"]
fn child_host() {
    let Ok(root) = std::env::var("FH_CHILD_ROOT") else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let root = PathBuf::from(root);
        let loaded = App::load(&root, &|n| std::env::var(n).ok()).unwrap();
        let port: u16 = std::env::var("FH_CHILD_PORT").unwrap().parse().unwrap();
        let host = DevHost::start(
            loaded,
            DevOptions {
                data_dir: root.join(".data"),
                port: Some(port),
                extra_env: BTreeMap::new(),
                handler: None,
                routes: Router::new(),
            },
        )
        .await
        .unwrap();
        assert!(host.wait_ready(Duration::from_secs(20)).await);
        println!("CHILD-READY");
        std::future::pending::<()>().await;
    });
}

fn spawn_child(app: &TestApp, port: u16) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_host", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("FH_CHILD_ROOT", &app.root)
        .env("FH_CHILD_PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("CHILD-READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("child host ready");
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_kill9_loses_no_message() {
    let app = make_app("kill9", &[("work", sb_trigger("work"))], false, json!({}));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let b = format!("http://127.0.0.1:{port}");
    let mut child = spawn_child(&app, port);
    // The first 8 messages complete; the rest wait on a gate that opens only after the kill, so
    // the kill lands with exactly maxConcurrentCalls (4) gated messages in flight, whatever the
    // machine's load.
    let gate = app.root.join("gate");
    let mut ids = Vec::new();
    for i in 0..40 {
        let body = if i < 8 { json!({ "n": i }) } else { json!({ "n": i, "waitForFile": gate.display().to_string() }) };
        ids.push(enqueue(&b, "work", body).await);
    }
    wait_records(&app, Duration::from_secs(20), "8 completed and 4 held", |r| r.len() >= 12).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let seen_before = records(&app).len();
    assert_eq!(seen_before, 12, "only maxConcurrentCalls messages may be held at the kill");
    std::fs::write(&gate, "").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut child = spawn_child(&app, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let active = get_json(&format!("{b}/admin/queues/work/messages")).await;
        if active.as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "queue not drained: {active}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_json(&format!("{b}/admin/queues/work/deadletters")).await, json!([]));
    child.kill().unwrap();
    child.wait().unwrap();

    let recs = records(&app);
    let mut per_id: HashMap<String, Vec<u32>> = HashMap::new();
    for r in &recs {
        let id = unquote(&r["body"]["Metadata"]["MessageId"]);
        per_id.entry(id).or_default().push(r["body"]["Metadata"]["DeliveryCount"].as_str().unwrap().parse().unwrap());
    }
    for id in &ids {
        assert!(per_id.contains_key(id), "message {id} was lost");
    }
    assert_eq!(per_id.len(), ids.len(), "no message appeared out of nowhere");
    // Exactly the messages held at the kill are delivered twice (a slot frees only after its
    // message is settled), and their second delivery carries a higher DeliveryCount.
    let redelivered: Vec<&Vec<u32>> = per_id.values().filter(|c| c.len() > 1).collect();
    assert_eq!(redelivered.len(), 4, "{redelivered:?}");
    for counts in redelivered {
        assert!(counts.windows(2).all(|w| w[1] > w[0]), "{counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bad_config_stops_with_file_and_field() {
    let app = make_app(
        "badcfg",
        &[("negotiate", json!({ "bindings": [ { "type": "htpTrigger", "direction": "in", "name": "req" } ] }))],
        false,
        json!({}),
    );
    let err = App::load(&app.root, &|_| None).unwrap_err().to_string();
    assert_eq!(err, r#"negotiate/function.json: bindings[0].type: unknown binding type "htpTrigger""#);
    std::fs::write(
        app.root.join("negotiate/function.json"),
        r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"}]}"#,
    )
    .unwrap();
    std::fs::write(app.root.join("host.json"), r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"node"}},"extensions":{"serviceBus":{"maxConcurrentCalls":0}}}"#).unwrap();
    let err = App::load(&app.root, &|_| None).unwrap_err().to_string();
    assert!(err.starts_with("host.json: extensions.serviceBus.maxConcurrentCalls: "), "{err}");
    std::fs::write(
        app.root.join("host.json"),
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"node"}}}"#,
    )
    .unwrap();
    std::fs::write(app.root.join("local.settings.json"), r#"{"Values":{"X":true}}"#).unwrap();
    let err = App::load(&app.root, &|_| None).unwrap_err().to_string();
    assert!(err.starts_with("local.settings.json: Values.X: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_max_concurrent_calls_is_honoured() {
    let app = make_app("conc", &[("q", sb_trigger("q"))], false, json!({}));
    let host = start(&app).await; // maxConcurrentCalls = 4 in make_app
    let b = base(&host);
    for i in 0..12 {
        enqueue(&b, "q", json!({ "n": i, "sleepMs": 300 })).await;
    }
    let recs = wait_records(&app, Duration::from_secs(15), "twelve deliveries", |r| r.len() >= 12).await;
    let starts: Vec<i64> = recs.iter().map(|r| r["at"].as_i64().unwrap()).collect();
    // In flight at each arrival: invocations started within the previous 300 ms (minus slack).
    let max_overlap = starts.iter().map(|&t| starts.iter().filter(|&&u| u <= t && t - u < 250).count()).max().unwrap();
    assert!(max_overlap <= 4, "more than maxConcurrentCalls in flight: {max_overlap}");
    assert!(max_overlap >= 3, "deliveries were not concurrent: {max_overlap}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_invocation_timeout_abandons_and_redelivers() {
    let app = make_app("timeout", &[("q", sb_trigger("q"))], false, json!({}));
    let host_json = std::fs::read_to_string(app.root.join("host.json")).unwrap().replace("00:00:10", "00:00:01");
    std::fs::write(app.root.join("host.json"), host_json).unwrap();
    let host = start(&app).await;
    let id = enqueue(&base(&host), "q", json!({ "sleepMs": 1500 })).await;
    let recs = wait_records(&app, Duration::from_secs(10), "a redelivery after the timeout", |r| r.len() >= 2).await;
    assert!(recs.iter().all(|r| unquote(&r["body"]["Metadata"]["MessageId"]) == id));
    assert_eq!(recs[1]["body"]["Metadata"]["DeliveryCount"], "2");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_missed_monitored_timer_runs_past_due() {
    let app = make_app(
        "pastdue",
        &[(
            "daily",
            json!({ "bindings": [ { "type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "0 0 3 * * *" } ] }),
        )],
        false,
        json!({}),
    );
    // The host was down when the last occurrence was due.
    std::fs::create_dir_all(app.data.join("timers")).unwrap();
    std::fs::write(
        app.data.join("timers/daily.json"),
        r#"{"last":"2026-01-01T03:00:00Z","next":"2026-01-02T03:00:00Z","last_updated":"2026-01-01T03:00:01Z"}"#,
    )
    .unwrap();
    let host = start(&app).await;
    let recs = wait_records(&app, Duration::from_secs(10), "the past-due run", |r| !r.is_empty()).await;
    let t = &recs[0]["body"]["Data"]["timer"];
    assert_eq!(t["IsPastDue"], true);
    assert_eq!(t["ScheduleStatus"]["Last"], "2026-01-01T03:00:00+00:00");
    assert_eq!(t["ScheduleStatus"]["Next"], "2026-01-02T03:00:00+00:00");
    host.shutdown().await;
    let saved: Value = serde_json::from_slice(&std::fs::read(app.data.join("timers/daily.json")).unwrap()).unwrap();
    assert_eq!(saved["last"], "2026-01-02T03:00:00Z", "status advanced after the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_cors_from_local_settings() {
    let echo = anonymous_http("echo");
    let app = make_app("cors", &[("echo", echo)], false, json!({}));
    let settings: Value =
        serde_json::from_slice(&std::fs::read(app.root.join("local.settings.json")).unwrap()).unwrap();
    let mut settings = settings;
    settings["Host"] = json!({ "CORS": "http://localhost:5173", "CORSCredentials": true });
    std::fs::write(app.root.join("local.settings.json"), settings.to_string()).unwrap();
    let host = start(&app).await;
    let b = base(&host);
    let c = client();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{b}/api/echo"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(pre.headers()["access-control-allow-credentials"], "true");
    assert_eq!(pre.headers()["access-control-allow-headers"], "content-type");
    let r = c.get(format!("{b}/api/echo")).header("Origin", "http://localhost:5173").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "http://localhost:5173");
    let r = c.get(format!("{b}/api/echo")).header("Origin", "http://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_shutdown_drains_in_flight_invocations() {
    let app = make_app("drain", &[("q", sb_trigger("q"))], false, json!({}));
    let host = start(&app).await;
    let first = enqueue(&base(&host), "q", json!({ "sleepMs": 500 })).await;
    wait_records(&app, Duration::from_secs(10), "the delivery", |r| r.len() == 1).await;
    host.shutdown().await; // the handler must not be killed under the running invocation
    let host = start(&app).await;
    assert_eq!(get_json(&format!("{}/admin/queues/q/messages", base(&host))).await, json!([]));
    // A probe enqueued after the restart: once it is delivered, a redelivery of the first
    // message (earlier in the queue) would have been too.
    let probe = enqueue(&base(&host), "q", json!({})).await;
    let id = |x: &Value| unquote(&x["body"]["Metadata"]["MessageId"]);
    let recs = wait_records(&app, Duration::from_secs(10), "the probe", |r| r.iter().any(|x| id(x) == probe)).await;
    assert_eq!(recs.iter().filter(|x| id(x) == first).count(), 1, "completed before shutdown, so not redelivered");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_second_host_on_same_data_folder_is_refused() {
    let app = make_app("lock", &[("q", sb_trigger("q"))], false, json!({}));
    let host = start(&app).await;
    let loaded = App::load(&app.root, &|n| std::env::var(n).ok()).unwrap();
    let err = DevHost::start(
        loaded,
        DevOptions {
            data_dir: app.data.clone(),
            port: Some(0),
            extra_env: BTreeMap::new(),
            handler: None,
            routes: Router::new(),
        },
    )
    .await
    .err()
    .expect("second host refused");
    assert!(err.to_string().contains("in use by another running `meschain dev`"), "{err}");
    host.shutdown().await;
    // Released on shutdown.
    let host = start(&app).await;
    host.shutdown().await;
}
