//! The fake vault and a client wired to it with every production check on: the fake's CA is
//! trusted and `*.vault.azure.net` is sent to its port; hostname, chain and challenge-resource
//! checks run as in Azure.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use meschain_fake_keyvault::{FakeVault, Options};
use meschain_secrets::credential::VaultCredential;
use meschain_secrets::vault::{KeyVault, VaultEndpointOverrides, VaultOptions, http_client};

pub const TOKEN: &str = "test-token";
pub const VAULT: &str = "myvault";

/// A credential that hands out a fixed token, and checks it is asked for the vault's scope.
#[derive(Debug)]
pub struct TestToken(pub &'static str);

#[async_trait::async_trait]
impl TokenCredential for TestToken {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://vault.azure.net/.default"], "the scope comes from the challenge");
        Ok(AccessToken::new(self.0, azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1)))
    }
}

pub async fn fake() -> FakeVault {
    FakeVault::start(Options { accepted_tokens: vec![TOKEN.into()], ..Options::default() }).await.unwrap()
}

pub fn overrides(vault: &FakeVault) -> VaultEndpointOverrides {
    VaultEndpointOverrides { address: Some(vault.address()), ca_pem: Some(vault.ca_pem().as_bytes().to_vec()) }
}

pub fn client(vault: &FakeVault, token: &'static str, timeout: Duration) -> KeyVault {
    let http = http_client(&overrides(vault), [format!("{VAULT}.vault.azure.net").as_str()]).unwrap();
    KeyVault::new(VaultCredential::supplied(Arc::new(TestToken(token))), http, VaultOptions { read_timeout: timeout })
}
