//! `meschain queue list | dead-letters | resubmit ID`: inspect the running dev host's local queue.

use serde_json::Value;

/// Options of `meschain queue`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// The queue.
    #[arg(long, global = true, default_value = "marketplace-sync")]
    pub queue: String,
    /// Base URL of the running `meschain dev`.
    #[arg(long, global = true, default_value = "http://127.0.0.1:7071")]
    pub host_url: String,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Active (waiting or locked) messages.
    List,
    /// Dead-lettered messages.
    DeadLetters,
    /// Put a dead-lettered message back on the queue (by sequence number or message id).
    Resubmit { id: String },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::enqueue::check_loopback(&args.host_url)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let base = format!("{}/admin/queues/{}", args.host_url.trim_end_matches('/'), encode(&args.queue));
        let req = match &args.action {
            Action::List => client.get(format!("{base}/messages")),
            Action::DeadLetters => client.get(format!("{base}/deadletters")),
            Action::Resubmit { id } => {
                client.post(format!("{base}/deadletters/{}/resubmit", encode(id))).header("X-Meschain-Control", "1")
            }
        };
        let resp =
            req.send().await.map_err(|e| anyhow::anyhow!("cannot reach meschain dev at {}: {e}", args.host_url))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!("HTTP {status}: {}", body.get("error").and_then(Value::as_str).unwrap_or("request failed"));
        }
        println!("{}", serde_json::to_string_pretty(&body)?);
        Ok(())
    })
}

fn encode(s: &str) -> String {
    meschain_functions_host::servicebus::encode_uri_component(s)
}
