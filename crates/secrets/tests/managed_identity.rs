//! Start-up as in Azure: settings holding Key Vault references, read with the real
//! `ManagedIdentityCredential` (App Service's identity endpoint, served by the fake) and a
//! user-assigned identity picked with `AZURE_CLIENT_ID`. Alone in its file because the
//! credential reads the process environment.

use std::collections::HashMap;

use meschain_fake_keyvault::{FakeVault, Options};
use meschain_secrets::credential::CredentialKind;
use meschain_secrets::settings;

#[tokio::test]
async fn test_settings_resolve_with_user_assigned_managed_identity() {
    let vault = FakeVault::start(Options::default()).await.unwrap();
    vault.state().set_secret("jwt", "jwt-secret-value-0123456789abcdef");
    vault.state().set_secret("cosmos-key", "cosmos-value");
    let ca = std::env::temp_dir().join(format!("fake-kv-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, vault.ca_pem()).unwrap();

    // SAFETY: this test binary runs one test, before any thread that reads the environment.
    unsafe {
        std::env::set_var("IDENTITY_ENDPOINT", vault.identity_endpoint());
        std::env::set_var("IDENTITY_HEADER", vault.identity_header());
    }
    let env: HashMap<&str, String> = HashMap::from([
        ("IDENTITY_ENDPOINT", vault.identity_endpoint()),
        ("IDENTITY_HEADER", vault.identity_header().to_owned()),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555".to_owned()),
        ("SECRETS_VAULT_ADDRESS", vault.address().to_string()),
        ("SECRETS_VAULT_CA_FILE", ca.display().to_string()),
    ]);
    let var = |name: &str| env.get(name).cloned();
    assert_eq!(meschain_secrets::credential::choose(var), Ok(CredentialKind::ManagedIdentity { user_assigned: true }));

    let secrets = settings::resolve(
        [
            ("AUTH_JWT_SECRET", "@Microsoft.KeyVault(VaultName=myvault;SecretName=jwt)"),
            ("COSMOS_KEY", "@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/cosmos-key/)"),
            ("SYNC_QUEUE_NAME", "marketplace-sync"),
        ],
        var,
    )
    .await
    .unwrap();
    assert_eq!(secrets.settings().collect::<Vec<_>>(), ["AUTH_JWT_SECRET", "COSMOS_KEY"]);
    assert_eq!(secrets.get("AUTH_JWT_SECRET").unwrap().current().expose(), "jwt-secret-value-0123456789abcdef");
    assert_eq!(secrets.get("COSMOS_KEY").unwrap().current().expose(), "cosmos-value");
    assert!(secrets.get("SYNC_QUEUE_NAME").is_none(), "literals are not vault secrets");

    let stats = vault.state().stats();
    assert_eq!(stats.tokens_issued, 1, "one token for both reads");
    assert_eq!(stats.identity_client_ids, ["11111111-2222-3333-4444-555555555555"]);

    // A missing secret stops start-up with the setting and the vault named.
    let e = settings::resolve(
        [("AzureSignalRConnectionString", "@Microsoft.KeyVault(VaultName=myvault;SecretName=nope)")],
        |n: &str| {
            if n == "SECRETS_REFRESH_SECONDS" { None } else { env.get(n).cloned() }
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("setting AzureSignalRConnectionString") && e.contains("vault `myvault`"), "{e}");
    let _ = std::fs::remove_file(ca);
    vault.stop().await;
}
