//! Reading secrets with the official Key Vault client against the local fake vault, over TLS,
//! through the challenge flow: values, versions, every documented error, and bad vaults.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use meschain_fake_keyvault::{Fault, FaultKind};
use meschain_secrets::cache::{CacheOptions, Secrets};
use meschain_secrets::reference::{SecretRef, parse_reference};
use meschain_secrets::vault::{KeyVault, VaultEndpointOverrides, VaultError, VaultOptions, http_client};
use support::{TOKEN, VAULT, client, fake};

fn latest(name: &str) -> SecretRef {
    parse_reference(&format!("@Microsoft.KeyVault(VaultName={VAULT};SecretName={name})")).unwrap()
}

fn pinned(name: &str, version: &str) -> SecretRef {
    parse_reference(&format!("@Microsoft.KeyVault(SecretUri=https://{VAULT}.vault.azure.net/secrets/{name}/{version})"))
        .unwrap()
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn test_reads_latest_and_pinned_versions() {
    let vault = fake().await;
    let v1 = vault.state().set_secret("jwt-secret", "first-value");
    let v2 = vault.state().set_secret("jwt-secret", "second-value");
    let kv = client(&vault, TOKEN, T);

    let got = kv.read(&latest("jwt-secret")).await.unwrap();
    assert_eq!((got.value.expose(), got.version.as_deref()), ("second-value", Some(v2.as_str())));
    let old = kv.read(&pinned("jwt-secret", &v1)).await.unwrap();
    assert_eq!((old.value.expose(), old.version.as_deref()), ("first-value", Some(v1.as_str())));
    // Names are case-insensitive in Key Vault.
    assert_eq!(kv.read(&latest("JWT-Secret")).await.unwrap().value.expose(), "second-value");

    let stats = vault.state().stats();
    assert_eq!(stats.challenges, 1, "one challenge, then the token is reused");
    assert_eq!(stats.reads["jwt-secret"], 3);
    vault.stop().await;
}

#[tokio::test]
async fn test_each_error_kind_is_clear() {
    let vault = fake().await;
    vault.state().set_secret("present", "v");
    vault.state().set_secret("off", "v");
    vault.state().set_enabled("off", None, false);
    let kv = client(&vault, TOKEN, T);

    assert_eq!(kv.read(&latest("absent")).await, Err(VaultError::NotFound));
    assert_eq!(kv.read(&pinned("present", "0123456789abcdef0123456789abcdef")).await, Err(VaultError::NotFound));
    assert_eq!(kv.read(&latest("off")).await, Err(VaultError::Disabled));

    vault.state().add_fault(Fault { kind: FaultKind::Forbidden, count: Some(1), secret: None });
    assert_eq!(kv.read(&latest("present")).await, Err(VaultError::Forbidden("ForbiddenByRbac".into())));
    vault.state().add_fault(Fault { kind: FaultKind::Throttle, count: Some(1), secret: None });
    assert_eq!(kv.read(&latest("present")).await, Err(VaultError::Throttled));
    vault.state().add_fault(Fault { kind: FaultKind::ServerError, count: Some(1), secret: None });
    assert!(matches!(kv.read(&latest("present")).await, Err(VaultError::Http { status: 500, .. })));
    // Faults are used up; the vault reads normally again.
    assert_eq!(kv.read(&latest("present")).await.unwrap().value.expose(), "v");

    let messages = [
        VaultError::NotFound.to_string(),
        VaultError::Disabled.to_string(),
        VaultError::Forbidden("ForbiddenByRbac".into()).to_string(),
        VaultError::Throttled.to_string(),
    ];
    assert!(messages[0].contains("SecretNotFound") && messages[1].contains("SecretDisabled"), "{messages:?}");
    assert!(messages[2].contains("Key Vault Secrets User") && messages[3].contains("429"), "{messages:?}");
    vault.stop().await;
}

#[tokio::test]
async fn test_a_token_the_vault_refuses_is_unauthenticated() {
    let vault = fake().await;
    vault.state().set_secret("s", "v");
    let kv = client(&vault, "not-a-valid-token", T);
    let e = kv.read(&latest("s")).await.unwrap_err();
    assert!(matches!(e, VaultError::Unauthenticated(_)), "{e:?}");
    assert_eq!(vault.state().reads("s"), 0);
    vault.stop().await;
}

#[tokio::test]
async fn test_a_hanging_vault_is_cut_at_the_read_timeout() {
    let vault = fake().await;
    vault.state().set_secret("s", "v");
    vault.state().add_fault(Fault { kind: FaultKind::Hang, count: None, secret: Some("s".into()) });
    let kv = client(&vault, TOKEN, Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(kv.read(&latest("s")).await, Err(VaultError::Timeout(Duration::from_millis(500))));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    vault.stop().await;
}

#[tokio::test]
async fn test_a_vault_answering_garbage_is_a_bad_response() {
    let vault = fake().await;
    vault.state().set_secret("s", "v");
    let kv = client(&vault, TOKEN, T);
    // Once authenticated (the garbage then hits the authorized request), and before.
    kv.read(&latest("s")).await.unwrap();
    vault.state().add_fault(Fault { kind: FaultKind::Garbage, count: Some(1), secret: None });
    assert!(matches!(kv.read(&latest("s")).await, Err(VaultError::BadResponse(_))));
    let fresh = client(&vault, TOKEN, T);
    vault.state().add_fault(Fault { kind: FaultKind::Garbage, count: Some(1), secret: None });
    assert!(matches!(fresh.read(&latest("s")).await, Err(VaultError::BadResponse(_))));
    vault.stop().await;
}

#[tokio::test]
async fn test_production_checks_stay_on() {
    let vault = fake().await;
    vault.state().set_secret("s", "v");

    // Without the fake's CA, TLS fails: nothing is trusted by default.
    let no_ca = VaultEndpointOverrides { address: Some(vault.address()), ca_pem: None };
    let http = http_client(&no_ca, ["myvault.vault.azure.net"]).unwrap();
    let kv = KeyVault::new(support_credential(), http, VaultOptions { read_timeout: T });
    assert!(matches!(kv.read(&latest("s")).await, Err(VaultError::Unreachable(_))));

    // A host the challenge's resource does not cover gets no token (Key Vault's own check).
    let http = http_client(&support::overrides(&vault), []).unwrap();
    let kv = KeyVault::new(support_credential(), http, VaultOptions { read_timeout: T });
    let by_ip = SecretRef::new(&format!("https://127.0.0.1:{}", vault.address().port()), "s", None).unwrap();
    let e = kv.read(&by_ip).await.unwrap_err();
    assert!(e.to_string().contains("doesn't match the requested domain"), "{e}");
    assert_eq!(vault.state().reads("s"), 0);
    vault.stop().await;
}

fn support_credential() -> meschain_secrets::credential::VaultCredential {
    meschain_secrets::credential::VaultCredential::supplied(Arc::new(support::TestToken(TOKEN)))
}

#[tokio::test]
async fn test_startup_error_names_setting_and_vault_never_the_value() {
    let vault = fake().await;
    vault.state().set_secret("present", "super-secret-value");
    let kv = Arc::new(client(&vault, TOKEN, T));
    let options = CacheOptions { startup_backoff: Duration::from_millis(10), ..CacheOptions::default() };
    let refs = vec![("GOOD".to_string(), latest("present")), ("AUTH_JWT_SECRET".to_string(), latest("missing"))];
    let e = Secrets::resolve(kv.clone(), refs, options.clone()).await.unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("setting AUTH_JWT_SECRET") && shown.contains("vault `myvault`"), "{shown}");
    assert!(shown.contains("`missing`") && !shown.contains("super-secret-value"), "{shown}");
    assert_eq!(e.failures.len(), 1);

    // A secret that appears during the retries is found.
    let refs = vec![("LATE".to_string(), latest("late"))];
    let state = vault.state().clone();
    let slow = CacheOptions { startup_backoff: Duration::from_millis(200), ..options };
    // A real wait: the fake vault counts only reads it answered, so the first (404) attempt is
    // not observable; 100 ms falls inside the first 200 ms back-off.
    let creator = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        state.set_secret("late", "arrived");
    });
    let secrets = Secrets::resolve(kv, refs, slow).await.unwrap();
    creator.await.unwrap();
    assert_eq!(secrets.get("LATE").unwrap().current().expose(), "arrived");
    vault.stop().await;
}

