//! `meschain enqueue`: put a marketplace sync request on the local queue of a running
//! `meschain dev`, or on an Azure Service Bus queue (`--namespace`) over REST.

use std::path::PathBuf;

use meschain_functions_host::servicebus::{self, Auth, ConnectionString};
use meschain_model::marketplace::{Marketplace, SyncItem, SyncMode, SyncOperation, SyncRequest};
use serde_json::{Value, json};

/// Options of `meschain enqueue`.
#[derive(clap::Args)]
pub struct Args {
    /// Marketplace: trendyol, hepsiburada, n11, amazon, ebay or ozon.
    #[arg(long)]
    pub marketplace: String,
    /// Operation: products, inventory, prices, orders or full.
    #[arg(long)]
    pub operation: String,
    /// JSON file holding the items array: `[{"barcode", "quantity", "salePrice", "listPrice"}, ...]`.
    #[arg(long, conflicts_with = "items_url")]
    pub items: Option<PathBuf>,
    /// A paged JSON source of the items (`GET URL?offset=O&limit=L` → `{"items", "total"}`).
    #[arg(long)]
    pub items_url: Option<String>,
    /// For `--operation orders`: import orders changed since this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Without `--items`/`--items-url`, inventory and prices read the store's catalogue: the
    /// products changed since the last successful sync (`changed`, the default) or all (`full`).
    #[arg(long, conflicts_with_all = ["items", "items_url"])]
    pub mode: Option<String>,
    /// The sync's idempotency key (default: the message id, a fresh UUID). The same key
    /// enqueued again is pushed once.
    #[arg(long)]
    pub sync_id: Option<String>,
    /// `requestedBy` of the request.
    #[arg(long, env = "USER", default_value = "meschain-cli")]
    pub requested_by: String,
    /// Queue name.
    #[arg(long, default_value = "marketplace-sync")]
    pub queue: String,
    /// Base URL of the running `meschain dev` (local queue).
    #[arg(long, default_value = "http://127.0.0.1:7071")]
    pub host_url: String,
    /// Azure Service Bus namespace (name or FQDN): send there instead of the local queue.
    #[arg(long)]
    pub namespace: Option<String>,
    /// SAS policy name (with --sas-key).
    #[arg(long)]
    pub sas_key_name: Option<String>,
    /// SAS key.
    #[arg(long, env = "SERVICEBUS_SAS_KEY", hide_env_values = true)]
    pub sas_key: Option<String>,
    /// A Service Bus connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…).
    #[arg(long, env = "SERVICEBUS_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: Option<String>,
    /// An Entra ID access token for https://servicebus.azure.net (e.g. from `az account get-access-token`).
    #[arg(long, env = "SERVICEBUS_BEARER_TOKEN", hide_env_values = true)]
    pub bearer_token: Option<String>,
    /// Override of https://{namespace} (tests use a loopback stand-in).
    #[arg(long, hide = true)]
    pub endpoint: Option<String>,
}

/// Only loopback URLs for the local host: the control endpoint must never be reached remotely.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest =
        url.strip_prefix("http://").ok_or_else(|| anyhow::anyhow!("--host-url must be http://127.0.0.1:PORT"))?;
    let host = rest.split(['/', ':']).next().unwrap_or("");
    if host == "127.0.0.1" || host == "localhost" {
        Ok(())
    } else {
        anyhow::bail!("--host-url must point at the local machine (127.0.0.1 or localhost), got {url:?}")
    }
}

/// What goes into a request besides marketplace, operation and requester.
#[derive(Debug, Default)]
pub struct Content {
    /// The `--items` file's JSON.
    pub items: Option<Value>,
    pub items_url: Option<String>,
    pub since: Option<String>,
    pub sync_id: Option<String>,
    /// `changed` or `full`, for a sync read from the catalogue.
    pub mode: Option<String>,
}

