//! The whole local host wired together: config, handler process, HTTP triggers, timers, queue
//! dispatchers and the control endpoint, on one loopback listener.
//!
//! It knows no app: whatever is app-specific (a web page, a development sign-in, which function
//! is worth printing) is the embedding tool's, served through [`DevOptions::routes`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{App, AuthLevel, Trigger};
use crate::control::{self, ControlState};
use crate::http_trigger::{self, HttpState};
use crate::invoke::Invoker;
use crate::keys::Keys;
use crate::queue::{self, Queues};
use crate::worker::{Worker, WorkerExit, WorkerSpec};

/// Service Bus' default lock duration; the dispatcher always settles sooner (the invocation is
/// bounded by `functionTimeout`, and the lock is held for at least that long).
const LOCK_DURATION: Duration = Duration::from_secs(60);

/// Options of one dev host.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub data_dir: PathBuf,
    /// `None` = `Host.LocalHttpPort` from the settings, else 7071. `Some(0)` = any free port.
    pub port: Option<u16>,
    /// Extra environment for the handler, applied after the settings' `Values` (e.g. the local
    /// SignalR connection string).
    pub extra_env: BTreeMap<String, String>,
    /// Replaces `customHandler.description.defaultExecutablePath` (e.g. `target/debug/handler`
    /// while developing, where the binary is not yet copied into the app root).
    pub handler: Option<PathBuf>,
    /// The embedding tool's own endpoints, served on the host's listener (e.g. a static page
    /// at `/` and a development sign-in). Precedence: the control endpoint (`/admin/...`) first,
    /// then these routes, then the HTTP triggers; so keep them outside the route prefix
    /// (`/api` by default), or they shadow functions. A fallback set on it is ignored.
    pub routes: Router,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("data folder {path}: {source}")]
    Data { path: String, source: std::io::Error },
    #[error("data folder {0} is in use by another running `meschain dev`; stop it or pass another --data-dir")]
    DataInUse(String),
    #[error("queue storage: {0}")]
    Queue(#[source] queue::StoreError),
}