#[tokio::test]
async fn test_refresh_from_the_vault_rotates_and_keeps_last_good() {
    let vault = fake().await;
    vault.state().set_secret("signalr", "key-1");
    let kv = Arc::new(client(&vault, TOKEN, Duration::from_millis(500)));
    let secrets =
        Secrets::resolve(kv, vec![("SIGNALR".into(), latest("signalr"))], CacheOptions::default()).await.unwrap();
    let handle = secrets.get("SIGNALR").unwrap();

    vault.state().set_secret("signalr", "key-2");
    let report = secrets.refresh().await;
    assert_eq!(report.rotated, ["SIGNALR"]);
    assert_eq!(handle.current().expose(), "key-2");
    assert!(handle.any_accepted(|v| v.expose() == "key-1"), "the old key is accepted during the overlap");

    vault.state().add_fault(Fault { kind: FaultKind::Hang, count: Some(1), secret: None });
    let report = secrets.refresh().await;
    assert_eq!(report.failed, ["SIGNALR"]);
    assert_eq!(handle.current().expose(), "key-2");
    let health = secrets.health();
    assert_eq!(health.status, meschain_secrets::HealthStatus::Degraded);
    assert!(health.detail.contains("SIGNALR") && !health.detail.contains("key-2"), "{}", health.detail);

    assert!(secrets.refresh().await.failed.is_empty());
    assert_eq!(secrets.health().status, meschain_secrets::HealthStatus::Healthy);
    vault.stop().await;
}

/// The refresh task picks a vault rotation up by itself. When the old value stops being
/// accepted is decided by tokio time, tested with paused time in `cache.rs`
/// (`test_background_refresh_rotates_with_overlap`); a real vault on a socket cannot run on
/// paused time, so this test does not wait the overlap out.
#[tokio::test]
async fn test_rotation_in_the_vault_reaches_a_running_cache() {
    let vault = fake().await;
    vault.state().set_secret("jwt", "old-secret");
    let kv = Arc::new(client(&vault, TOKEN, Duration::from_secs(2)));
    let options = CacheOptions {
        refresh_every: Duration::from_millis(200),
        overlap: Duration::from_secs(600),
        ..CacheOptions::default()
    };
    let secrets = Secrets::resolve(kv, vec![("AUTH_JWT_SECRET".into(), latest("jwt"))], options).await.unwrap();
    let mut handle = secrets.get("AUTH_JWT_SECRET").unwrap();
    let refresher = secrets.spawn_refresh();

    vault.state().set_secret("jwt", "new-secret");
    tokio::time::timeout(Duration::from_secs(5), handle.changed()).await.unwrap().unwrap();
    assert_eq!(handle.current().expose(), "new-secret");
    assert!(handle.any_accepted(|v| v.expose() == "old-secret"), "accepted during the overlap");
    assert!(handle.rotating().overlap_ends().is_some(), "the old value has an end");
    refresher.abort();
    vault.stop().await;
}
