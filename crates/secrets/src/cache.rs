//! Secrets held in memory, read at start and refreshed in the background.
//!
//! Why: Key Vault allows a few thousand reads per 10 s per vault and adds a network round trip;
//! the hot paths (negotiate, upstream signature checks) must never wait for it. So every secret
//! is read once at start, kept here, and re-read every `SECRETS_REFRESH_SECONDS` (default 300,
//! with ±10 % jitter so instances spread their reads). A changed value rotates in (see
//! [`crate::rotation`]): new work uses it at once, checks accept the old one until the overlap
//! ends. A failed refresh keeps the last good value and marks health degraded; it never takes a
//! working secret away.
//!
//! A caller that sees a signature or login token fail that might be signed with a key newer
//! than ours asks for an early refresh ([`Secrets::request_early_refresh`]); at most one per
//! minute is run, so a stream of bad tokens cannot turn into a stream of vault reads.
//!
//! Time: the refresh interval, the early-refresh gap and the overlap are durations measured on
//! tokio's clock (`tokio::time::Instant`), not on the wall clock: they are waits and deadlines
//! inside this process, immune to wall-clock steps, and tests drive them with paused tokio time
//! (`start_paused`, `advance`) since the source is a trait they fake in memory. The one wall
//! time here, when the last refresh succeeded (shown in health), is read from
//! `meschain_model::clock`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

pub use meschain_model::health::HealthStatus;

use crate::reference::SecretRef;
use crate::rotation::Rotating;
use crate::value::SecretValue;
use crate::vault::{Fetched, KeyVault, VaultError};

/// Where secrets are read from: Key Vault, or a scripted source in tests.
#[async_trait]
pub trait SecretSource: Send + Sync + 'static {
    async fn read(&self, r: &SecretRef) -> Result<Fetched, VaultError>;
}

#[async_trait]
impl SecretSource for KeyVault {
    async fn read(&self, r: &SecretRef) -> Result<Fetched, VaultError> {
        KeyVault::read(self, r).await
    }
}

/// Timings of the cache. [`CacheOptions::default`] is what production uses.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// How often every secret is re-read (`SECRETS_REFRESH_SECONDS`).
    pub refresh_every: Duration,
    /// How long a replaced value stays accepted (`SECRETS_OVERLAP_SECONDS`).
    pub overlap: Duration,
    /// The shortest gap between two early refreshes.
    pub early_refresh_gap: Duration,
    /// Reads tried per secret at start before giving up.
    pub startup_attempts: u32,
    /// The wait after the first failed start-up read; doubled after each next one.
    pub startup_backoff: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            refresh_every: Duration::from_secs(300),
            overlap: Duration::from_secs(900),
            early_refresh_gap: Duration::from_secs(60),
            startup_attempts: 4,
            startup_backoff: Duration::from_millis(500),
        }
    }
}

/// The secrets that could not be read at start, each with its setting, vault and reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct StartupError {
    pub failures: Vec<(String, SecretRef, VaultError)>,
}

impl StartupError {
    fn describe(&self) -> String {
        let lines: Vec<String> =
            self.failures.iter().map(|(setting, r, e)| format!("setting {setting}: {r}: {e}")).collect();
        format!("cannot read {} Key Vault secret(s): {}", lines.len(), lines.join("; "))
    }
}

/// `health.secrets` on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretsHealth {
    pub status: HealthStatus,
    pub detail: String,
}

/// What one refresh pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// Settings whose value changed (rotated in).
    pub rotated: Vec<String>,
    /// Settings that could not be read (last good value kept).
    pub failed: Vec<String>,
}

/// A handle on one secret: cheap to clone, always answers from memory.
#[derive(Clone)]
pub struct SecretHandle {
    rx: watch::Receiver<Rotating<SecretValue>>,
}

impl fmt::Debug for SecretHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHandle(<redacted>)")
    }
}

impl SecretHandle {
    /// A value that never changes (a literal setting), so callers treat literals and vault
    /// references alike.
    pub fn fixed(value: SecretValue) -> Self {
        let (_tx, rx) = watch::channel(Rotating::new(value));
        SecretHandle { rx }
    }

    /// The value for anything new.
    pub fn current(&self) -> SecretValue {
        self.rx.borrow().current().clone()
    }

    /// The current value and, during an overlap, the previous one.
    pub fn rotating(&self) -> Rotating<SecretValue> {
        self.rx.borrow().clone()
    }

