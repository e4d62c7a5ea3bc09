//! The cache's timing rules, on tokio's paused clock with a scripted source: refresh interval,
//! rotation overlap, last good value on failure, early refresh at most once a minute, start-up
//! retries, and a hot path that never reads the source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meschain_secrets::cache::{CacheOptions, HealthStatus, SecretSource, Secrets};
use meschain_secrets::reference::SecretRef;
use meschain_secrets::vault::{Fetched, VaultError};
use meschain_secrets::{SecretHandle, SecretValue};
use tokio::time::{Instant, advance};

/// A source whose answers the test sets, counting reads.
#[derive(Default)]
struct Script {
    answers: Mutex<HashMap<String, Result<String, VaultError>>>,
    reads: AtomicUsize,
}

impl Script {
    fn set(&self, name: &str, answer: Result<&str, VaultError>) {
        self.answers.lock().unwrap().insert(name.into(), answer.map(str::to_owned));
    }
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl SecretSource for Script {
    async fn read(&self, r: &SecretRef) -> Result<Fetched, VaultError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers.lock().unwrap().get(r.name()).cloned().unwrap_or(Err(VaultError::NotFound));
        answer.map(|v| Fetched { value: SecretValue::new(v), version: Some("v".into()) })
    }
}

fn secret(name: &str) -> SecretRef {
    SecretRef::new("https://myvault.vault.azure.net", name, None).unwrap()
}

fn options() -> CacheOptions {
    CacheOptions {
        refresh_every: Duration::from_secs(300),
        overlap: Duration::from_secs(600),
        early_refresh_gap: Duration::from_secs(60),
        startup_attempts: 4,
        startup_backoff: Duration::from_millis(500),
    }
}

async fn start(script: &Arc<Script>) -> Secrets {
    Secrets::resolve(script.clone(), vec![("KEY".into(), secret("key"))], options()).await.unwrap()
}

fn accepted(h: &SecretHandle) -> Vec<String> {
    h.rotating().accepted(Instant::now()).map(|v| v.expose().to_owned()).collect()
}

/// Lets spawned tasks run until they wait on the (paused) clock again.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn test_background_refresh_rotates_with_overlap() {
    let script = Arc::new(Script::default());
    script.set("key", Ok("k1"));
    let secrets = start(&script).await;
    let mut handle = secrets.get("KEY").unwrap();
    let refresher = secrets.spawn_refresh();
    settle().await;

    script.set("key", Ok("k2"));
    // Nothing changes before the (jittered, ±10 %) interval.
    advance(Duration::from_secs(269)).await;
    settle().await;
    assert_eq!(handle.current().expose(), "k1");
    advance(Duration::from_secs(62)).await;
    settle().await;
    assert!(handle.changed().await.is_ok());
    assert_eq!(handle.current().expose(), "k2");
    assert_eq!(accepted(&handle), ["k2", "k1"], "old and new during the overlap");

    advance(Duration::from_secs(599)).await;
    assert_eq!(accepted(&handle), ["k2", "k1"]);
    advance(Duration::from_secs(2)).await;
    assert_eq!(accepted(&handle), ["k2"], "the old value stops working after the overlap");
    refresher.abort();
}

#[tokio::test(start_paused = true)]
async fn test_failed_refresh_keeps_last_good_value_and_degrades_health() {
    let script = Arc::new(Script::default());
    script.set("key", Ok("good"));
    let secrets = start(&script).await;
    let handle = secrets.get("KEY").unwrap();
    assert_eq!(secrets.health().status, HealthStatus::Healthy);

    for failure in [VaultError::Throttled, VaultError::Timeout(Duration::from_secs(5)), VaultError::Disabled] {
        script.set("key", Err(failure.clone()));
        let report = secrets.refresh().await;
        assert_eq!(report.failed, ["KEY"]);
        assert_eq!(handle.current().expose(), "good");
        assert_eq!(accepted(&handle), ["good"]);
        let health = secrets.health();
        assert_eq!(health.status, HealthStatus::Degraded);
        assert!(health.detail.contains("KEY"), "{}", health.detail);
    }
    script.set("key", Ok("good"));
    assert_eq!(secrets.refresh().await.failed.len(), 0);
    assert_eq!(secrets.health().status, HealthStatus::Healthy);
    let json = serde_json::to_value(secrets.health()).unwrap();
    assert_eq!(json["status"], "healthy");
}

