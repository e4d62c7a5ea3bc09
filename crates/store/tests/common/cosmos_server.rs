//! `@vercel/cosmosdb-server` from npm, started for the Cosmos suite on a free port and stopped
//! when dropped. A missing Node or npm package is a test failure, never a skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct CosmosServer {
    child: Child,
    pub port: u16,
    http: reqwest::Client,
}

/// The environment the official crate needs for the local server (the `azure_data_cosmos`
/// crate's emulator switches, https://docs.rs/azure_data_cosmos). Set once, before any thread starts.
pub const SDK_ENV: [(&str, &str); 4] = [
    ("AZURE_COSMOS_EMULATOR_SERVER_CERT_VALIDATION_DISABLED", "true"),
    ("AZURE_COSMOS_CONNECTION_POOL_IS_HTTP2_ALLOWED", "false"),
    ("AZURE_COSMOS_PARTITION_TOPOLOGY_CACHE_MODE", "lazy"),
    ("AZURE_COSMOS_BINARY_ENCODING_ENABLED", "false"),
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl CosmosServer {
    pub async fn start() -> CosmosServer {
        let tests = repo_root().join("tests");
        let script = tests.join("support/cosmosdb-server.mjs");
        assert!(
            tests.join("node_modules/@vercel/cosmosdb-server").is_dir(),
            "@vercel/cosmosdb-server is not installed: run `npm ci` in tests/ (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg(&script)
            .arg("0")
            .current_dir(&tests)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node for the Cosmos DB server: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("READY ") {
                    return port.trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await;
        let port = match ready {
            Ok(Some(port)) => port,
            _ => panic!("the Cosmos DB server did not start within 30 s"),
        };
        let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build().expect("client");
        CosmosServer { child, port, http }
    }

    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    async fn control(&self, path: &str) -> serde_json::Value {
        let url = format!("https://127.0.0.1:{}/_faults/{path}", self.port);
        let req = if path.starts_with("stats") { self.http.get(url) } else { self.http.post(url) };
        req.send().await.expect("fault control").json().await.expect("fault control JSON")
    }

    /// The next `count` item writes get 429 with `x-ms-retry-after-ms: retry_after_ms`.
    pub async fn throttle(&self, count: u32, retry_after_ms: u64) {
        self.control(&format!("throttle?count={count}&retryAfterMs={retry_after_ms}")).await;
    }

    /// Every request gets 503 while `on`.
    pub async fn set_down(&self, on: bool) {
        self.control(&format!("down?on={on}")).await;
    }

    /// From now on only requests signed with one of `keys` (base64 account keys) are served;
    /// others get 401. An empty list accepts any key again.
    pub async fn accept_keys(&self, keys: &[&str]) {
        let list: Vec<String> =
            keys.iter().map(|k| url::form_urlencoded::byte_serialize(k.as_bytes()).collect()).collect();
        self.control(&format!("keys?accept={}", list.join(","))).await;
    }

    /// 429s served so far.
    pub async fn throttled(&self) -> u64 {
        self.control("stats").await["throttled"].as_u64().unwrap_or(0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
