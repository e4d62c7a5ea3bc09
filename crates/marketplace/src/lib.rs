//! Marketplace sync: what `marketplace-sync` runs for each queued request.
//!
//! - [`request`]: the queued request, checked field by field (every problem reported at once)
//!   into a [`request::SyncPlan`].
//! - [`connector`]: the small trait a marketplace implements; [`trendyol`] and [`amazon`] (the
//!   documented seller APIs) and [`sandbox`] (a simulated marketplace, selected only explicitly) implement
//!   it, and [`selection`] chooses one from settings.
//! - [`rate_limit`]: per-endpoint limits and `Retry-After` pauses.
//! - [`items_source`]: inline items or an `itemsUrl` paged source, read one window at a time.
//! - [`engine`]: one delivery of a sync: lease, exactly-once batch claims, retries within a
//!   time budget, results, progress, continuation. [`run`] is its document, [`progress`] the
//!   messages watchers get; the dashboard's per-marketplace view is the store's
//!   (`meschain_store::status`, schema and writer together). State lives in the app's store
//!   (`meschain-store`): documents with etag preconditions.
//!
//! Nothing here knows about SignalR, Service Bus or the Functions host: the handler's
//! `marketplace-sync` function adapts those to [`engine::Reporter`] and [`engine::Outcome`].

pub mod amazon;
pub mod answered;
pub mod catalog;
pub mod connector;
pub mod ebay;
pub mod engine;
pub mod hepsiburada;
pub mod items_source;
pub mod n11;
pub mod net_guard;
pub mod ozon;
pub mod progress;
pub mod rate_limit;
pub mod request;
pub mod run;
pub mod sandbox;
pub mod selection;
pub mod trendyol;