#[tokio::test(start_paused = true)]
async fn test_early_refresh_at_most_once_a_minute() {
    let script = Arc::new(Script::default());
    script.set("key", Ok("k1"));
    let secrets = start(&script).await;
    let handle = secrets.get("KEY").unwrap();
    let refresher = secrets.spawn_refresh();
    settle().await;
    let after_start = script.reads();

    script.set("key", Ok("k2"));
    assert!(secrets.request_early_refresh());
    settle().await;
    assert_eq!(script.reads(), after_start + 1);
    assert_eq!(handle.current().expose(), "k2");

    // A burst of failures asks again and again: no more reads within the minute.
    for _ in 0..100 {
        assert!(!secrets.request_early_refresh());
    }
    settle().await;
    assert_eq!(script.reads(), after_start + 1);

    advance(Duration::from_secs(60)).await;
    assert!(secrets.request_early_refresh());
    settle().await;
    assert_eq!(script.reads(), after_start + 2);
    refresher.abort();
}

#[tokio::test(start_paused = true)]
async fn test_hot_path_never_reads_the_source() {
    let script = Arc::new(Script::default());
    script.set("key", Ok("k1"));
    let secrets = start(&script).await;
    let handle = secrets.get("KEY").unwrap();
    let reads = script.reads();
    for _ in 0..10_000 {
        assert_eq!(handle.current().expose(), "k1");
        assert!(handle.any_accepted(|v| v.expose() == "k1"));
    }
    assert_eq!(script.reads(), reads);
}

