//! Garbage where the roots should be: the handshake fails with an error that says so, nothing
//! panics, and once a readable root is in place the next handshake loads it, without a restart.
//! Its own test binary: the roots are process-wide.

use meschain_fake_keyvault::{FakeVault, Options};

#[test]
fn test_unreadable_roots_fail_the_handshake_until_they_are_fixed() {
    let dir = std::env::temp_dir().join(format!("meschain-tls-garbage-{}", std::process::id()));
    let empty = dir.join("certs");
    std::fs::create_dir_all(&empty).unwrap();
    let bundle = dir.join("roots.pem");
    std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n\0\u{1}")
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let vault = runtime.block_on(FakeVault::start(Options::default())).unwrap();
    // SAFETY: set before any other thread of this process reads the environment (the runtime
    // is single-threaded and idle; the roots have not been loaded).
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &bundle);
        std::env::set_var("SSL_CERT_DIR", &empty);
    }
    let client = meschain_tls::client_builder().resolve("myvault.vault.azure.net", vault.address()).build().unwrap();
    let url = format!("{}/secrets/x?api-version=2025-07-01", vault.vault_url("myvault"));

    runtime.block_on(async {
        let err = client.get(&url).send().await.expect_err("no usable root: the handshake fails");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("No CA certificates were loaded"), "{chain}");
        assert!(!meschain_tls::roots_loaded());

        std::fs::write(&bundle, vault.ca_pem()).unwrap();
        let answer = client.get(&url).send().await.expect("the fixed roots are read on the next handshake");
        assert_eq!(answer.status(), 401);
        assert!(meschain_tls::roots_loaded());
        vault.stop().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
