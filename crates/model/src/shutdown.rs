//! When a process should stop: SIGTERM (the Functions host, systemd, a container runtime stopping
//! it) or Ctrl-C. One definition, so every binary stops on the same signals.

/// Resolves on the first SIGTERM or Ctrl-C. If a handler cannot be installed, waits for the
/// other one alone rather than returning at once (which would stop the process at start).
pub async fn signal() {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = term => {}
        () = ctrl_c => {}
    }
}
