//! The process's TLS client setup, shared by every HTTP client the handler builds.
//!
//! reqwest's default TLS setup creates a `rustls_platform_verifier::Verifier` per client, and
//! that reads and parses every root certificate the system has (`/etc/ssl/certs`: the bundle,
//! then each file of the directory) when the client is *built*. The handler builds three at
//! start (SignalR REST calls, marketplace connectors, item sources), so it read them three times
//! before it could answer the host's first `GET /`: a third to a half of a 16-24 ms start, and
//! 630 KB of memory that stayed resident (`python3 bench/handler_probe.py startup`, alternating
//! builds with and without this crate, 2026-12-07).
//!
//! Here one verifier serves all clients and loads the roots the first time a certificate is
//! checked: that handshake takes a few milliseconds longer, once per process, and a handler
//! that makes no HTTPS call (locally) never reads them. Verification itself is the
//! platform verifier's, unchanged: the same roots (`SSL_CERT_FILE` and `SSL_CERT_DIR` are
//! honoured), the same WebPKI checks. If no root can be loaded, the handshake fails, saying so,
//! and the next one reads them again: roots installed or mounted later are picked up without a
//! restart.
//! The rest of the configuration is what reqwest would build: TLS 1.2 and 1.3, the process's
//! default crypto provider (aws-lc-rs when none is installed), SNI, and ALPN `h2` then
//! `http/1.1`.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// A reqwest client builder on the shared TLS configuration; use it instead of
/// `reqwest::Client::builder()`. A client that must trust an extra root (a test CA) keeps
/// reqwest's own setup, since an added root would change what every other client trusts.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(config().clone())
}

/// Whether the root certificates have been loaded (by a first handshake).
pub fn roots_loaded() -> bool {
    shared().platform.get().is_some()
}

fn config() -> &'static ClientConfig {
    static CONFIG: OnceLock<ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let verifier = shared();
        let mut config = ClientConfig::builder_with_provider(verifier.provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .expect("the provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    })
}

fn shared() -> &'static Arc<LazyPlatformVerifier> {
    static VERIFIER: OnceLock<Arc<LazyPlatformVerifier>> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        Arc::new(LazyPlatformVerifier { provider, platform: OnceLock::new() })
    })
}

/// The platform verifier, made on the first certificate to check. Signatures are checked with
/// the provider's algorithms, as the platform verifier checks them, without the roots.
#[derive(Debug)]
struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
    platform: OnceLock<Verifier>,
}

impl LazyPlatformVerifier {
    fn platform(&self) -> Result<&Verifier, rustls::Error> {
        if let Some(verifier) = self.platform.get() {
            return Ok(verifier);
        }
        // A failure is not kept (see the crate docs). Two first handshakes at once may both
        // read the roots; one result is kept.
        let verifier = Verifier::new(self.provider.clone())?;
        Ok(self.platform.get_or_init(|| verifier))
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.platform()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
