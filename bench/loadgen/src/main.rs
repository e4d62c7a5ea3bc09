//! Fan-out load generator for `meschain signalr`: holds N WebSocket hub clients, broadcasts
//! through the REST API at a fixed rate, and reports delivered messages per second, latency
//! from the REST call to receipt (the send time travels in the message), and the server's RSS
//! per idle connection (from `/proc/<pid>/status`).
//!
//! Every loop is bounded: connection setup by `--connections`, sending by `--duration`, and
//! the drain after sending by `--drain-ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use meschain_signalr::AccessKey;
use meschain_signalr::token::{ClientClaims, SigningKey};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser)]
#[command(about = "Fan-out benchmark client for the local SignalR service")]
struct Args {
    /// Service port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// Access key of the service.
    #[arg(long)]
    key: String,
    /// Server process id, for RSS figures.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Broadcasts per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Seconds of broadcasting.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Extra bytes of payload per message.
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// Connection attempts in flight during setup.
    #[arg(long, default_value_t = 128)]
    setup_concurrency: usize,
    /// How long to wait for stragglers after the last broadcast.
    #[arg(long, default_value_t = 3000)]
    drain_ms: u64,
    #[arg(long, default_value = "bench")]
    hub: String,
    /// Runtime worker threads of the load generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn now_secs() -> u64 {
    now_micros() / 1_000_000
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat` (100 ticks/s).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Pulls `(seq, sent_micros)` out of `..."arguments":[seq,sent,...` without a JSON parser: the
/// client must stay cheap so the server, not the load generator, is what gets measured.
fn parse_stamp(frame: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"arguments\":[";
    let start = frame.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &frame[start..];
    let comma = rest.iter().position(|&b| b == b',')?;
    let rest = &rest[comma + 1..];
    let end = rest.iter().position(|&b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

struct Stats {
    received: AtomicU64,
    /// Connections the service closed (a slow client's queue overflowed, or it went away).
    closed: AtomicU64,
    first_recv: AtomicU64,
    last_recv: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

async fn open(args: &Args, http: &reqwest::Client, token: &str) -> anyhow::Result<WsStream> {
    let base = format!("http://127.0.0.1:{}", args.port);
    let resp = http
        .post(format!("{base}/client/negotiate?hub={}&negotiateVersion=1", args.hub))
        .bearer_auth(token)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("negotiate: {}", resp.status());
    }
    let body: serde_json::Value = resp.json().await?;
    let id = body["connectionToken"].as_str().context("no connectionToken")?;
    let url = format!("ws://127.0.0.1:{}/client/?hub={}&id={id}&access_token={token}", args.port, args.hub);
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    ws.send(Message::text("{\"protocol\":\"json\",\"version\":1}\x1e")).await?;
    match ws.next().await {
        Some(Ok(m)) if m.clone().into_data().as_ref() == b"{}\x1e" => Ok(ws),
        other => bail!("handshake: {other:?}"),
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn reader(
    mut ws: futures_util::stream::SplitStream<WsStream>,
    stats: Arc<Stats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut local = Vec::new();
    loop {
        let msg = tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    stats.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(m)) => m,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let Message::Text(text) = msg else { continue };
        let now = now_micros();
        // The service's keep-alive pings carry no stamp and are skipped here.
        for frame in text.as_bytes().split(|&b| b == 0x1e).filter(|f| !f.is_empty()) {
            if let Some(sent) = parse_stamp(frame) {
                stats.received.fetch_add(1, Ordering::Relaxed);
                let _ = stats.first_recv.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                stats.last_recv.fetch_max(now, Ordering::Relaxed);
                local.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                if local.len() >= 256 {
                    stats.latencies.lock().await.append(&mut local);
                }
            }
        }
    }
    stats.latencies.lock().await.append(&mut local);
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let key = AccessKey::new(args.key.clone());
    let signer = SigningKey::hs256(&key);
    let aud = format!("http://localhost/client/?hub={}", args.hub);
    let token = signer.client_token(&aud, &ClientClaims::default(), now_secs(), 3600)?;
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build()?;

    let rss_before = args.server_pid.and_then(rss_kib);
    let stats = Arc::new(Stats {
        received: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        first_recv: AtomicU64::new(0),
        last_recv: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
    });

    // Setup: N connections, bounded concurrency.
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(args.connections);
    let mut pending = futures_util::stream::iter(0..args.connections)
        .map(|_| open(&args, &http, &token))
        .buffer_unordered(args.setup_concurrency);
    let mut failures = 0usize;
    while let Some(r) = pending.next().await {
        match r {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                failures += 1;
                if failures <= 3 {
                    eprintln!("connect failed: {e:#}");
                }
            }
        }
    }
    drop(pending);
    let setup = started.elapsed();
    let held = sockets.len();
    // Keep clients alive past the 30 s client timeout with a Ping every 10 s.
    let mut writers = Vec::with_capacity(held);
    let mut readers = Vec::with_capacity(held);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for ws in sockets {
        let (mut sink, stream) = ws.split();
        readers.push(tokio::spawn(reader(stream, stats.clone(), stop_rx.clone())));
        writers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                if sink.send(Message::text("{\"type\":6}\x1e")).await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = args.server_pid.and_then(rss_kib);

    // Broadcast at a fixed rate for `duration` seconds.
    let path = format!("/api/hubs/{}/:send?api-version=2022-06-01", args.hub);
    let rest_token = signer.rest_token(&format!("http://localhost{path}"), now_secs(), 3600)?;
    let url = format!("http://127.0.0.1:{}{path}", args.port);
    let padding = "x".repeat(args.payload);
    let total = u64::from(args.rate) * args.duration;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let server_pid = args.server_pid.map(|p| p.to_string());
    let cpu_server_start = server_pid.as_deref().and_then(cpu_secs);
    let cpu_self_start = cpu_secs("self");
    let send_start = Instant::now();
    let first_send = now_micros();
    let mut rest_failures = 0u64;
    let mut inflight = Vec::new();
    for seq in 0..total {
        let target = send_start + interval.mul_f64(seq as f64);
        tokio::time::sleep_until(target.into()).await;
        let body = format!("{{\"target\":\"m\",\"arguments\":[{seq},{},\"{padding}\"]}}", now_micros());
        let req = http.post(&url).bearer_auth(&rest_token).header("content-type", "application/json").body(body).send();
        inflight.push(tokio::spawn(async move { req.await.map(|r| r.status().as_u16()).unwrap_or(0) }));
    }
    for h in inflight {
        if h.await.unwrap_or(0) != 202 {
            rest_failures += 1;
        }
    }
    let send_elapsed = send_start.elapsed();
    let expected = total * held as u64;
    let drain_deadline = Instant::now() + Duration::from_millis(args.drain_ms);
    while stats.received.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_server = server_pid.as_deref().and_then(cpu_secs).zip(cpu_server_start).map(|(a, b)| a - b);
    let cpu_self = cpu_secs("self").zip(cpu_self_start).map(|(a, b)| a - b);
    let busy_window = send_start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    for r in readers {
        let _ = r.await;
    }
    let received = stats.received.load(Ordering::Relaxed);
    let last = stats.last_recv.load(Ordering::Relaxed);
    let window_s = (last.saturating_sub(first_send)) as f64 / 1e6;
    let mut lat = std::mem::take(&mut *stats.latencies.lock().await);
    lat.sort_unstable();
    let rss_end = args.server_pid.and_then(rss_kib);

    println!("connections requested      {}", args.connections);
    println!("connections held           {held} (failed {failures}, setup {:.1} s)", setup.as_secs_f64());
    println!(
        "broadcasts                 {total} at {}/s over {:.1} s (REST failures {rest_failures})",
        args.rate,
        send_elapsed.as_secs_f64()
    );
    println!(
        "messages delivered         {received} of {expected} ({:.2} %), connections closed by the service {}",
        100.0 * received as f64 / expected.max(1) as f64,
        stats.closed.load(Ordering::Relaxed)
    );
    println!(
        "delivered msgs/s           {:.0} (first send → last receipt {:.2} s)",
        received as f64 / window_s.max(1e-9),
        window_s
    );
    println!(
        "latency REST→receipt ms    p50 {:.2}  p99 {:.2}  max {:.2}  (samples {})",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        lat.len()
    );
    if let (Some(server), Some(me)) = (cpu_server, cpu_self) {
        println!(
            "CPU during broadcast       server {:.2} cores, load generator {:.2} cores ({:.1} s window)",
            server / busy_window,
            me / busy_window,
            busy_window
        );
    }
    if let (Some(before), Some(idle)) = (rss_before, rss_idle) {
        println!(
            "server RSS KiB             before {before}  idle with {held} conns {idle}  after run {}",
            rss_end.unwrap_or(0)
        );
        println!("server RSS per idle conn   {:.2} KiB", (idle.saturating_sub(before)) as f64 / held.max(1) as f64);
    }
    for w in writers {
        w.abort();
    }
    Ok(())
}
