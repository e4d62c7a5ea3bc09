//! A handler that panics fails only the invocation it panicked in: served by the real server on
//! a loopback port, a panicking request gets 500 while other requests are in flight, and those and
//! later ones are answered as usual; on the other paths (enveloped HTTP, other triggers) the panic
//! is a failed invocation whose earlier outputs are dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use meschain_functions_protocol::{
    Context, FunctionSet, Handler, HttpBinding, HttpRequest, HttpResponse, InvocationRequest, Limits, TriggerFailure,
    router, serve,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fns {
    Echo,
    Tick,
}

impl FunctionSet for Fns {
    const FUNCTIONS: &'static [Fns] = &[Fns::Echo, Fns::Tick];

    fn name(self) -> &'static str {
        match self {
            Fns::Echo => "echo",
            Fns::Tick => "tick",
        }
    }

    fn http_binding(self) -> Option<HttpBinding> {
        match self {
            Fns::Echo => Some(HttpBinding { route: "echo", request: "req", response: "res", methods: &[Method::POST] }),
            Fns::Tick => None,
        }
    }
}

/// `echo`: body `panic` panics (after writing an output), `wait` waits until the test opens the
/// gate, anything else is echoed. `tick` panics when its timer data says `{"panic": true}`.
struct Panicky {
    gate: Arc<Semaphore>,
}

impl Handler for Panicky {
    type Function = Fns;

    async fn call_http(&self, _: Fns, ctx: &mut Context, req: HttpRequest) -> HttpResponse {
        if let Ok(outputs) = ctx.outputs() {
            outputs.push("queue", json!("written before the panic"));
        }
        match &req.body[..] {
            b"panic" => panic!("test handler panics on purpose"),
            b"wait" => {
                let _pass = self.gate.acquire().await.unwrap();
                HttpResponse::json(StatusCode::OK, &json!({"waited": true}))
            }
            body => HttpResponse::json(StatusCode::OK, &json!({"echo": String::from_utf8_lossy(body)})),
        }
    }

    async fn call_trigger(&self, _: Fns, _: &mut Context, payload: &InvocationRequest) -> Result<(), TriggerFailure> {
        let timer = payload.binding("timer").map_err(|e| TriggerFailure::bad_input(e.to_string()))?;
        if timer["panic"] == json!(true) {
            let unexpected: Option<u64> = timer["count"].as_u64();
            unexpected.expect("test trigger panics on purpose");
        }
        Ok(())
    }
}

/// One HTTP/1.1 request on its own connection; the status and JSON body of the answer.
async fn post(addr: SocketAddr, path: &str, body: &str) -> (StatusCode, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-azure-functions-invocationid: test-{}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).expect("a status line");
    let json = answer.split_once("\r\n\r\n").map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null));
    (StatusCode::from_u16(status).unwrap(), json.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_panic_fails_only_its_own_invocation() {
    let gate = Arc::new(Semaphore::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::new(Panicky { gate: Arc::clone(&gate) }));
    let server =
        tokio::spawn(
            async move { serve(listener, app, &Limits::default(), async { stopped.await.unwrap_or(()) }).await },
        );

    // Three requests in flight, held inside the handler until the gate opens.
    let waiting: Vec<_> = (0..3).map(|_| tokio::spawn(post(addr, "/api/echo", "wait"))).collect();
    // The forwarded path: the panicking request is answered 500 while they wait.
    let (status, body) = post(addr, "/api/echo", "panic").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error")));
    assert!(waiting.iter().all(|w| !w.is_finished()), "the waiting requests must still be in flight");

    // The enveloped path: the panic is the function's 500, and the output written before it is dropped.
    let envelope = json!({"Data": {"req": {"Method": "POST", "Body": "panic"}}}).to_string();
    let (status, body) = post(addr, "/echo", &envelope).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Outputs"]["res"]["statusCode"], 500);
    assert_eq!(body["Outputs"].get("queue"), None, "outputs of the panicked invocation: {body}");

    // Another trigger: a failed invocation (non-2xx), so the host records it and redelivers a message.
    let tick = json!({"Data": {"timer": {"panic": true}}}).to_string();
    let (status, body) = post(addr, "/tick", &tick).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error")));

    // The requests in flight all through the panics finish normally.
    gate.add_permits(3);
    for w in waiting {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap();
        assert_eq!((status, body), (StatusCode::OK, json!({"waited": true})));
    }
    // And the server goes on serving.
    assert_eq!(post(addr, "/api/echo", "after").await, (StatusCode::OK, json!({"echo": "after"})));
    let tick = json!({"Data": {"timer": {"panic": false}}}).to_string();
    assert_eq!(post(addr, "/tick", &tick).await.0, StatusCode::OK);
    assert!(!server.is_finished());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
