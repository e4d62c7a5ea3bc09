//! The Cosmos DB store (NoSQL API) through the official `azure_data_cosmos` crate.
//!
//! # Document design
//!
//! One container (`COSMOS_CONTAINER`, partition key path `/pk`, default TTL =
//! `ANALYTICS_TTL_SECONDS`) holds everything:
//!
//! | what | `pk` | `id` | TTL |
//! |---|---|---|---|
//! | a document of the document API | `<collection>/<id>` | `<id>` | none (`ttl: -1`), or the container default for [`Retention::Analytics`] |
//! | an analytics event | `ev/<YYYY-MM-DD>/<shard 0-15>` | writer prefix + sequence | container default |
//!
//! Every document is its own logical partition, so document writes spread over the whole
//! key space and every read is a point read (1 RU for a document under 1 KB). Events spread
//! over sixteen partitions per day, so a burst never lands on one hot partition, and a
//! day's events can still be counted with sixteen single-partition queries.
//!
//! Event ids are chosen by the writer before the first attempt, and writes are creates: a
//! batch retried after an unknown outcome gets 409 for the events already stored, which
//! counts as written, so retries never duplicate events.
//!
//! # Throttling
//!
//! The SDK retries a 429 itself a few times, waiting the service's `x-ms-retry-after-ms`;
//! past that the error surfaces as [`StoreError::Unavailable`] with `retry_after`, and the
//! recorder waits that long before its next attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{Secret, TokenCredential};
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::models::{ContainerProperties, IndexingMode, IndexingPolicy, TimeToLive};
use azure_data_cosmos::options::{
    ItemReadOptions, ItemWriteOptions, OperationOptionsBuilder, ThrottlingRetryOptionsBuilder,
};
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, CosmosClient, CosmosError, CosmosRuntime, FeedScope, Query, RoutingStrategy,
};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::doc::{Precondition, Retention, Versioned, check_name, doc_size_ok};
use crate::event::{Event, EventKind, prepare_batch};
use crate::settings::CosmosSettings;
use crate::{Store, StoreError, StoreKind};

/// Partitions per day for events.
pub const EVENT_SHARDS: u64 = 16;
/// Event creates in flight at once per batch.
const WRITE_CONCURRENCY: usize = 32;
/// Throttled attempts the SDK retries by itself before the error reaches the recorder.
const SDK_THROTTLE_RETRIES: u32 = 3;
/// The region the SDK routes to when the host does not say (Functions sets `REGION_NAME`).
const DEFAULT_REGION: &str = "westeurope";

pub struct CosmosStore {
    /// Replaced when the account key rotates ([`CosmosStore::use_key`]).
    container: std::sync::RwLock<ContainerClient>,
    settings: CosmosSettings,
    ttl: Duration,
    /// Distinguishes this writer's event ids from every other writer's.
    writer: String,
    sequence: AtomicU64,
}

impl std::fmt::Debug for CosmosStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosStore").field("settings", &self.settings).field("ttl", &self.ttl).finish()
    }
}

/// Microsoft Entra ID when no key is set: the managed identity where the host provides one
/// (App Service, Functions), else the developer's Azure CLI / azd login.
fn entra_credential() -> Result<Arc<dyn TokenCredential>, StoreError> {
    let fail = |e: azure_core::Error| StoreError::unavailable(format!("Microsoft Entra credential: {e}"));
    if ["IDENTITY_ENDPOINT", "MSI_ENDPOINT"].iter().any(|v| std::env::var_os(v).is_some()) {
        let options = azure_identity::ManagedIdentityCredentialOptions {
            user_assigned_id: std::env::var("AZURE_CLIENT_ID").ok().map(azure_identity::UserAssignedId::ClientId),
            ..Default::default()
        };
        Ok(azure_identity::ManagedIdentityCredential::new(Some(options)).map_err(fail)?)
    } else {
        Ok(azure_identity::DeveloperToolsCredential::new(None).map_err(fail)?)
    }
}

/// Index only what queries filter on (events are counted by partition, time and kind;
/// documents are only read by id): every indexed path adds to the RU cost of each write.
fn indexing_policy() -> IndexingPolicy {
    let mut policy = IndexingPolicy::default()
        .with_indexing_mode(IndexingMode::Consistent)
        .with_included_path("/pk/?")
        .with_included_path("/atMs/?")
        .with_included_path("/kind/?")
        .with_excluded_path("/*");
    policy.automatic = true;
    policy
}

