//! A proxy on a loopback port that makes the SignalR service fail on demand: each request takes
//! the next scripted fault (a status with optional `Retry-After`, or a hang), and once the
//! script is used up requests are forwarded untouched to the real (local) service.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16, Option<u64>),
    Hang(Duration),
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

pub struct Chaos {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Chaos {
    /// Starts the proxy in front of `upstream` (e.g. `http://127.0.0.1:8888`).
    pub async fn start(upstream: &str) -> Chaos {
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            script: Arc::default(),
            seen: Arc::default(),
            http: reqwest::Client::new(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Chaos { addr, shared }
    }

    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.script.lock().unwrap().extend(faults);
    }

    /// `METHOD path?query` of every request received, in order.
    pub fn seen(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().clone()
    }
}

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    s.seen.lock().unwrap().push(format!("{} {path}", req.method()));
    let fault = s.script.lock().unwrap().pop_front();
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut resp = Response::builder().status(code);
            if let Some(secs) = retry_after {
                resp = resp.header("retry-after", secs.to_string());
            }
            resp.body(Body::empty()).unwrap()
        }
        Some(Fault::Hang(d)) => {
            tokio::time::sleep(d).await;
            Response::builder().status(504).body(Body::empty()).unwrap()
        }
        None => {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 2 * 1024 * 1024).await.unwrap_or_default();
            let mut fwd = s.http.request(parts.method.clone(), format!("{}{path}", s.upstream)).body(bytes);
            for (k, v) in parts.headers.iter() {
                if k != "host" && k != "content-length" {
                    fwd = fwd.header(k, v);
                }
            }
            match fwd.send().await {
                Ok(r) => {
                    let mut out = Response::builder().status(r.status().as_u16());
                    for (k, v) in r.headers() {
                        out = out.header(k, v);
                    }
                    out.body(Body::from(r.bytes().await.unwrap_or_default())).unwrap()
                }
                Err(_) => Response::builder().status(502).body(Body::empty()).unwrap(),
            }
        }
    }
}
