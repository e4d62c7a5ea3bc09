//! Settings from Azure Key Vault, kept fresh, with key rotation that fails no request.
//!
//! In Azure nothing secret should sit in app settings. A setting's value may be a literal or an
//! App Service Key Vault reference (`@Microsoft.KeyVault(...)`, [`reference`]); App Service
//! resolves references only at start and about once a day, and Core Tools never does, so this
//! crate reads them itself with the app's identity ([`credential`], [`vault`]), keeps them in
//! memory and re-reads them in the background ([`cache`]). A changed value rotates in
//! ([`rotation`]): new work uses it at once, while checks accept the old one until an overlap
//! ends. [`settings`] ties it together at start.
//!
//! Nothing here prints a secret: [`SecretValue`] and every type holding one redact `Debug`, and
//! errors name settings, vaults and secret names only.

pub mod cache;
pub mod credential;
pub mod reference;
pub mod rotation;
pub mod settings;
pub mod transport;
pub mod value;
pub mod vault;

pub use cache::{Derived, HealthStatus, SecretHandle, Secrets, SecretsHealth, Snapshot};
pub use reference::{SecretRef, SettingValue, parse_setting};
pub use rotation::Rotating;
pub use value::SecretValue;