#[tokio::test(start_paused = true)]
async fn test_startup_retries_with_backoff_then_fails() {
    let script = Arc::new(Script::default());
    script.set("key", Err(VaultError::Throttled));
    let started = Instant::now();
    let e = Secrets::resolve(script.clone(), vec![("KEY".into(), secret("key"))], options()).await.unwrap_err();
    assert_eq!(script.reads(), 4, "four attempts");
    // 0.5 + 1 + 2 s of back-off between them.
    assert_eq!(started.elapsed(), Duration::from_millis(3500));
    assert!(e.to_string().contains("setting KEY") && e.to_string().contains("429"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn test_startup_recovers_after_transient_failures() {
    let script = Arc::new(Script::default());
    script.set("key", Err(VaultError::Unreachable("connection refused".into())));
    let s2 = script.clone();
    let fixer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        s2.set("key", Ok("ready"));
    });
    let secrets = Secrets::resolve(script.clone(), vec![("KEY".into(), secret("key"))], options()).await.unwrap();
    fixer.await.unwrap();
    assert_eq!(secrets.get("KEY").unwrap().current().expose(), "ready");
    assert_eq!(script.reads(), 3);
}

#[tokio::test(start_paused = true)]
async fn test_pinned_versions_are_not_refreshed_and_nothing_leaks_in_debug() {
    let script = Arc::new(Script::default());
    script.set("pinned", Ok("p-secret-value"));
    let pinned = SecretRef::new("https://myvault.vault.azure.net", "pinned", Some("abc123")).unwrap();
    let secrets = Secrets::resolve(script.clone(), vec![("PINNED".into(), pinned)], options()).await.unwrap();
    let reads = script.reads();
    assert_eq!(secrets.refresh().await, Default::default());
    assert_eq!(script.reads(), reads);
    let shown =
        format!("{secrets:?} {:?} {:?}", secrets.get("PINNED").unwrap(), secrets.get("PINNED").unwrap().rotating());
    assert!(!shown.contains("p-secret-value") && shown.contains("PINNED"), "{shown}");
    // With only pinned secrets the refresh task has nothing to do and ends.
    tokio::time::timeout(Duration::from_secs(1), secrets.clone().run_refresh()).await.unwrap();
}

#[tokio::test]
async fn test_fixed_handles_never_change() {
    let mut h = SecretHandle::fixed(SecretValue::new("literal"));
    assert_eq!(h.current().expose(), "literal");
    assert!(h.changed().await.is_err());
    assert_eq!(Secrets::empty().health().status, HealthStatus::Healthy);
    assert!(!Secrets::empty().request_early_refresh());
}

#[tokio::test(start_paused = true)]
async fn test_derived_values_follow_rotation_and_survive_a_bad_value() {
    use meschain_secrets::Derived;
    let script = Arc::new(Script::default());
    script.set("key", Ok("Endpoint=x;AccessKey=k1"));
    let secrets = start(&script).await;
    let parse = |v: &SecretValue| -> Result<String, String> {
        v.expose().split_once("AccessKey=").map(|(_, k)| k.to_owned()).ok_or_else(|| "no AccessKey".to_owned())
    };
    let keys = Derived::follow(secrets.get("KEY").unwrap(), "KEY", parse).unwrap();
    assert_eq!(*keys.current(), "k1");

    script.set("key", Ok("Endpoint=x;AccessKey=k2"));
    secrets.refresh().await;
    settle().await;
    assert_eq!(*keys.current(), "k2");
    assert_eq!(keys.snapshot().accepted().map(String::as_str).collect::<Vec<_>>(), ["k2", "k1"]);
    // A snapshot taken before a rotation keeps what it saw.
    let before = keys.snapshot();

    // A broken value in the vault does not replace a working key.
    script.set("key", Ok("garbage"));
    secrets.refresh().await;
    settle().await;
    assert_eq!(*keys.current(), "k2");
    assert_eq!(before.current(), "k2");

    advance(Duration::from_secs(601)).await;
    assert_eq!(keys.snapshot().accepted().collect::<Vec<_>>(), ["k2"]);
    assert!(Derived::follow(SecretHandle::fixed(SecretValue::new("bad")), "X", parse).is_err());
}

#[tokio::test(start_paused = true)]
async fn test_setting_accessor_covers_references_and_literals() {
    let script = Arc::new(Script::default());
    script.set("key", Ok("from-vault"));
    let secrets = start(&script).await;
    let env = |n: &str| (n == "COSMOS_KEY").then(|| "literal-key".to_owned());
    assert_eq!(secrets.setting("KEY", env).unwrap().current().expose(), "from-vault");
    assert_eq!(secrets.setting("COSMOS_KEY", env).unwrap().current().expose(), "literal-key");
    assert!(secrets.setting("MISSING", env).is_none());
    assert_eq!(meschain_secrets::settings::lookup(&secrets, "KEY", env).as_deref(), Some("from-vault"));
    assert_eq!(meschain_secrets::settings::lookup(&secrets, "COSMOS_KEY", env).as_deref(), Some("literal-key"));
}

#[tokio::test(start_paused = true)]
async fn test_issuers_sign_with_the_new_value_only_once_verifiers_have_read_it() {
    let script = Arc::new(Script::default());
    script.set("key", Ok("k1"));
    let secrets = start(&script).await;
    assert_eq!(secrets.signing_value("KEY").unwrap().expose(), "k1");
    assert!(secrets.signing_value("OTHER").is_none(), "not a vault reference");

    script.set("key", Ok("k2"));
    assert_eq!(secrets.refresh().await.rotated, ["KEY"]);
    let handle = secrets.get("KEY").unwrap();
    assert_eq!(handle.current().expose(), "k2", "verifiers accept the new value at once");
    // Other verifiers read it within one (jittered) refresh interval; issuers wait for two,
    // capped at half the overlap (here 300 s), and keep signing with the old value meanwhile.
    assert_eq!(secrets.signing_value("KEY").unwrap().expose(), "k1");
    advance(Duration::from_secs(299)).await;
    assert_eq!(secrets.signing_value("KEY").unwrap().expose(), "k1");
    advance(Duration::from_secs(2)).await;
    assert_eq!(secrets.signing_value("KEY").unwrap().expose(), "k2");
}