    /// Whether `check` holds for any value accepted now (current first).
    pub fn any_accepted(&self, mut check: impl FnMut(&SecretValue) -> bool) -> bool {
        let now = Instant::now();
        self.rx.borrow().accepted(now).any(&mut check)
    }

    /// Waits for the next rotation; `Err` when the value can never change again.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.rx.changed().await
    }
}

/// A value derived from a secret (a parsed key, a connection string), kept in step with the
/// secret's rotations: [`Derived::snapshot`] for the hot paths, [`Derived::current`] for an owned
/// handle.
///
/// Why `ArcSwap` and not a lock: every negotiate and upstream call reads these, on every core.
/// An `RwLock` read, or cloning the `Arc`, writes a counter that all cores share, so two cores
/// reading at once pass that cache line back and forth. A snapshot only reads the shared pointer
/// (arc-swap keeps its bookkeeping per thread); the only writer is the task following the
/// secret.
pub struct Derived<T> {
    inner: Arc<ArcSwap<Rotating<Arc<T>>>>,
}

/// A [`Derived`] value as it was when the snapshot was taken. Hold it for one request, not
/// across waits: a rotation frees the replaced value only once its snapshots are gone.
pub struct Snapshot<T>(arc_swap::Guard<Arc<Rotating<Arc<T>>>>);

impl<T> Snapshot<T> {
    /// The value for anything new.
    pub fn current(&self) -> &T {
        self.0.current()
    }

    /// The values checks accept now: the current one, then the previous one during an overlap.
    pub fn accepted(&self) -> impl Iterator<Item = &T> {
        self.0.accepted(Instant::now()).map(|v| &**v)
    }
}

impl<T> Clone for Derived<T> {
    fn clone(&self) -> Self {
        Derived { inner: self.inner.clone() }
    }
}

impl<T> fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Derived(<redacted>)")
    }
}

impl<T: Send + Sync + 'static> Derived<T> {
    /// A value that never rotates.
    pub fn fixed(value: T) -> Self {
        Derived { inner: Arc::new(ArcSwap::from_pointee(Rotating::new(Arc::new(value)))) }
    }

    /// Derives from `handle` now (an error if the current value is unusable), then follows its
    /// rotations on a task of the current runtime. A rotated-in value that cannot be derived is
    /// logged (by `setting`, never by value) and the previous derivation stays in use.
    pub fn follow<E: fmt::Display>(
        mut handle: SecretHandle,
        setting: &'static str,
        derive: impl Fn(&SecretValue) -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<Self, E> {
        let derive_arc = move |v: &SecretValue| derive(v).map(Arc::new);
        let first = handle.rotating().try_map(&derive_arc)?;
        let inner = Arc::new(ArcSwap::from_pointee(first));
        let target = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while handle.changed().await.is_ok() {
                let Some(target) = target.upgrade() else { return };
                match handle.rotating().try_map(&derive_arc) {
                    Ok(next) => target.store(Arc::new(next)),
                    Err(e) => tracing::error!(setting, "the new value is unusable ({e}); keeping the current one"),
                }
            }
        });
        Ok(Derived { inner })
    }

    /// The value now, without writing memory other threads read (see [`Derived`]).
    pub fn snapshot(&self) -> Snapshot<T> {
        Snapshot(self.inner.load())
    }

    /// The value for anything new, as a handle that outlives rotations.
    pub fn current(&self) -> Arc<T> {
        self.inner.load().current().clone()
    }
}

struct Entry {
    setting: String,
    reference: SecretRef,
    value: watch::Sender<Rotating<SecretValue>>,
    version: Mutex<Option<String>>,
    last_error: Mutex<Option<VaultError>>,
}

struct Inner {
    source: Arc<dyn SecretSource>,
    options: CacheOptions,
    entries: Vec<Entry>,
    early: Notify,
    last_early: Mutex<Option<Instant>>,
    /// Wall time (ms since the epoch) of the last refresh that read every secret.
    last_refresh: Mutex<Option<u64>>,
}

/// The process's Key Vault secrets. Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct Secrets {
    inner: Arc<Inner>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: Vec<&str> = self.inner.entries.iter().map(|e| e.setting.as_str()).collect();
        f.debug_struct("Secrets").field("settings", &settings).finish_non_exhaustive()
    }
}

