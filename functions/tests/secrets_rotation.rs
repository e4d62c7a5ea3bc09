//! Key rotation through Key Vault, in the handler's own state: the SignalR connection string and
//! `AUTH_JWT_SECRET` are vault references read from the local fake vault (TLS, challenge flow,
//! production checks on). After the secrets rotate in the vault and a refresh reads them, new
//! client and REST tokens use the new key at once, login tokens and upstream signatures are
//! accepted with old and new during the overlap, and the old ones are refused after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use jsonwebtoken::{EncodingKey, Header};
use meschain_fake_keyvault::{FakeVault, Options};
use meschain_functions::app::AppState;
use meschain_functions::auth::AuthError;
use meschain_functions::settings::Settings;
use meschain_functions::signalr_rest::RequestAuth;
use meschain_secrets::cache::{CacheOptions, Secrets};
use meschain_secrets::credential::VaultCredential;
use meschain_secrets::settings::{lookup, references};
use meschain_secrets::vault::{KeyVault, VaultEndpointOverrides, VaultOptions, http_client};
use meschain_signalr::AccessKey;

#[derive(Debug)]
struct TestToken;

#[async_trait::async_trait]
impl TokenCredential for TestToken {
    async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new("t", azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1)))
    }
}

const OLD_JWT: &str = "old-login-secret-0123456789abcdef-0123456789";
const NEW_JWT: &str = "new-login-secret-0123456789abcdef-0123456789";

fn signalr(key: &str) -> String {
    format!("Endpoint=http://localhost;Port=8888;AccessKey={key};Version=1.0;")
}

fn fallback(key: &str) -> String {
    format!("Endpoint=http://fallback.localhost;Port=8889;AccessKey={key};Version=1.0;")
}

/// Whether a REST token of `auth` verifies with `key`.
fn signs_with(auth: &RequestAuth, key: &str) -> bool {
    let RequestAuth::AccessKey(signer) = auth else { panic!("an access key endpoint") };
    let token = signer.current().rest_token("http://localhost/api/hubs/h", 0, 600).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(&token, &jsonwebtoken::DecodingKey::from_secret(key.as_bytes()), &v)
        .is_ok()
}

fn login(secret: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"sub": "u1", "roles": ["admin"], "iss": "meschain-dev", "aud": "meschain-realtime", "iat": now, "exp": now + 600});
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// Whether `token` verifies with `key` (signature only: these tokens are checked for their signer).
fn signed_by(token: &str, key: &AccessKey) -> bool {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(key.expose().as_bytes()),
        &v,
    )
    .is_ok()
}

