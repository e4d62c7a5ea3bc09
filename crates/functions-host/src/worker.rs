//! Running the custom handler the way the host does: a child process told its port through
//! `FUNCTIONS_CUSTOMHANDLER_PORT`, polled with `GET /` every 25 ms until it answers anything
//! (30 s limit), restarted when it exits, and given up on after 3 failures within 30 minutes
//! (exit code 200 asks for a restart and does not count). Its stdout/stderr are forwarded line by
//! line with a prefix, because that is the only log channel a handler has outside invocations.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::config::expand_percent;

pub const READY_POLL_INTERVAL: Duration = Duration::from_millis(25);
pub const INITIALIZATION_TIMEOUT: Duration = Duration::from_secs(30);
pub const ERROR_THRESHOLD: usize = 3;
pub const ERROR_WINDOW: Duration = Duration::from_secs(30 * 60);
pub const INTENTIONAL_RESTART_EXIT_CODE: i32 = 200;

/// What to start.
#[derive(Clone)]
pub struct WorkerSpec {
    /// Resolved like the host: relative to the app root if that file exists, else a command on PATH.
    pub executable: String,
    pub arguments: Vec<String>,
    pub working_directory: PathBuf,
    pub app_root: PathBuf,
    /// App settings (`Values`): added to the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Prefix of forwarded output lines.
    pub log_name: String,
}

impl std::fmt::Debug for WorkerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSpec").field("executable", &self.executable).field("arguments", &self.arguments).finish()
    }
}

/// Why the supervisor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    Shutdown,
    /// Exceeded the restart budget: the host shuts down too.
    GaveUp(String),
}

/// Live view of the supervised handler.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus {
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub starts: u32,
}

pub struct Worker {
    port: watch::Receiver<Option<u16>>,
    status: watch::Receiver<WorkerStatus>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<WorkerExit>>,
    exit: Option<WorkerExit>,
}

impl Worker {
    pub fn start(spec: WorkerSpec) -> Worker {
        let (port_tx, port) = watch::channel(None);
        let (status_tx, status) = watch::channel(WorkerStatus::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(spec, port_tx, status_tx, shutdown_rx));
        Worker { port, status, shutdown, task: Some(task), exit: None }
    }

    pub fn port(&self) -> watch::Receiver<Option<u16>> {
        self.port.clone()
    }

    pub fn status_receiver(&self) -> watch::Receiver<WorkerStatus> {
        self.status.clone()
    }

    pub fn status(&self) -> WorkerStatus {
        self.status.borrow().clone()
    }

    /// Resolves when the supervisor gives up (never for a healthy handler).
    pub async fn wait(&mut self) -> WorkerExit {
        if let Some(task) = self.task.as_mut() {
            let exit = task.await.unwrap_or_else(|e| WorkerExit::GaveUp(format!("supervisor panicked: {e}")));
            self.task = None;
            self.exit = Some(exit);
        }
        self.exit.clone().unwrap_or(WorkerExit::Shutdown)
    }