/// The sync request message, the same type `marketplace-sync` reads (pure, for tests). The
/// handler checks everything again; this catches what the CLI can see before sending.
pub fn build_request(
    marketplace: &str,
    operation: &str,
    content: Content,
    requested_by: &str,
) -> anyhow::Result<SyncRequest> {
    let names = |all: &[&str]| all.join(", ");
    let marketplace = Marketplace::from_name(marketplace).ok_or_else(|| {
        anyhow::anyhow!("--marketplace must be one of {}", names(&Marketplace::ALL.map(Marketplace::name)))
    })?;
    let operation = SyncOperation::from_name(operation).ok_or_else(|| {
        anyhow::anyhow!("--operation must be one of {}", names(&SyncOperation::ALL.map(SyncOperation::name)))
    })?;
    if requested_by.trim().is_empty() {
        anyhow::bail!("--requested-by must not be empty");
    }
    let mut request = SyncRequest::new(marketplace, operation, requested_by.trim());
    if let Some(items) = content.items {
        let Value::Array(_) = items else { anyhow::bail!("--items must hold a JSON array") };
        request.items = serde_json::from_value::<Vec<SyncItem>>(items).map_err(|e| {
            anyhow::anyhow!("--items: each item is {{barcode, quantity?, salePrice?, listPrice?}}: {e}")
        })?;
    }
    if let Some(url) = content.items_url {
        let parsed = url::Url::parse(&url).map_err(|e| anyhow::anyhow!("--items-url: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("--items-url must be an http(s) URL");
        }
        request.items_url = Some(url);
    }
    request.since = content.since;
    request.sync_id = content.sync_id;
    if let Some(mode) = content.mode {
        request.mode =
            Some(SyncMode::from_name(&mode).ok_or_else(|| anyhow::anyhow!("--mode must be changed or full"))?);
    }
    Ok(request)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let items = match &args.items {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?)
        }
        None => None,
    };
    let content = Content {
        items,
        items_url: args.items_url.clone(),
        since: args.since.clone(),
        sync_id: args.sync_id.clone(),
        mode: args.mode.clone(),
    };
    let request = build_request(&args.marketplace, &args.operation, content, &args.requested_by)?;
    let request_id = request.request_id.clone();
    let body = serde_json::to_vec(&request)?;
    let broker = json!({ "MessageId": request_id });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder().no_proxy().build()?;
        match &args.namespace {
            None => {
                check_loopback(&args.host_url)?;
                let url = format!(
                    "{}/admin/queues/{}/messages",
                    args.host_url.trim_end_matches('/'),
                    servicebus::encode_uri_component(&args.queue)
                );
                let resp = client
                    .post(url)
                    .header("X-Meschain-Control", "1")
                    .header("Content-Type", "application/json")
                    .header("BrokerProperties", broker.to_string())
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot reach meschain dev at {}: {e}", args.host_url))?;
                let status = resp.status();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                if status.as_u16() != 201 {
                    anyhow::bail!(
                        "HTTP {status}: {}",
                        answer.get("error").and_then(Value::as_str).unwrap_or("rejected")
                    );
                }
                println!(
                    "enqueued {request_id} on local queue {} (sequence number {})",
                    args.queue, answer["sequenceNumber"]
                );
            }
            Some(ns) => {
                let (auth, host) = azure_auth(&args, ns)?;
                let base = args.endpoint.clone().unwrap_or_else(|| format!("https://{host}"));
                let queue_url = format!("{}/{}", base.trim_end_matches('/'), args.queue);
                let now = meschain_model::clock::now_secs();
                servicebus::send_message(&client, &queue_url, &auth, body, "application/json", &broker, now).await?;
                println!("enqueued {request_id} on {queue_url}");
            }
        }
        Ok(())
    })
}

fn azure_auth(args: &Args, ns: &str) -> anyhow::Result<(Auth, String)> {
    let host = if ns.contains('.') { ns.to_string() } else { format!("{ns}.servicebus.windows.net") };
    if let Some(t) = &args.bearer_token {
        return Ok((Auth::Bearer(t.clone()), host));
    }
    if let (Some(name), Some(key)) = (&args.sas_key_name, &args.sas_key) {
        return Ok((Auth::Sas { key_name: name.clone(), key: key.clone() }, host));
    }
    if let Some(cs) = &args.connection_string {
        let c = ConnectionString::parse(cs).map_err(|e| anyhow::anyhow!("--connection-string: {e}"))?;
        if !c.namespace_host.eq_ignore_ascii_case(&host) {
            anyhow::bail!("--connection-string is for {}, not {host}", c.namespace_host);
        }
        return Ok((Auth::Sas { key_name: c.key_name, key: c.key }, host));
    }
    anyhow::bail!("--namespace needs --sas-key-name and --sas-key, --connection-string, or --bearer-token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_build_request() {
        let items = |v: Value| Content { items: Some(v), ..Content::default() };
        let r = build_request("Trendyol", "inventory", items(json!([{"barcode": "A1", "quantity": 2}])), "me").unwrap();
        let r = serde_json::to_value(r).unwrap();
        for k in ["requestId", "marketplace", "operation", "items", "requestedBy", "requestedAt"] {
            assert!(r.get(k).is_some(), "{k}");
        }
        assert_eq!(r["marketplace"], "trendyol");
        assert_eq!(r["items"], json!([{"barcode": "A1", "quantity": 2}]));
        assert!(build_request("trendyol", "inventory", items(json!({})), "me").is_err());
        let err = build_request("trendyol", "inventory", items(json!([{"sku": "A1"}])), "me").unwrap_err();
        assert!(err.to_string().contains("barcode"), "{err}");
        assert!(
            build_request("etsy", "inventory", Content::default(), "me")
                .unwrap_err()
                .to_string()
                .contains("trendyol, hepsiburada")
        );
        assert!(build_request("trendyol", "sync-products", Content::default(), "me").is_err());
        assert!(build_request("trendyol", "full", Content::default(), " ").is_err());
        let url = Content {
            items_url: Some("http://127.0.0.1:9/items?total=5".into()),
            sync_id: Some("s-1".into()),
            ..Content::default()
        };
        let r = serde_json::to_value(build_request("n11", "prices", url, "me").unwrap()).unwrap();
        assert_eq!(
            (r["itemsUrl"].as_str(), r["syncId"].as_str()),
            (Some("http://127.0.0.1:9/items?total=5"), Some("s-1"))
        );
        let bad = Content { items_url: Some("file:///etc/passwd".into()), ..Content::default() };
        assert!(build_request("n11", "prices", bad, "me").is_err());
    }

    #[test]
    fn test_loopback_only() {
        assert!(check_loopback("http://127.0.0.1:7071").is_ok());
        assert!(check_loopback("http://localhost:7071/").is_ok());
        assert!(check_loopback("http://example.com:7071").is_err());
        assert!(check_loopback("https://127.0.0.1").is_err());
    }
}
