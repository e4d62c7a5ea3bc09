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
/// Ozon Seller API (`crates/marketplace/src/ozon.rs`): `Client-Id` and `Api-Key` headers.
pub const OZON_BASE_URL: &str = "OZON_BASE_URL";
pub const OZON_CLIENT_ID: &str = "OZON_CLIENT_ID";
pub const OZON_API_KEY: &str = "OZON_API_KEY";
/// The FBS warehouse whose stock the sync sets (from Ozon's `/v1/warehouse/list`).
pub const OZON_WAREHOUSE_ID: &str = "OZON_WAREHOUSE_ID";
/// The account's currency, sent with every price (Ozon refuses any other); default `RUB`.
pub const OZON_CURRENCY: &str = "OZON_CURRENCY";
/// eBay Sell APIs (`crates/marketplace/src/ebay.rs`): OAuth refresh-token grant.
pub const EBAY_BASE_URL: &str = "EBAY_BASE_URL";
pub const EBAY_CLIENT_ID: &str = "EBAY_CLIENT_ID";
pub const EBAY_CLIENT_SECRET: &str = "EBAY_CLIENT_SECRET";
pub const EBAY_REFRESH_TOKEN: &str = "EBAY_REFRESH_TOKEN";
/// The eBay marketplace of the offers (`EBAY_US`, `EBAY_DE`, ...); default `EBAY_US`.
pub const EBAY_MARKETPLACE_ID: &str = "EBAY_MARKETPLACE_ID";
/// Currency of prices sent to eBay; default `USD`.
pub const EBAY_CURRENCY: &str = "EBAY_CURRENCY";
/// Inventory items per bulkUpdatePriceQuantity call, 1-25; default 25 (see the connector).
pub const EBAY_SKUS_PER_CALL: &str = "EBAY_SKUS_PER_CALL";
/// Hepsiburada: listing host (stock/price uploads), default `https://listing-external.hepsiburada.com`.
pub const HEPSIBURADA_BASE_URL: &str = "HEPSIBURADA_BASE_URL";
/// Hepsiburada: order host (OMS), default `https://oms-external.hepsiburada.com`.
pub const HEPSIBURADA_ORDERS_BASE_URL: &str = "HEPSIBURADA_ORDERS_BASE_URL";
/// Hepsiburada: the merchant id (a GUID), the Basic auth user name.
pub const HEPSIBURADA_MERCHANT_ID: &str = "HEPSIBURADA_MERCHANT_ID";
/// Hepsiburada: the 12-character service key ("Servis Anahtarı"), the Basic auth password. Secret.
pub const HEPSIBURADA_SERVICE_KEY: &str = "HEPSIBURADA_SERVICE_KEY";
/// Hepsiburada: the integrator user name sent as `User-Agent`.
pub const HEPSIBURADA_INTEGRATOR: &str = "HEPSIBURADA_INTEGRATOR";
/// Hepsiburada: listing requests `N/SECONDS` (default 100/1, the documented catalog limit).
pub const HEPSIBURADA_RATE_LIMIT: &str = "HEPSIBURADA_RATE_LIMIT";
pub const HEPSIBURADA_CONCURRENCY: &str = "HEPSIBURADA_CONCURRENCY";
/// N11: REST host, default `https://api.n11.com`.
pub const N11_BASE_URL: &str = "N11_BASE_URL";
/// N11: the `appkey` header. Secret.
pub const N11_APP_KEY: &str = "N11_APP_KEY";
/// N11: the `appsecret` header. Secret.
pub const N11_APP_SECRET: &str = "N11_APP_SECRET";
/// N11: the `integrator` name sent with every product task (same value on every call).
pub const N11_INTEGRATOR: &str = "N11_INTEGRATOR";
/// N11: product-task requests `N/SECONDS` (undocumented; default 10/1, learned down from 429s).
pub const N11_RATE_LIMIT: &str = "N11_RATE_LIMIT";
pub const N11_CONCURRENCY: &str = "N11_CONCURRENCY";
/// Seconds one `marketplace-sync` delivery works before it continues in a new message
/// (keep it below `functionTimeout`); default 240.
pub const SYNC_TIME_BUDGET_SECONDS: &str = "SYNC_TIME_BUDGET_SECONDS";
/// Seconds a sync's lease lasts without a write (how long a redelivery waits for a dead
/// owner); default 120.
pub const SYNC_LEASE_SECONDS: &str = "SYNC_LEASE_SECONDS";

// Amazon SP-API (`crates/marketplace/src/amazon.rs`). Secrets: the LWA client secret and the
// refresh token (Key Vault references in Azure).
/// The SP-API regional host (default the EU host, which serves Turkey and Germany).
pub const AMAZON_BASE_URL: &str = "AMAZON_BASE_URL";
/// The Login with Amazon token endpoint (default `https://api.amazon.com/auth/o2/token`).
pub const AMAZON_TOKEN_URL: &str = "AMAZON_TOKEN_URL";
/// The LWA client id of the developer application.
pub const AMAZON_CLIENT_ID: &str = "AMAZON_CLIENT_ID";
/// The LWA client secret (secret).
pub const AMAZON_CLIENT_SECRET: &str = "AMAZON_CLIENT_SECRET";
/// The seller's LWA refresh token, `Atzr|…` (secret).
pub const AMAZON_REFRESH_TOKEN: &str = "AMAZON_REFRESH_TOKEN";
/// The merchant token (selling partner id) the listings belong to.
pub const AMAZON_SELLER_ID: &str = "AMAZON_SELLER_ID";
/// The marketplace id (Turkey `A33AVAJ2PDY3EV`, Germany `A1PA6795UKMFR9`, ...).
pub const AMAZON_MARKETPLACE_ID: &str = "AMAZON_MARKETPLACE_ID";
/// Currency of `our_price` (default: the marketplace's own, when known).
pub const AMAZON_CURRENCY: &str = "AMAZON_CURRENCY";
/// The listings' product type in feed messages (default `PRODUCT`).
pub const AMAZON_PRODUCT_TYPE: &str = "AMAZON_PRODUCT_TYPE";
/// Messages per JSON_LISTINGS_FEED, 1-25,000 (default 10,000).
pub const AMAZON_FEED_MESSAGES: &str = "AMAZON_FEED_MESSAGES";
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