#[tokio::test]
async fn test_signalr_key_and_login_secret_rotate_with_overlap() {
    let vault = FakeVault::start(Options { accepted_tokens: vec!["t".into()], ..Options::default() }).await.unwrap();
    vault.state().set_secret("signalr", &signalr("old-signalr-key-0123456789abcdef"));
    vault.state().set_secret("jwt", OLD_JWT);
    vault.state().set_secret("signalr-secondary", &signalr("old-secondary-key-0123456789abcdef"));
    vault.state().set_secret("signalr-fallback", &fallback("old-fallback-key-0123456789abcdef"));

    let env: HashMap<&str, String> = HashMap::from([
        ("AzureSignalRConnectionString", "@Microsoft.KeyVault(VaultName=myvault;SecretName=signalr)".into()),
        ("AUTH_JWT_SECRET", "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/jwt)".into()),
        (
            "AzureSignalRSecondaryConnectionString",
            "@Microsoft.KeyVault(VaultName=myvault;SecretName=signalr-secondary)".into(),
        ),
        (
            "AzureSignalRFallbackConnectionString",
            "@Microsoft.KeyVault(VaultName=myvault;SecretName=signalr-fallback)".into(),
        ),
        ("AUTH_ISSUER", "meschain-dev".into()),
        ("AUTH_AUDIENCE", "meschain-realtime".into()),
        ("ADMIN_BROADCAST_SCHEDULE", "*/5 * * * * *".into()),
        ("SYNC_QUEUE_NAME", "marketplace-sync".into()),
    ]);
    let refs = references(env.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    let overrides = VaultEndpointOverrides { address: Some(vault.address()), ca_pem: Some(vault.ca_pem().into()) };
    let http = http_client(&overrides, ["myvault.vault.azure.net"]).unwrap();
    let kv = KeyVault::new(VaultCredential::supplied(Arc::new(TestToken)), http, VaultOptions::default());
    let overlap = Duration::from_millis(1500);
    let options = CacheOptions { overlap, ..CacheOptions::default() };
    let secrets = Secrets::resolve(Arc::new(kv), refs, options).await.unwrap();
    let settings = Settings::from_lookup(|n| lookup(&secrets, n, |n| env.get(n).cloned())).unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = meschain_store::open(&meschain_store::StoreSettings::embedded(data.path())).await.unwrap();
    let state = AppState::with_secrets(settings, store, secrets.clone()).unwrap();

    let old_key = AccessKey::new("old-signalr-key-0123456789abcdef");
    let new_key = AccessKey::new("new-signalr-key-0123456789abcdef");
    assert!(state.authenticator().verify_token(&login(OLD_JWT)).await.is_ok());
    assert!(matches!(state.authenticator().verify_token(&login(NEW_JWT)).await, Err(AuthError::InvalidSignature)));
    let old_secondary = AccessKey::new("old-secondary-key-0123456789abcdef");
    let new_secondary = AccessKey::new("new-secondary-key-0123456789abcdef");
    assert_eq!(state.upstream_keys(), [old_key.clone(), old_secondary.clone()]);
    let fallback_auth = || state.rest().endpoints()[1].auth();
    assert!(signs_with(fallback_auth(), "old-fallback-key-0123456789abcdef"));

    vault.state().set_secret("signalr", &signalr("new-signalr-key-0123456789abcdef"));
    vault.state().set_secret("jwt", NEW_JWT);
    vault.state().set_secret("signalr-secondary", &signalr("new-secondary-key-0123456789abcdef"));
    vault.state().set_secret("signalr-fallback", &fallback("new-fallback-key-0123456789abcdef"));
    assert_eq!(secrets.refresh().await.rotated.len(), 4);
    // Each follower applies its new value on its own task: wait until all of them have.
    let client_token =
        || state.client_tokens().with_key(|k| k.rest_token("http://localhost/api/v1/hubs/h", 0, 600)).unwrap().unwrap();
    let applied = || {
        state.upstream_keys().len() == 4
            && signed_by(&client_token(), &new_key)
            && signs_with(fallback_auth(), "new-fallback-key-0123456789abcdef")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(applied() && state.authenticator().verify_token(&login(NEW_JWT)).await.is_ok()) {
        assert!(std::time::Instant::now() < deadline, "the followers never applied the rotated values");
        tokio::task::yield_now().await;
    }
    let rotated_at = std::time::Instant::now();

    // New work uses the new key at once (client and REST tokens share the signer).
    let token = client_token();
    assert!(signed_by(&token, &new_key) && !signed_by(&token, &old_key), "client tokens are signed with the new key");
    assert!(signs_with(fallback_auth(), "new-fallback-key-0123456789abcdef"), "so are REST calls to the fallback");

    // During the overlap both login secrets and both upstream keys are accepted.
    assert!(state.authenticator().verify_token(&login(NEW_JWT)).await.is_ok());
    assert!(state.authenticator().verify_token(&login(OLD_JWT)).await.is_ok());
    assert_eq!(state.upstream_keys(), [new_key.clone(), old_key.clone(), new_secondary.clone(), old_secondary.clone()]);

    tokio::time::sleep(overlap.saturating_sub(rotated_at.elapsed()) + Duration::from_millis(100)).await;
    assert!(matches!(state.authenticator().verify_token(&login(OLD_JWT)).await, Err(AuthError::InvalidSignature)));
    assert!(state.authenticator().verify_token(&login(NEW_JWT)).await.is_ok());
    assert_eq!(state.upstream_keys(), [new_key, new_secondary]);
    vault.stop().await;
}

/// The real binary: a malformed reference, and a reference to a secret the vault does not
/// have, stop the handler before it listens, naming the setting (and the vault), never a value.
/// (Multi-threaded: the fake vault must answer while this test waits for the process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_handler_exits_naming_the_setting_when_a_reference_cannot_be_read() {
    let base = [
        ("AzureSignalRConnectionString", signalr("literal-signalr-key-0123456789abcdef")),
        ("AUTH_JWT_SECRET", OLD_JWT.to_string()),
        ("ADMIN_BROADCAST_SCHEDULE", "*/5 * * * * *".to_string()),
        ("SYNC_QUEUE_NAME", "marketplace-sync".to_string()),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_string()),
        ("SECRETS_CREDENTIAL", "managed-identity".to_string()),
    ];
    let run = |extra: Vec<(&'static str, String)>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_handler"));
        cmd.env_clear().envs(base.iter().cloned()).envs(extra);
        cmd.output().unwrap()
    };
    let out = run(vec![("AUTH_JWT_SECRET", "@Microsoft.KeyVault(VaultName=myvault)".into())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("setting AUTH_JWT_SECRET") && err.contains("SecretName"), "{err}");

    let vault = FakeVault::start(Options::default()).await.unwrap();
    let ca = std::env::temp_dir().join(format!("handler-kv-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, vault.ca_pem()).unwrap();
    let started = std::time::Instant::now();
    let out = run(vec![
        ("AUTH_JWT_SECRET", "@Microsoft.KeyVault(VaultName=myvault;SecretName=absent)".into()),
        ("IDENTITY_ENDPOINT", vault.identity_endpoint()),
        ("IDENTITY_HEADER", vault.identity_header().into()),
        ("SECRETS_VAULT_ADDRESS", vault.address().to_string()),
        ("SECRETS_VAULT_CA_FILE", ca.display().to_string()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("setting AUTH_JWT_SECRET") && err.contains("vault `myvault`") && err.contains("SecretNotFound"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "within the host's start window");
    let _ = std::fs::remove_file(ca);
    vault.stop().await;
}