impl Secrets {
    /// Reads every `(setting, reference)` from `source`, each up to
    /// [`CacheOptions::startup_attempts`] times with doubling back-off, all in parallel.
    /// Fails with every secret that could not be read, named by setting and vault.
    pub async fn resolve(
        source: Arc<dyn SecretSource>,
        references: Vec<(String, SecretRef)>,
        options: CacheOptions,
    ) -> Result<Secrets, StartupError> {
        let reads = references.iter().map(|(setting, r)| read_with_retries(source.as_ref(), setting, r, &options));
        let results = futures_util::future::join_all(reads).await;
        let mut entries = Vec::with_capacity(references.len());
        let mut failures = Vec::new();
        for ((setting, reference), result) in references.into_iter().zip(results) {
            match result {
                Ok(fetched) => entries.push(Entry {
                    setting,
                    reference,
                    value: watch::Sender::new(Rotating::new(fetched.value)),
                    version: Mutex::new(fetched.version),
                    last_error: Mutex::new(None),
                }),
                Err(e) => failures.push((setting, reference, e)),
            }
        }
        if !failures.is_empty() {
            return Err(StartupError { failures });
        }
        let now = (!entries.is_empty()).then(meschain_model::clock::now_ms);
        Ok(Secrets {
            inner: Arc::new(Inner {
                source,
                options,
                entries,
                early: Notify::new(),
                last_early: Mutex::new(None),
                last_refresh: Mutex::new(now),
            }),
        })
    }

    /// A cache with no secrets (no setting is a vault reference): always healthy, never reads.
    pub fn empty() -> Secrets {
        struct Nothing;
        #[async_trait]
        impl SecretSource for Nothing {
            async fn read(&self, _: &SecretRef) -> Result<Fetched, VaultError> {
                Err(VaultError::NotFound)
            }
        }
        Secrets {
            inner: Arc::new(Inner {
                source: Arc::new(Nothing),
                options: CacheOptions::default(),
                entries: Vec::new(),
                early: Notify::new(),
                last_early: Mutex::new(None),
                last_refresh: Mutex::new(None),
            }),
        }
    }

    /// The handle of `setting`, if it was a vault reference.
    pub fn get(&self, setting: &str) -> Option<SecretHandle> {
        self.entry(setting).map(|e| SecretHandle { rx: e.value.subscribe() })
    }

    /// The accessor for connectors (marketplace credentials, the Cosmos key): the handle of
    /// `setting` whether it is a vault reference (follows rotation) or a literal that `var`
    /// holds (never changes). Read `current()` when building each request; never store the text.
    pub fn setting(&self, setting: &str, var: impl Fn(&str) -> Option<String>) -> Option<SecretHandle> {
        self.get(setting).or_else(|| var(setting).map(|v| SecretHandle::fixed(SecretValue::new(v))))
    }

