//! The Cosmos DB store (NoSQL API) through the official `azure_data_cosmos` crate.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::doc::{Precondition, Retention, Versioned};
use crate::event::{Event, EventKind};
use crate::settings::CosmosSettings;
use crate::{Store, StoreError, StoreKind};

pub struct CosmosStore {
    settings: CosmosSettings,
    ttl: Duration,
}

impl std::fmt::Debug for CosmosStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosStore").field("settings", &self.settings).finish()
    }
}

impl CosmosStore {
    pub async fn open(settings: &CosmosSettings, ttl: Duration) -> Result<Self, StoreError> {
        Ok(CosmosStore { settings: settings.clone(), ttl })
    }

    fn pending() -> StoreError {
        StoreError::unavailable("the Cosmos DB store is being implemented on branch store")
    }
}

#[async_trait]
impl Store for CosmosStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Cosmos
    }

    async fn get_doc(&self, _collection: &str, _id: &str) -> Result<Option<Versioned<Value>>, StoreError> {
        Err(Self::pending())
    }

    async fn put_doc_with(
        &self,
        _collection: &str,
        _id: &str,
        _value: &Value,
        _precondition: Precondition,
        _retention: Retention,
    ) -> Result<String, StoreError> {
        Err(Self::pending())
    }

    async fn delete_doc(&self, _collection: &str, _id: &str, _precondition: Precondition) -> Result<bool, StoreError> {
        Err(Self::pending())
    }

    async fn append_events(&self, _events: &[Event]) -> Result<(), StoreError> {
        Err(Self::pending())
    }

    async fn count_events(&self, _kind: Option<EventKind>, _since_ms: u64) -> Result<u64, StoreError> {
        Err(Self::pending())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(Self::pending())
    }

    fn analytics_ttl(&self) -> Duration {
        self.ttl
    }
}