pub struct DevHost {
    pub local_addr: SocketAddr,
    pub keys: Keys,
    pub data_dir: PathBuf,
    /// `(function, url, auth level)` for each HTTP function.
    pub http_urls: Vec<(String, String, AuthLevel)>,
    pub app: Arc<App>,
    worker: Worker,
    shutdown: watch::Sender<bool>,
    /// Holds an exclusive `flock` on `<data>/lock` while the host runs.
    _data_lock: std::fs::File,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DevHost {
    /// Starts everything; returns once the listener is bound (the handler may still be starting:
    /// see [`DevHost::wait_ready`]).
    pub async fn start(app: App, opts: DevOptions) -> Result<DevHost, DevError> {
        let app = Arc::new(app);
        std::fs::create_dir_all(&opts.data_dir)
            .map_err(|e| DevError::Data { path: opts.data_dir.display().to_string(), source: e })?;
        let data_dir = opts.data_dir.canonicalize().unwrap_or(opts.data_dir.clone());
        let data_lock = lock_data_dir(&data_dir)?;
        let port = opts.port.unwrap_or_else(|| app.host.local_settings_port(&app.settings));
        let addr = format!("127.0.0.1:{port}");
        let listener =
            TcpListener::bind(&addr).await.map_err(|e| DevError::Listen { addr: addr.clone(), source: e })?;
        let local_addr = listener.local_addr().map_err(|e| DevError::Listen { addr, source: e })?;

        let keys = Keys::load(&app.settings, &data_dir)
            .map_err(|e| DevError::Data { path: data_dir.display().to_string(), source: e })?;

        // Every queue named by a trigger or an output.
        let mut names = Vec::new();
        for f in &app.functions {
            if let Trigger::ServiceBus { queue, .. } = &f.trigger {
                names.push(queue.clone());
            }
            for b in f.outputs().filter(|b| b.is("serviceBus")) {
                if let Some(q) = b.str_prop("queueName") {
                    names.push(q.to_string());
                }
            }
        }
        let lock = LOCK_DURATION.max(app.host.function_timeout.unwrap_or(Duration::ZERO) + Duration::from_secs(60));
        let queues = Arc::new(Queues::open(&data_dir, &names, lock).map_err(DevError::Queue)?);

        let executable = match &opts.handler {
            Some(h) => h.canonicalize().unwrap_or(h.clone()).display().to_string(),
            None => app.host.custom_handler.executable.clone(),
        };
        if crate::worker::find_executable(&app.root, &executable).is_none() {
            let (file, field) = match &opts.handler {
                Some(_) => ("--handler".to_string(), "(path)".to_string()),
                None => ("host.json".to_string(), "customHandler.description.defaultExecutablePath".to_string()),
            };
            return Err(DevError::Config(crate::config::ConfigError {
                file,
                field,
                message: format!(
                    "{executable:?} is neither a file in the app root nor a command on PATH (build the handler and pass --handler PATH, or copy it into the app root)"
                ),
            }));
        }
        let mut env = app.settings.values.clone();
        env.extend(opts.extra_env.clone());
        let ch = &app.host.custom_handler;
        let working_directory = ch.working_directory.as_ref().map(|w| app.root.join(w)).unwrap_or(app.root.clone());
        let worker = Worker::start(WorkerSpec {
            executable,
            arguments: ch.arguments.clone(),
            working_directory,
            app_root: app.root.clone(),
            env,
            log_name: std::path::Path::new(&ch.executable)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "handler".into()),
        });
        let invoker = Invoker::new(worker.port(), app.host.function_timeout);
        let (shutdown, shutdown_rx) = watch::channel(false);

        let functions: Vec<Arc<crate::config::Function>> = app.functions.iter().cloned().map(Arc::new).collect();
        let public_base = format!("http://localhost:{}", local_addr.port());
        let http_state = Arc::new(HttpState::new(
            &functions,
            &app.host.route_prefix,
            ch.enable_forwarding_http_request,
            invoker.clone(),
            queues.clone(),
            keys.clone(),
            app.settings.cors.clone(),
            app.settings.cors_credentials,
            public_base,
        ));
        let http_urls = http_state.urls();
        let control_state = ControlState {
            queues: queues.clone(),
            worker: worker_status_channel(&worker),
            functions: app.functions.iter().map(|f| f.name.clone()).collect(),
        };
        let triggers = opts.routes.fallback(move |req: axum::extract::Request| {
            let st = http_state.clone();
            async move { http_trigger::handle(st, req).await }
        });
        let router: Router = control::router(control_state).fallback_service(triggers);
        let mut tasks = Vec::new();
        let mut srx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = srx.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!("HTTP listener failed: {e}");
            }
        }));

        for f in functions.iter().filter(|f| !f.disabled) {
            for b in f.bindings.iter().filter(|b| !b.kind.ends_with("Trigger")) {
                if !(b.is("http") || b.is("serviceBus")) {
                    tracing::warn!(function = %f.name, binding = %b.name,
                        "binding type {} is not implemented by the local host (inputs are not supplied, outputs are dropped)", b.kind);
                }
            }
            match &f.trigger {
                Trigger::Timer { .. } => {
                    tasks.push(tokio::spawn(crate::timer::run(
                        f.clone(),
                        invoker.clone(),
                        queues.clone(),
                        data_dir.clone(),
                        shutdown_rx.clone(),
                    )));
                }
                Trigger::ServiceBus { binding, queue, binary } => {
                    let q = queues.get(queue).expect("opened above").clone();
                    let dispatcher = crate::queue_trigger::Dispatcher {
                        queue: q,
                        function: f.clone(),
                        binding: binding.clone(),
                        binary: *binary,
                        invoker: invoker.clone(),
                        queues: queues.clone(),
                        max_concurrent: app.host.max_concurrent_calls,
                    };
                    tasks.push(tokio::spawn(dispatcher.run(shutdown_rx.clone())));
                }
                Trigger::Unsupported { kind } => {
                    tracing::warn!(function = %f.name, "trigger type {kind} is not run by the local host");
                }
                Trigger::Http { .. } => {}
            }
        }
        Ok(DevHost { local_addr, keys, data_dir, http_urls, app, worker, shutdown, _data_lock: data_lock, tasks })
    }

    /// Waits until the handler answers its readiness probe (bounded by the worker's own limits).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.worker.port();
        tokio::time::timeout(timeout, rx.wait_for(|p| p.is_some())).await.is_ok_and(|r| r.is_ok())
    }

    /// Resolves when the handler supervisor gives up (the host must then exit with an error).
    pub async fn wait(&mut self) -> WorkerExit {
        self.worker.wait().await
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Triggers first (they drain in-flight invocations), then the handler.
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(35), t).await;
        }
        self.worker.shutdown().await;
    }

    /// What runs where, for the person who started the host.
    pub fn banner(&self) -> String {
        let mut s = String::new();
        let base = format!("http://localhost:{}", self.local_addr.port());
        s.push_str(&format!("Local Functions host on {base} (app root {})\n", self.app.root.display()));
        s.push_str(&format!("  data folder:   {}\n", self.data_dir.display()));
        s.push_str("  functions:\n");
        for f in &self.app.functions {
            let what = match &f.trigger {
                Trigger::Http { methods, auth_level, .. } => {
                    let url = self
                        .http_urls
                        .iter()
                        .find(|(n, _, _)| n == &f.name)
                        .map(|(_, u, _)| u.clone())
                        .unwrap_or_default();
                    let m = methods.as_ref().map(|m| m.join(",")).unwrap_or_else(|| "ALL".into());
                    format!("[{m}] {url} ({auth_level:?})")
                }
                Trigger::Timer { schedule_text, .. } => format!("timerTrigger \"{schedule_text}\""),
                Trigger::ServiceBus { queue, .. } => format!("serviceBusTrigger queue {queue}"),
                Trigger::Unsupported { kind } => format!("{kind} (not run locally)"),
            };
            let disabled = if f.disabled { " [disabled]" } else { "" };
            s.push_str(&format!("    {}: {what}{disabled}\n", f.name));
        }
        s.push_str(&format!("  function key:  {} (?code= or x-functions-key)\n", self.keys.function));
        s.push_str(&format!("  master key:    {}\n", self.keys.master));
        s.push_str(&format!("  control:       {base}/admin/queues (meschain enqueue / meschain queue)\n"));
        s
    }
}

/// Two hosts on one data folder would both deliver the same queue files: refuse the second.
/// The kernel drops the lock when the process dies, even with SIGKILL, so no stale lock files.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, DevError> {
    use std::os::fd::AsRawFd;
    let path = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DevError::Data { path: path.display().to_string(), source: e })?;
    // SAFETY: flock on a descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(DevError::DataInUse(dir.display().to_string()));
    }
    Ok(f)
}

fn worker_status_channel(worker: &Worker) -> watch::Receiver<crate::worker::WorkerStatus> {
    worker.status_receiver()
}
