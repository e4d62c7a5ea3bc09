//! The Azure SignalR Service wire protocol in serverless mode, shared by the deployed
//! `handler` (which mints tokens, calls the REST API and validates upstream calls) and the
//! local stand-in for the service in `meschain` (which checks tokens and signs upstream calls).
//!
//! Everything here is pure: no I/O, no clocks (callers pass `now`), so every rule of the
//! service's contract (https://learn.microsoft.com/azure/azure-signalr/, https://github.com/Azure/azure-signalr)
//! can be unit-tested to the byte.
//!
//! Layout:
//! - [`connection_string`]: parsing and the URLs/audiences derived from it (§A).
//! - [`token`]: client and REST access tokens, minted and validated (§B, §C.4, §D.1).
//! - [`audience`]: the lenient audience comparisons the service applies (§B.3, §D.1).
//! - [`upstream`]: `X-ASRS-Signature` and `X-ASRS-User-Claims` (§E.2, §E.3).
//! - [`hub_protocol`]: JSON and MessagePack hub messages and their framing (§C.5).
//! - [`rest`]: the data-plane REST API calls and their token audiences (§D).

use std::fmt;

pub mod audience;
pub mod connection_string;
pub mod hub_protocol;
pub mod rest;
pub mod token;
pub mod upstream;

pub use connection_string::ConnectionString;

/// An access key of a SignalR instance. The key string's UTF-8 bytes are the HMAC key
/// (it is not base64-decoded, as in the SDK's `AccessKey`: https://github.com/Azure/azure-signalr). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey(String);

impl AccessKey {
    pub fn new(key: impl Into<String>) -> Self {
        AccessKey(key.into())
    }

    /// The secret itself: only for HMAC and for printing a connection string the user asked for.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessKey(<redacted>)")
    }
}