    /// Kills the handler and waits for the supervisor to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// Records failures and answers "may we restart?" (pure, for tests).
#[derive(Default)]
pub struct RestartBudget {
    errors: VecDeque<Instant>,
}

impl RestartBudget {
    pub fn record_failure(&mut self, now: Instant) -> bool {
        while self.errors.front().is_some_and(|t| now.duration_since(*t) > ERROR_WINDOW) {
            self.errors.pop_front();
        }
        self.errors.push_back(now);
        self.errors.len() < ERROR_THRESHOLD
    }
}

async fn supervise(
    spec: WorkerSpec,
    port_tx: watch::Sender<Option<u16>>,
    status_tx: watch::Sender<WorkerStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> WorkerExit {
    let mut budget = RestartBudget::default();
    let mut starts = 0;
    loop {
        if *shutdown.borrow() {
            return WorkerExit::Shutdown;
        }
        let failure = match run_once(&spec, &port_tx, &status_tx, &mut shutdown, &mut starts).await {
            RunEnd::Shutdown => return WorkerExit::Shutdown,
            RunEnd::IntentionalRestart => {
                tracing::info!("custom handler asked for a restart (exit code 200)");
                continue;
            }
            RunEnd::Failed(reason) => reason,
        };
        tracing::error!("custom handler failed: {failure}");
        if !budget.record_failure(Instant::now()) {
            let msg = format!(
                "Exceeded http worker restart retry count ({ERROR_THRESHOLD} failures within 30 minutes); last: {failure}"
            );
            tracing::error!("{msg}. Shutting down the local Functions host");
            return WorkerExit::GaveUp(msg);
        }
        // A short pause stops a handler that dies instantly from spinning the CPU.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return WorkerExit::Shutdown,
        }
    }
}

enum RunEnd {
    Shutdown,
    IntentionalRestart,
    Failed(String),
}

/// Picks a free loopback port. The host does the same (`GetUnusedTcpPort`): bind port 0 and
/// release it; the tiny race with another process is accepted by the real host as well.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn run_once(
    spec: &WorkerSpec,
    port_tx: &watch::Sender<Option<u16>>,
    status_tx: &watch::Sender<WorkerStatus>,
    shutdown: &mut watch::Receiver<bool>,
    starts: &mut u32,
) -> RunEnd {
    let port = match free_port() {
        Ok(p) => p,
        Err(e) => return RunEnd::Failed(format!("no free port: {e}")),
    };
    let worker_id = crate::envelope::guid();
    let mut env = spec.env.clone();
    env.insert("FUNCTIONS_WORKER_RUNTIME".into(), "custom".into());
    env.insert("FUNCTIONS_CUSTOMHANDLER_PORT".into(), port.to_string());
    env.insert("FUNCTIONS_CUSTOMHANDLER_WORKER_ID".into(), worker_id.clone());
    env.insert("FUNCTIONS_HTTPWORKER_PORT".into(), port.to_string());
    env.insert("FUNCTIONS_HTTPWORKER_ID".into(), worker_id);
    env.insert("FUNCTIONS_APP_ROOT_PATH".into(), spec.app_root.display().to_string());
    let lookup = |name: &str| env.get(name).cloned().or_else(|| std::env::var(name).ok());
    // The host joins arguments into one command line, so an argument that was only an
    // unresolved `%NAME%` disappears entirely rather than becoming an empty argument.
    let args: Vec<String> = spec
        .arguments
        .iter()
        .map(|a| (a, expand_percent(a, &lookup).0))
        .filter(|(orig, expanded)| !expanded.is_empty() || orig.is_empty())
        .map(|(_, expanded)| expanded)
        .collect();

    let mut cmd = Command::new(resolve_executable(spec));
    cmd.args(&args)
        .current_dir(&spec.working_directory)
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // If `meschain dev` itself is killed (even with SIGKILL) the handler must not linger on its
    // port: the kernel delivers SIGKILL to it when its parent dies.
    #[cfg(target_os = "linux")]
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return RunEnd::Failed(format!("cannot start {:?}: {e}", spec.executable)),
    };
    *starts += 1;
    let pid = child.id();
    status_tx.send_replace(WorkerStatus { pid, port: None, starts: *starts });
    forward_output(&mut child, &spec.log_name);

    // Readiness: any HTTP answer to GET / counts.
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().expect("client");
    let deadline = Instant::now() + INITIALIZATION_TIMEOUT;
    let url = format!("http://127.0.0.1:{port}/");
    loop {
        if client.get(&url).send().await.is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return exit_reason(status, "before becoming ready");
        }
        if Instant::now() >= deadline {
            let _ = child.kill().await;
            return RunEnd::Failed("Initializing HttpWorker timed out (no answer to GET / within 30 s)".into());
        }
        tokio::select! {
            _ = tokio::time::sleep(READY_POLL_INTERVAL) => {}
            _ = shutdown.changed() => { let _ = child.kill().await; return RunEnd::Shutdown; }
        }
    }
    tracing::info!(pid, port, "custom handler ready");
    port_tx.send_replace(Some(port));
    status_tx.send_replace(WorkerStatus { pid, port: Some(port), starts: *starts });

    let end = tokio::select! {
        status = child.wait() => match status {
            Ok(s) => exit_reason(s, "unexpectedly"),
            Err(e) => RunEnd::Failed(format!("waiting for the handler: {e}")),
        },
        _ = shutdown.changed() => {
            stop_gracefully(&mut child).await;
            RunEnd::Shutdown
        }
    };
    port_tx.send_replace(None);
    status_tx.send_replace(WorkerStatus { pid: None, port: None, starts: *starts });
    end
}

/// SIGTERM, then SIGKILL after 5 s: lets the handler finish in-flight requests on shutdown.
async fn stop_gracefully(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: plain syscall on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

fn exit_reason(status: std::process::ExitStatus, when: &str) -> RunEnd {
    if status.code() == Some(INTENTIONAL_RESTART_EXIT_CODE) {
        return RunEnd::IntentionalRestart;
    }
    RunEnd::Failed(format!("the handler exited {when} ({status})"))
}

fn resolve_executable(spec: &WorkerSpec) -> PathBuf {
    find_executable(&spec.app_root, &spec.executable).unwrap_or_else(|| PathBuf::from(&spec.executable))
}

/// The host's rule: an absolute path as is; a relative one inside the app root if that file
/// exists; otherwise a command looked up on PATH. `None` when none of these exists, so the
/// problem is reported at start-up instead of as three failed restarts.
pub fn find_executable(app_root: &Path, executable: &str) -> Option<PathBuf> {
    let p = PathBuf::from(executable);
    if p.is_absolute() {
        return p.is_file().then_some(p);
    }
    let in_root = app_root.join(&p);
    if in_root.is_file() {
        return Some(in_root);
    }
    if p.components().count() > 1 {
        return None;
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join(&p)).find(|c| c.is_file()))
        .unwrap_or(None)
}

fn forward_output(child: &mut Child, name: &str) {
    if let Some(out) = child.stdout.take() {
        let name = name.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("[{name}] {line}");
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        let name = name.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{name}] {line}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_find_executable() {
        let root = std::env::temp_dir();
        assert!(find_executable(&root, "sh").is_some(), "found on PATH");
        assert!(find_executable(&root, "definitely-not-a-command-xyz").is_none());
        assert!(find_executable(&root, "/bin/sh").is_some());
        assert!(find_executable(&root, "sub/dir/missing").is_none());
    }

    #[test]
    fn test_restart_budget_three_in_thirty_minutes() {
        let mut b = RestartBudget::default();
        let t0 = Instant::now();
        assert!(b.record_failure(t0));
        assert!(b.record_failure(t0 + Duration::from_secs(60)));
        assert!(!b.record_failure(t0 + Duration::from_secs(120)));
        let mut b = RestartBudget::default();
        assert!(b.record_failure(t0));
        assert!(b.record_failure(t0 + Duration::from_secs(60)));
        // The first failure has aged out of the window.
        assert!(b.record_failure(t0 + ERROR_WINDOW + Duration::from_secs(61)));
    }
}