/// What a Cosmos error means to a caller of the store.
fn map_error(e: CosmosError, collection: &str, id: &str) -> StoreError {
    let status = e.status();
    let code = u16::from(status.status_code());
    if status.is_precondition_failed() || status.is_conflict() {
        return StoreError::conflict(collection, id);
    }
    if status.is_throttled() {
        let retry_after = e.response().and_then(|r| r.headers().retry_after_ms).map(Duration::from_millis);
        return StoreError::Unavailable { reason: "Cosmos DB throttled the request (429)".into(), retry_after };
    }
    match code {
        400 | 413 => StoreError::Invalid(format!("Cosmos DB refused the request ({code}): {e}")),
        401 | 403 => StoreError::unavailable(format!("Cosmos DB refused the credentials ({code})")),
        _ => StoreError::unavailable(format!("Cosmos DB ({code}): {e}")),
    }
}

/// A client for the account, signing with `key`, or with Microsoft Entra ID when `None`.
/// `runtime`: the SDK's process-wide one when `None`.
async fn connect(
    settings: &CosmosSettings,
    key: Option<&str>,
    runtime: Option<CosmosRuntime>,
) -> Result<CosmosClient, StoreError> {
    let endpoint: AccountEndpoint =
        settings.endpoint.parse().map_err(|e| StoreError::Invalid(format!("COSMOS_ENDPOINT: {e}")))?;
    let account = match key {
        Some(key) => AccountReference::with_authentication_key(endpoint, Secret::new(key.to_owned())),
        None => AccountReference::with_credential(endpoint, entra_credential()?),
    };
    let region = std::env::var("REGION_NAME")
        .ok()
        .map(|r| r.to_ascii_lowercase().replace(' ', ""))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    let operation = OperationOptionsBuilder::new()
        .with_throttling_retry_options(
            ThrottlingRetryOptionsBuilder::new()
                .with_max_retry_count(SDK_THROTTLE_RETRIES)
                .with_max_retry_wait_time(Duration::from_secs(5))
                .build(),
        )
        .build();
    let mut builder = CosmosClient::builder().with_default_operation_options(operation);
    if let Some(runtime) = runtime {
        builder = builder.with_runtime(runtime);
    }
    builder
        .build(account, RoutingStrategy::ProximityTo(region.into()))
        .await
        .map_err(|e| StoreError::unavailable(format!("cannot reach Cosmos DB: {e}")))
}

async fn container_of(client: &CosmosClient, settings: &CosmosSettings) -> Result<ContainerClient, StoreError> {
    client
        .database_client(settings.database.as_str())
        .container_client(settings.container.as_str(), None)
        .await
        .map_err(|e| map_error(e, "container", &settings.container))
}

