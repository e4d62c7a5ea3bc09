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
/// How often Key Vault secrets are re-read, in seconds (`meschain-secrets`).
pub const SECRETS_REFRESH_SECONDS: &str = "SECRETS_REFRESH_SECONDS";
/// How long a rotated-out secret stays accepted, in seconds (`meschain-secrets`).
pub const SECRETS_OVERLAP_SECONDS: &str = "SECRETS_OVERLAP_SECONDS";
/// Forces the identity that reads Key Vault (`managed-identity`, `workload-identity`, `client-secret`, `developer`).
pub const SECRETS_CREDENTIAL: &str = "SECRETS_CREDENTIAL";
/// Local testing only: the `ip:port` every vault host is sent to.
pub const SECRETS_VAULT_ADDRESS: &str = "SECRETS_VAULT_ADDRESS";
/// Local testing only: one more trusted root (PEM file) for vault connections.
pub const SECRETS_VAULT_CA_FILE: &str = "SECRETS_VAULT_CA_FILE";

// The store (crates/store): embedded by default, Cosmos DB when `COSMOS_ENDPOINT` is set.
/// Folder of the embedded store (`meschain dev` sets its own).
pub const MESCHAIN_DATA_DIR: &str = "MESCHAIN_DATA_DIR";
pub const COSMOS_ENDPOINT: &str = "COSMOS_ENDPOINT";
/// Account key; unset: Microsoft Entra ID.
pub const COSMOS_KEY: &str = "COSMOS_KEY";
pub const COSMOS_DATABASE: &str = "COSMOS_DATABASE";
pub const COSMOS_CONTAINER: &str = "COSMOS_CONTAINER";
pub const COSMOS_CREATE_IF_MISSING: &str = "COSMOS_CREATE_IF_MISSING";
pub const ANALYTICS_TTL_SECONDS: &str = "ANALYTICS_TTL_SECONDS";
pub const ANALYTICS_BUFFER: &str = "ANALYTICS_BUFFER";
pub const ANALYTICS_ENABLED: &str = "ANALYTICS_ENABLED";
/// Currency of the dashboard's revenue figures (ISO 4217, default TRY).
pub const DASHBOARD_CURRENCY: &str = "DASHBOARD_CURRENCY";
/// The dashboard's OpenID Connect client id; with `AUTH_OIDC_ISSUER`, `meschain dev` offers that
/// sign-in in the page's config.json (deployments write config.json themselves).
pub const WEB_OIDC_CLIENT_ID: &str = "WEB_OIDC_CLIENT_ID";
/// Scopes the dashboard asks for (default `openid profile`).
pub const WEB_OIDC_SCOPE: &str = "WEB_OIDC_SCOPE";
/// RFC 8707 resource the dashboard asks a token for (providers that use resource indicators).
pub const WEB_OIDC_RESOURCE: &str = "WEB_OIDC_RESOURCE";

// Marketplace sync (`marketplace-sync`); the connectors' own settings are documented in
// `crates/marketplace/README.md`.
/// Marketplaces served by the sandbox connector (comma-separated, or `*`); empty in Azure.
pub const MARKETPLACE_SANDBOX: &str = "MARKETPLACE_SANDBOX";
pub const TRENDYOL_BASE_URL: &str = "TRENDYOL_BASE_URL";
pub const TRENDYOL_SELLER_ID: &str = "TRENDYOL_SELLER_ID";
pub const TRENDYOL_API_KEY: &str = "TRENDYOL_API_KEY";
pub const TRENDYOL_API_SECRET: &str = "TRENDYOL_API_SECRET";
pub const TRENDYOL_INTEGRATOR: &str = "TRENDYOL_INTEGRATOR";
pub const TRENDYOL_RATE_LIMIT: &str = "TRENDYOL_RATE_LIMIT";
pub const TRENDYOL_CONCURRENCY: &str = "TRENDYOL_CONCURRENCY";
/// Seconds one `marketplace-sync` delivery works before it continues in a new message
/// (keep it below `functionTimeout`); default 240.
pub const SYNC_TIME_BUDGET_SECONDS: &str = "SYNC_TIME_BUDGET_SECONDS";
/// Seconds a sync's lease lasts without a write (how long a redelivery waits for a dead
/// owner); default 120.
pub const SYNC_LEASE_SECONDS: &str = "SYNC_LEASE_SECONDS";

// The store's catalogue (OpenCart's MySQL database), the source of stock and price syncs whose
// request carries no items; documented in `crates/marketplace/README.md`.
/// `mysql://user:password@host:3306/database` (a read-only user); a Key Vault reference in
/// Azure. Empty: no catalogue (stock and price syncs then need items in the request).
pub const CATALOG_MYSQL_URL: &str = "CATALOG_MYSQL_URL";
/// OpenCart's table prefix (default `oc_`).
pub const CATALOG_TABLE_PREFIX: &str = "CATALOG_TABLE_PREFIX";
/// The `oc_product` column used as the barcode: `ean` (default), `upc`, `jan`, `isbn`, `mpn`,
/// `sku` or `model`.
pub const CATALOG_BARCODE_COLUMN: &str = "CATALOG_BARCODE_COLUMN";
/// The customer group whose specials give the sale price (default: the store's default group).
pub const CATALOG_CUSTOMER_GROUP_ID: &str = "CATALOG_CUSTOMER_GROUP_ID";
/// OpenCart's time zone as an offset (default `+00:00`).
pub const CATALOG_TIME_ZONE: &str = "CATALOG_TIME_ZONE";
/// Local testing, or a private CA: one more trusted root (PEM) for the database's TLS.
pub const CATALOG_MYSQL_CA_FILE: &str = "CATALOG_MYSQL_CA_FILE";
/// Six-field NCRONTAB of the `catalog-sync` timer, which enqueues a changed-items sync per
/// configured marketplace; the timer is off unless `AzureWebJobs.catalog-sync.Disabled` is
/// `false`.
pub const CATALOG_SYNC_SCHEDULE: &str = "CATALOG_SYNC_SCHEDULE";
/// Marketplaces the `catalog-sync` timer syncs (comma-separated; default: every marketplace
/// whose connector is configured).
pub const CATALOG_SYNC_MARKETPLACES: &str = "CATALOG_SYNC_MARKETPLACES";

// Where `itemsUrl` sources may be fetched from.
/// Comma-separated host names an `itemsUrl` may name (exact, or `*.example.com`); empty: none.
pub const ITEMS_URL_ALLOWED_HOSTS: &str = "ITEMS_URL_ALLOWED_HOSTS";
/// Set by `meschain dev` only: loopback `itemsUrl` sources are allowed.
pub const ITEMS_URL_ALLOW_LOOPBACK: &str = "ITEMS_URL_ALLOW_LOOPBACK";
