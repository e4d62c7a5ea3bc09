//! Starts the real `handler` binary on a free loopback port, as the Functions host does.

#![allow(dead_code)]

/// The test key pairs, JWK and token helpers and the JWKS stand-in: the file the `auth` module's
/// unit tests use, included here so that they are written once.
#[path = "../../src/auth/testing.rs"]
pub mod auth;
pub mod chaos;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

pub const ACCESS_KEY: &str = "primary-access-key-for-tests";
pub const SECONDARY_KEY: &str = "secondary-access-key-for-tests";
pub const JWT_SECRET: &str = "integration-test-login-secret-0123456789";
pub const ISSUER: &str = "meschain-test";
pub const AUDIENCE: &str = "meschain-realtime";

/// Settings the tests start the handler with.
pub fn settings() -> HashMap<&'static str, String> {
    HashMap::from([
        (
            "AzureSignalRConnectionString",
            format!("Endpoint=http://localhost;Port=8888;AccessKey={ACCESS_KEY};Version=1.0;"),
        ),
        (
            "AzureSignalRSecondaryConnectionString",
            format!("Endpoint=http://localhost;Port=8888;AccessKey={SECONDARY_KEY};Version=1.0;"),
        ),
        ("AUTH_JWT_SECRET", JWT_SECRET.to_string()),
        ("AUTH_ISSUER", ISSUER.to_string()),
        ("AUTH_AUDIENCE", AUDIENCE.to_string()),
        ("CORS_ALLOWED_ORIGINS", "http://localhost:5173".to_string()),
        ("ADMIN_BROADCAST_SCHEDULE", "*/5 * * * * *".to_string()),
        ("SYNC_QUEUE_NAME", "marketplace-sync".to_string()),
    ])
}

/// The claims of a login token the handler started with [`settings`] accepts: `sub` and
/// `roles`, its issuer and audience, valid for ten minutes.
pub fn login_claims(sub: &str, roles: &[&str]) -> Value {
    json!({"sub": sub, "roles": roles, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600})
}

/// `claims` signed as a login token: HS256 with [`JWT_SECRET`].
pub fn sign_login(claims: &Value) -> String {
    auth::sign(Algorithm::HS256, None, &EncodingKey::from_secret(JWT_SECRET.as_bytes()), claims)
}

/// A valid login token for `sub` with `roles` ([`login_claims`], [`sign_login`]).
pub fn login(sub: &str, roles: &[&str]) -> String {
    sign_login(&login_claims(sub, roles))
}

pub struct Handler {
    child: Child,
    pub base: String,
    pub output: mpsc::Receiver<String>,
    /// What the handler printed up to and including its listening line.
    pub startup: Vec<String>,
    /// The embedded store's folder, one per handler (removed after the process is reaped).
    _data: tempfile::TempDir,
}

impl Handler {
    /// Starts the handler with `settings` and waits for its listening line.
    pub fn start(settings: &HashMap<&'static str, String>) -> Handler {
        Self::start_logging(settings, "info")
    }

    /// Like [`Handler::start`], logging at `level` (`RUST_LOG`).
    pub fn start_logging(settings: &HashMap<&'static str, String>, level: &str) -> Handler {
        let data = tempfile::tempdir().expect("data dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_handler"))
            .env_clear()
            // Settings may name their own store; otherwise each handler gets a fresh one.
            .env("MESCHAIN_DATA_DIR", data.path())
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0")
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn handler");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        // Owned from here on, so the process is killed and reaped even if the wait below fails.
        let mut handler = Handler { child, base: String::new(), output: rx, startup: Vec::new(), _data: data };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let line = handler
                .output
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("handler did not report its address");
            if let Some(addr) = line.split("addr=").nth(1) {
                handler.base = format!("http://{}", addr.split_whitespace().next().unwrap());
                handler.startup.push(line);
                return handler;
            }
            handler.startup.push(line);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("handler did not exit within 5 s of SIGTERM");
    }

    /// Lines printed from now on until one contains `needle` (or 15 s pass: longer than any
    /// of the handler's own time budgets, so a slow machine shows the line rather than `[]`).
    pub fn output_until(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut lines = Vec::new();
        while let Ok(line) = self.output.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            let found = line.contains(needle);
            lines.push(line);
            if found {
                break;
            }
        }
        lines
    }

    /// Every line printed so far.
    pub fn drain_output(&self) -> Vec<String> {
        self.output.try_iter().collect()
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the handler with `settings` expecting it to refuse to start; returns (exit code, stderr).
pub fn start_failure(settings: &HashMap<&'static str, String>) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_handler"))
        .env_clear()
        .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0")
        .output()
        .expect("run handler");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

#[allow(unused_imports)]
pub use meschain_model::clock::now_secs as now;

/// A loopback port that refuses connections for as long as this lives: bound, never listening.
/// A port taken from a listener and then released would not do: with tests running in
/// parallel, another test's server can be given it and answer (or hang) instead.
pub struct RefusedPort(tokio::net::TcpSocket);

impl RefusedPort {
    pub fn new() -> RefusedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
        RefusedPort(socket)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().expect("bound socket").port()
    }
}