impl CosmosStore {
    /// The container client of the current key; cheap to clone.
    fn container(&self) -> ContainerClient {
        self.container.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Signs every request from now on with `key`: Cosmos DB has two account keys so that one
    /// can be regenerated while apps use the other, and a rotated key reaches this process
    /// through Key Vault without a restart. Requests in flight finish with the previous key.
    /// On an error the previous key stays in use.
    pub async fn use_key(&self, key: &str) -> Result<(), StoreError> {
        // A runtime of its own: the SDK's runtime caches container references, and with them
        // the account key they were first made with, per endpoint.
        let runtime = CosmosRuntime::builder()
            .build()
            .await
            .map_err(|e| StoreError::unavailable(format!("Cosmos DB runtime: {e}")))?;
        let client = connect(&self.settings, Some(key), Some(runtime)).await?;
        let container = container_of(&client, &self.settings).await?;
        *self.container.write().unwrap_or_else(|p| p.into_inner()) = container;
        Ok(())
    }
    /// Connects, and creates the database and container first when `create_if_missing`.
    pub async fn open(settings: &CosmosSettings, ttl: Duration) -> Result<Self, StoreError> {
        let client = connect(settings, settings.key.as_deref(), None).await?;
        let database = client.database_client(settings.database.as_str());
        if settings.create_if_missing {
            match client.create_database(&settings.database, None).await {
                Ok(_) => tracing::info!(database = %settings.database, "store: created Cosmos DB database"),
                Err(e) if e.status().is_conflict() => {}
                Err(e) => return Err(map_error(e, "database", &settings.database)),
            }
            let ttl_seconds = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
            let properties = ContainerProperties::new(settings.container.clone(), "/pk".into())
                .with_default_ttl(TimeToLive::Seconds(ttl_seconds))
                .with_indexing_policy(indexing_policy());
            match database.create_container(properties, None).await {
                Ok(_) => tracing::info!(container = %settings.container, "store: created Cosmos DB container"),
                Err(e) if e.status().is_conflict() => {}
                Err(e) => return Err(map_error(e, "container", &settings.container)),
            }
        }
        let container = container_of(&client, settings).await?;
        let store = CosmosStore {
            container: std::sync::RwLock::new(container),
            settings: settings.clone(),
            ttl,
            writer: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            sequence: AtomicU64::new(0),
        };
        match store.default_ttl().await? {
            Some(s) if u64::from(s) == ttl.as_secs() => {}
            other => tracing::warn!(
                container_default_ttl = ?other,
                wanted = ttl.as_secs(),
                "store: the container's default TTL differs from ANALYTICS_TTL_SECONDS; events expire by the container's"
            ),
        }
        Ok(store)
    }

    /// The container's default TTL in seconds (`None`: TTL off or no default).
    pub async fn default_ttl(&self) -> Result<Option<u32>, StoreError> {
        let props: ContainerProperties = self
            .container()
            .read(None)
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| map_error(e, "container", &self.settings.container))?;
        Ok(match props.default_ttl {
            TimeToLive::Seconds(s) => Some(s),
            _ => None,
        })
    }

    fn doc_pk(collection: &str, id: &str) -> String {
        format!("{collection}/{id}")
    }

    fn event_pk(at_ms: u64, shard: u64) -> String {
        format!("ev/{}/{shard}", crate::counters::day_id(at_ms).trim_start_matches("day-"))
    }

    fn etag_of(resp: &azure_data_cosmos::models::ItemResponse) -> Result<String, StoreError> {
        resp.headers()
            .etag()
            .map(|e| e.as_ref().to_string())
            .ok_or_else(|| StoreError::unavailable("Cosmos DB answered without an etag"))
    }
}

