//! The protocol layer with a toy app of its own (no MesChain code): one HTTP function that
//! writes a queue output when it can, one timer function; both transports, and the limits
//! that keep a silent client from holding a connection.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use meschain_functions_protocol::{
    Context, FunctionSet, Handler, HttpBinding, HttpRequest, HttpResponse, InvocationRequest, Limits, TriggerFailure,
    router, router_with_limits, serve,
};
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toy {
    Order,
    Tick,
}

impl FunctionSet for Toy {
    const FUNCTIONS: &'static [Toy] = &[Toy::Order, Toy::Tick];

    fn name(self) -> &'static str {
        match self {
            Toy::Order => "order",
            Toy::Tick => "tick",
        }
    }

    fn http_binding(self) -> Option<HttpBinding> {
        match self {
            Toy::Order => {
                Some(HttpBinding { route: "order", request: "req", response: "res", methods: &[Method::POST] })
            }
            Toy::Tick => None,
        }
    }
}

struct App;

impl Handler for App {
    type Function = Toy;

    async fn call_http(&self, _: Toy, ctx: &mut Context, req: HttpRequest) -> HttpResponse {
        match ctx.outputs() {
            Ok(outputs) => {
                outputs.push("queue", json!({"order": String::from_utf8_lossy(&req.body)}));
                HttpResponse::json(StatusCode::ACCEPTED, &json!({"queued": true}))
            }
            Err(e) => HttpResponse::error(StatusCode::SERVICE_UNAVAILABLE, "cannot_queue", &e.to_string()),
        }
    }

    async fn call_trigger(&self, _: Toy, ctx: &mut Context, payload: &InvocationRequest) -> Result<(), TriggerFailure> {
        payload.binding("timer").map_err(|e| TriggerFailure::bad_input(e.to_string()))?;
        ctx.log("tick");
        Ok(())
    }
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn test_outputs_only_where_the_transport_carries_them() {
    let app = router(Arc::new(App));
    let (status, body) = call(app.clone(), Request::post("/api/order").body(Body::from("42")).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("cannot_queue")));

    let envelope = json!({"Data": {"req": {"Method": "POST", "Body": "42"}}});
    let (status, body) =
        call(app.clone(), Request::post("/order").body(Body::from(envelope.to_string())).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Outputs"]["queue"], json!([{"order": "42"}]));
    assert_eq!(body["Outputs"]["res"]["statusCode"], 202);

    let tick = json!({"Data": {"timer": {"IsPastDue": false}}});
    let (status, body) = call(app.clone(), Request::post("/tick").body(Body::from(tick.to_string())).unwrap()).await;
    assert_eq!((status, body["Logs"].clone()), (StatusCode::OK, json!(["tick"])));
    let (status, body) = call(app, Request::post("/tick").body(Body::from("{}")).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_envelope")));
}

/// A request with no body at all takes the short path past the body limits: an envelope that is
/// not there is refused with the reason, and the server goes on serving.
#[tokio::test]
async fn test_empty_bodies() {
    let app = router(Arc::new(App));
    for uri in ["/order", "/tick"] {
        let (status, body) = call(app.clone(), Request::post(uri).body(Body::empty()).unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_envelope")), "{uri}");
    }
    let (status, body) = call(app.clone(), Request::post("/api/order").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("cannot_queue")));
    let tick = json!({"Data": {"timer": {"IsPastDue": false}}});
    let (status, _) = call(app, Request::post("/tick").body(Body::from(tick.to_string())).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

/// A client that sends part of its headers and goes silent is disconnected after the
/// header-read timeout, and the server stops within its grace period even while it waits.
#[tokio::test]
async fn test_silent_clients_are_bounded() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router_with_limits(Arc::new(App), limits.clone());
    let server =
        tokio::spawn(async move { serve(listener, app, &limits, async { stopped.await.unwrap_or(()) }).await });

    let silent = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /api/order HTTP/1.1\r\nhost: x\r\ncontent-").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        started.elapsed()
    });
    let waited = silent.await.unwrap();
    assert!(waited < Duration::from_secs(2), "held for {waited:?}");

    // Another silent client, then shutdown: it does not hold the server past the grace period.
    let _held = std::net::TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
}