    /// The settings held, in the order given at start.
    pub fn settings(&self) -> impl Iterator<Item = &str> {
        self.inner.entries.iter().map(|e| e.setting.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.inner.entries.is_empty()
    }

    fn entry(&self, setting: &str) -> Option<&Entry> {
        self.inner.entries.iter().find(|e| e.setting == setting)
    }

    /// Re-reads every secret that follows the latest version, once, in parallel.
    pub async fn refresh(&self) -> RefreshReport {
        let inner = &self.inner;
        let due: Vec<&Entry> = inner.entries.iter().filter(|e| e.reference.version().is_none()).collect();
        let reads = due.iter().map(|e| inner.source.read(&e.reference));
        let results = futures_util::future::join_all(reads).await;
        let mut report = RefreshReport::default();
        for (entry, result) in due.into_iter().zip(results) {
            match result {
                Ok(fetched) => {
                    *lock(&entry.last_error) = None;
                    let changed = entry.value.send_if_modified(|v| {
                        if *v.current() == fetched.value {
                            return false;
                        }
                        v.rotate(fetched.value.clone(), Instant::now(), inner.options.overlap);
                        true
                    });
                    if changed {
                        let version = fetched.version.as_deref().unwrap_or("?");
                        tracing::info!(
                            setting = %entry.setting,
                            "new version {version} of {} in use; the previous value stays accepted for {} s",
                            entry.reference,
                            inner.options.overlap.as_secs()
                        );
                        report.rotated.push(entry.setting.clone());
                    }
                    *lock(&entry.version) = fetched.version;
                }
                Err(e) => {
                    tracing::warn!(setting = %entry.setting, "refreshing {} failed, keeping the last good value: {e}", entry.reference);
                    *lock(&entry.last_error) = Some(e);
                    report.failed.push(entry.setting.clone());
                }
            }
        }
        if report.failed.is_empty() {
            *lock(&inner.last_refresh) = Some(meschain_model::clock::now_ms());
        }
        report
    }

    /// The value a token issuer sharing this secret with its verifiers should sign with now.
    ///
    /// Verifiers (every instance of the handler) read a rotated value only at their next
    /// refresh, so a token signed with it at once would fail until then. The issuer keeps
    /// signing with the previous value until verifiers on this schedule have surely read the
    /// new one (two refresh intervals, at most half the overlap), then switches. Tokens signed
    /// with the previous value stay valid until the overlap ends. `None` when the setting is
    /// not a vault reference.
    pub fn signing_value(&self, setting: &str) -> Option<SecretValue> {
        let rotating = self.get(setting)?.rotating();
        let options = &self.inner.options;
        let adopt_after = (2 * options.refresh_every).min(options.overlap / 2);
        let now = Instant::now();
        let previous = rotating.overlap_ends().and_then(|ends| {
            let rotated_at = ends.checked_sub(options.overlap)?;
            (now < rotated_at + adopt_after).then(|| rotating.previous(now).cloned()).flatten()
        });
        Some(previous.unwrap_or_else(|| rotating.current().clone()))
    }

    /// Asks the refresh task for a refresh now, because something failed that a newer secret
    /// might fix. Returns whether one was scheduled: at most one per
    /// [`CacheOptions::early_refresh_gap`].
    pub fn request_early_refresh(&self) -> bool {
        if self.inner.entries.is_empty() {
            return false;
        }
        let now = Instant::now();
        let mut last = lock(&self.inner.last_early);
        if last.is_some_and(|t| now.duration_since(t) < self.inner.options.early_refresh_gap) {
            return false;
        }
        *last = Some(now);
        self.inner.early.notify_one();
        true
    }

    /// Runs forever: a refresh every interval (with jitter), and early when asked.
    /// Returns at once when there is nothing to refresh.
    pub async fn run_refresh(self) {
        if self.inner.entries.iter().all(|e| e.reference.version().is_some()) {
            return;
        }
        loop {
            let wait = jitter(self.inner.options.refresh_every);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.early.notified() => tracing::info!("early Key Vault refresh"),
            }
            self.refresh().await;
        }
    }

    /// Spawns [`Secrets::run_refresh`] on the current runtime.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run_refresh())
    }

    /// `health.secrets`: degraded while any secret's last refresh failed.
    pub fn health(&self) -> SecretsHealth {
        let entries = &self.inner.entries;
        if entries.is_empty() {
            return SecretsHealth { status: HealthStatus::Healthy, detail: "no Key Vault references".into() };
        }
        let failing: Vec<String> = entries
            .iter()
            .filter_map(|e| lock(&e.last_error).as_ref().map(|err| format!("{} ({})", e.setting, err_brief(err))))
            .collect();
        if failing.is_empty() {
            let when = lock(&self.inner.last_refresh).map(meschain_model::clock::rfc3339_millis);
            let detail =
                format!("{} from Key Vault, last read {}", entries.len(), when.as_deref().unwrap_or("at start"));
            return SecretsHealth { status: HealthStatus::Healthy, detail };
        }
        SecretsHealth {
            status: HealthStatus::Degraded,
            detail: format!("refresh failing, last good values in use: {}", failing.join(", ")),
        }
    }

    /// Version ids in use, by setting (for logs and diagnostics; versions are not secret).
    pub fn versions(&self) -> HashMap<String, Option<String>> {
        self.inner.entries.iter().map(|e| (e.setting.clone(), lock(&e.version).clone())).collect()
    }
}

async fn read_with_retries(
    source: &dyn SecretSource,
    setting: &str,
    r: &SecretRef,
    options: &CacheOptions,
) -> Result<Fetched, VaultError> {
    let mut backoff = options.startup_backoff;
    let mut attempt = 1;
    loop {
        match source.read(r).await {
            Ok(fetched) => return Ok(fetched),
            Err(e) if attempt >= options.startup_attempts.max(1) => return Err(e),
            Err(e) => {
                tracing::warn!(
                    setting,
                    "reading {r} failed (attempt {attempt}), retrying in {} ms: {e}",
                    backoff.as_millis()
                );
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        }
    }
}

/// A short reason for the dashboard: the error without its advice.
fn err_brief(e: &VaultError) -> String {
    let s = e.to_string();
    s.split(';').next().unwrap_or(&s).trim().to_owned()
}

/// ±10 %, so instances that started together do not read the vault together.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.9..1.1))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
