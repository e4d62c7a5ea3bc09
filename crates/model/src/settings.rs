//! The app settings' names (`local.settings.json` `Values` locally, App Settings in Azure).
//!
//! Values are never here: many are secrets, and each part parses and checks the ones it reads.
//! New settings (store, marketplaces, Key Vault, ...) are added here so the handler, the CLI
//! and the infrastructure agree on one spelling.

/// The SignalR instance (access key or `AuthType`); named by the SignalR Functions extension.
pub const SIGNALR_CONNECTION_STRING: &str = "AzureSignalRConnectionString";
/// The instance's other access key, accepted on upstream signatures during key rotation.
pub const SIGNALR_SECONDARY_CONNECTION_STRING: &str = "AzureSignalRSecondaryConnectionString";
/// Another instance REST calls fail over to.
pub const SIGNALR_FALLBACK_CONNECTION_STRING: &str = "AzureSignalRFallbackConnectionString";
/// The Service Bus connection the `serviceBus` bindings name (`"connection"` in function.json).
pub const SERVICE_BUS_CONNECTION: &str = "ServiceBusConnection";
/// HS256 secret of development and first-party login tokens.
pub const AUTH_JWT_SECRET: &str = "AUTH_JWT_SECRET";
pub const AUTH_JWKS_URL: &str = "AUTH_JWKS_URL";
pub const AUTH_OIDC_ISSUER: &str = "AUTH_OIDC_ISSUER";
pub const AUTH_ISSUER: &str = "AUTH_ISSUER";
pub const AUTH_AUDIENCE: &str = "AUTH_AUDIENCE";
pub const AUTH_TRUST_EASY_AUTH: &str = "AUTH_TRUST_EASY_AUTH";
pub const CORS_ALLOWED_ORIGINS: &str = "CORS_ALLOWED_ORIGINS";
pub const SIGNALR_TOKEN_LIFETIME_SECONDS: &str = "SIGNALR_TOKEN_LIFETIME_SECONDS";
/// Six-field NCRONTAB of `admin-broadcast` (`%ADMIN_BROADCAST_SCHEDULE%` in its function.json).
pub const ADMIN_BROADCAST_SCHEDULE: &str = "ADMIN_BROADCAST_SCHEDULE";
/// The queue sync requests travel on (`%SYNC_QUEUE_NAME%` in function.json).
pub const SYNC_QUEUE_NAME: &str = "SYNC_QUEUE_NAME";
/// Set by the Functions host: the port the custom handler listens on.
pub const CUSTOMHANDLER_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
