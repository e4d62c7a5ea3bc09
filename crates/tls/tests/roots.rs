//! The shared configuration against real TLS servers (the fake Key Vault: a CA of its own per
//! start): roots come from the platform's sources (`SSL_CERT_FILE`, `SSL_CERT_DIR`), only when
//! a certificate is first checked, and a server signed by a CA not among them is refused.
//! One test in its own binary: the roots are loaded once per process.

use meschain_fake_keyvault::{FakeVault, Options};

#[test]
fn test_roots_load_on_first_handshake_and_verify() {
    let dir = std::env::temp_dir().join(format!("meschain-tls-test-{}", std::process::id()));
    let empty = dir.join("certs");
    std::fs::create_dir_all(&empty).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let trusted = runtime.block_on(FakeVault::start(Options::default())).unwrap();
    let stranger = runtime.block_on(FakeVault::start(Options::default())).unwrap();
    let bundle = dir.join("roots.pem");
    std::fs::write(&bundle, trusted.ca_pem()).unwrap();
    // SAFETY: set before any other thread of this process reads the environment (the runtime
    // is single-threaded and idle; the roots have not been loaded).
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &bundle);
        std::env::set_var("SSL_CERT_DIR", &empty);
    }

    let host = "myvault.vault.azure.net";
    let client = |vault: &FakeVault| meschain_tls::client_builder().resolve(host, vault.address()).build().unwrap();
    let (to_trusted, to_stranger) = (client(&trusted), client(&stranger));
    assert!(!meschain_tls::roots_loaded(), "building clients loads no roots");

    runtime.block_on(async {
        let url = format!("{}/secrets/x?api-version=2025-07-01", trusted.vault_url("myvault"));
        // The vault's challenge (401) means the handshake went through.
        let answer = to_trusted.get(&url).send().await.expect("the trusted CA's server is accepted");
        assert_eq!(answer.status(), 401);
        assert!(meschain_tls::roots_loaded());

        let err = to_stranger.get(&url).send().await.expect_err("a CA not among the roots is refused");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        // Both fakes name their CA alike, so the one among the roots is found and its signature fails.
        assert!(chain.contains("invalid peer certificate"), "{chain}");
    });
    runtime.block_on(async {
        trusted.stop().await;
        stranger.stop().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