#[async_trait]
impl Store for CosmosStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Cosmos
    }

    async fn get_doc(&self, collection: &str, id: &str) -> Result<Option<Versioned<Value>>, StoreError> {
        check_name("collection", collection)?;
        check_name("id", id)?;
        let resp = match self.container().read_item(Self::doc_pk(collection, id), id, None::<ItemReadOptions>).await {
            Ok(resp) => resp,
            Err(e) if e.status().is_not_found() => return Ok(None),
            Err(e) => return Err(map_error(e, collection, id)),
        };
        let etag = Self::etag_of(&resp)?;
        let mut item: Value = resp.into_model().map_err(|e| map_error(e, collection, id))?;
        let value = item.get_mut("v").map(Value::take).ok_or_else(|| {
            StoreError::Invalid(format!("{collection}/{id} is not a document of this store (no \"v\")"))
        })?;
        Ok(Some(Versioned { value, etag }))
    }

    async fn put_doc_with(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        precondition: Precondition,
        retention: Retention,
    ) -> Result<String, StoreError> {
        check_name("collection", collection)?;
        check_name("id", id)?;
        doc_size_ok(value)?;
        let pk = Self::doc_pk(collection, id);
        let mut item = json!({ "id": id, "pk": pk, "c": collection, "v": value });
        if retention == Retention::Keep {
            item["ttl"] = json!(-1);
        }
        let result = match precondition {
            Precondition::Any => self.container().upsert_item(pk, id, &item, None).await,
            Precondition::Absent => self.container().create_item(pk, id, &item, None).await,
            Precondition::Etag(etag) => {
                let options = ItemWriteOptions::default()
                    .with_precondition(azure_data_cosmos::options::Precondition::if_match(etag));
                match self.container().replace_item(pk, id, &item, Some(options)).await {
                    // Deleted since it was read: the etag no longer matches anything.
                    Err(e) if e.status().is_not_found() => return Err(StoreError::conflict(collection, id)),
                    other => other,
                }
            }
        };
        let resp = result.map_err(|e| map_error(e, collection, id))?;
        Self::etag_of(&resp)
    }

    async fn delete_doc(&self, collection: &str, id: &str, precondition: Precondition) -> Result<bool, StoreError> {
        check_name("collection", collection)?;
        check_name("id", id)?;
        let options = match precondition {
            Precondition::Any => None,
            Precondition::Etag(etag) => Some(
                ItemWriteOptions::default().with_precondition(azure_data_cosmos::options::Precondition::if_match(etag)),
            ),
            Precondition::Absent => {
                return Err(StoreError::Invalid("a delete cannot require the document to be absent".into()));
            }
        };
        let conditional = options.is_some();
        match self.container().delete_item(Self::doc_pk(collection, id), id, options).await {
            Ok(_) => Ok(true),
            Err(e) if e.status().is_not_found() && conditional => Err(StoreError::conflict(collection, id)),
            Err(e) if e.status().is_not_found() => Ok(false),
            Err(e) => Err(map_error(e, collection, id)),
        }
    }

    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let items = prepare_batch(events, |event| {
            let n = self.sequence.fetch_add(1, Ordering::Relaxed);
            let id = event.id.clone().unwrap_or_else(|| format!("{}-{n}", self.writer));
            // The shard follows from the id, so a retried event lands where its first attempt did.
            let shard =
                u64::from_le_bytes(Sha256::digest(id.as_bytes())[..8].try_into().expect("8 bytes")) % EVENT_SHARDS;
            let pk = Self::event_pk(event.at_ms, shard);
            let mut item = serde_json::to_value(event).map_err(|e| StoreError::Invalid(format!("event: {e}")))?;
            item["id"] = json!(id);
            item["pk"] = json!(pk);
            item["c"] = json!("event");
            Ok::<_, StoreError>((pk, id, item))
        })
        .await?;
        let container = &self.container();
        let writes = items.into_iter().map(|(pk, id, item)| async move {
            match container.create_item(pk, &id, &item, None).await {
                Ok(_) => Ok(()),
                // Written by an earlier attempt whose answer was lost.
                Err(e) if e.status().is_conflict() => Ok(()),
                Err(e) => Err(map_error(e, "events", &id)),
            }
        });
        let results: Vec<Result<(), StoreError>> =
            futures_util::stream::iter(writes).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        // The most telling error: a throttle (with its retry-after) over anything else.
        let mut worst = None;
        for r in results {
            if let Err(e) = r {
                let throttled = matches!(e, StoreError::Unavailable { retry_after: Some(_), .. });
                if worst.is_none() || throttled {
                    worst = Some(e);
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }

    async fn count_events(&self, kind: Option<EventKind>, since_ms: u64) -> Result<u64, StoreError> {
        let now = meschain_model::clock::now_ms();
        // Nothing older than the TTL is kept, so no partition before it needs asking.
        let since_ms = since_ms.max(now.saturating_sub(self.ttl.as_millis() as u64));
        let mut total = 0;
        let mut day_start = since_ms - since_ms % 86_400_000;
        while day_start <= now {
            for shard in 0..EVENT_SHARDS {
                let pk = Self::event_pk(day_start, shard);
                let mut text = "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.atMs >= @since".to_string();
                if kind.is_some() {
                    text.push_str(" AND c.kind = @kind");
                }
                let mut query = Query::from(text)
                    .with_parameter("@pk", &pk)
                    .and_then(|q| q.with_parameter("@since", since_ms))
                    .map_err(|e| StoreError::Invalid(format!("query: {e}")))?;
                if let Some(k) = kind {
                    query = query
                        .with_parameter("@kind", k.as_str())
                        .map_err(|e| StoreError::Invalid(format!("query: {e}")))?;
                }
                let counts: Vec<u64> = self
                    .container()
                    .query_items::<u64>(query, FeedScope::partition(pk.clone()), None)
                    .await
                    .map_err(|e| map_error(e, "events", "count"))?
                    .try_collect()
                    .await
                    .map_err(|e| map_error(e, "events", "count"))?;
                total += counts.iter().sum::<u64>();
            }
            day_start += 86_400_000;
        }
        Ok(total)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.default_ttl().await.map(drop)
    }

    fn analytics_ttl(&self) -> Duration {
        self.ttl
    }
}
