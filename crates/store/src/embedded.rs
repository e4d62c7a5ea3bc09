//! The embedded store: SQLite (bundled, so no system library) in the data folder.
//!
//! Why SQLite rather than redb: several processes must share one store (two handler
//! instances, `meschain dev` and a tool); SQLite's WAL mode allows concurrent readers and
//! serialised writers across processes with a busy timeout, while redb locks its file to one
//! process. SQLite also gives the TTL purge and the conditional writes as one SQL statement
//! each, and is the most deployed embedded database there is.
//!
//! Durability: WAL with `synchronous=NORMAL`: a committed write survives the process being
//! killed; the last transactions may be lost on power failure (acceptable for analytics, and
//! shared state is re-derived by its writers). Calls run on Tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use crate::doc::{Precondition, Retention, Versioned, check_name, doc_size_ok};
use crate::event::{Event, EventKind, prepare_batch};
use crate::{Store, StoreError, StoreKind};
use meschain_model::clock::now_ms;

/// The database file inside the data folder.
pub const FILE_NAME: &str = "store.sqlite3";
/// How long a writer waits for another process's write lock before reporting the store busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often expired events and documents are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    value TEXT NOT NULL,
    etag TEXT NOT NULL,
    expires_ms INTEGER,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at_ms);
";

pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    ttl: Duration,
    last_purge_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).field("ttl", &self.ttl).finish()
    }
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable { reason: "embedded store busy".into(), retry_after: None }
        }
        _ => StoreError::unavailable(format!("embedded store: {e}")),
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub async fn open(data_dir: &Path, ttl: Duration) -> Result<Self, StoreError> {
        let dir = data_dir.to_path_buf();
        let path = dir.join(FILE_NAME);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::unavailable(format!("cannot create data folder {}: {e}", dir.display())))?;
            let conn = Connection::open(&p).map_err(sql_error)?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
            conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_error)?;
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_error)?;
            conn.execute_batch(SCHEMA).map_err(sql_error)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("embedded store task failed: {e}")))??;
        let store = EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            ttl,
            last_purge_ms: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        store.purge_expired(now_ms()).await?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes events older than the TTL and expired documents (as of `now_ms`); returns how
    /// many rows went. Runs by itself every few minutes as events are appended.
    pub async fn purge_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.last_purge_ms.store(now_ms, std::sync::atomic::Ordering::Relaxed);
        let cutoff = now_ms.saturating_sub(self.ttl.as_millis() as u64) as i64;
        self.with_conn(move |c| {
            let events = c.execute("DELETE FROM events WHERE at_ms < ?1", params![cutoff])?;
            let docs =
                c.execute("DELETE FROM docs WHERE expires_ms IS NOT NULL AND expires_ms < ?1", params![now_ms as i64])?;
            Ok((events + docs) as u64)
        })
        .await
    }

    async fn with_conn<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.with_conn_store(move |c| f(c).map_err(sql_error)).await
    }

    async fn with_conn_store<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("embedded store task failed: {e}")))?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Embedded
    }

    async fn get_doc(&self, collection: &str, id: &str) -> Result<Option<Versioned<Value>>, StoreError> {
        check_name("collection", collection)?;
        check_name("id", id)?;
        let (collection, id) = (collection.to_string(), id.to_string());
        let row = self
            .with_conn(move |c| {
                c.prepare_cached(
                    "SELECT value, etag FROM docs WHERE collection = ?1 AND id = ?2 AND (expires_ms IS NULL OR expires_ms >= ?3)",
                )?
                .query_row(params![collection, id, now_ms() as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .optional()
            })
            .await?;
        match row {
            None => Ok(None),
            Some((value, etag)) => {
                let value = serde_json::from_str(&value)
                    .map_err(|e| StoreError::Invalid(format!("stored document is not JSON: {e}")))?;
                Ok(Some(Versioned { value, etag }))
            }
        }
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
        let body = String::from_utf8(doc_size_ok(value)?).expect("serde_json writes UTF-8");
        let expires = match retention {
            Retention::Keep => None,
            Retention::Analytics => Some((now_ms() + self.ttl.as_millis() as u64) as i64),
        };
        let (collection, id) = (collection.to_string(), id.to_string());
        let etag = uuid::Uuid::new_v4().simple().to_string();
        let new_etag = etag.clone();
        self.with_conn_store(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error)?;
            let now = now_ms() as i64;
            let current: Option<String> = tx
                .prepare_cached(
                    "SELECT etag FROM docs WHERE collection = ?1 AND id = ?2 AND (expires_ms IS NULL OR expires_ms >= ?3)",
                )
                .and_then(|mut s| s.query_row(params![collection, id, now], |r| r.get(0)).optional())
                .map_err(sql_error)?;
            let allowed = match (&precondition, &current) {
                (Precondition::Any, _) => true,
                (Precondition::Absent, current) => current.is_none(),
                (Precondition::Etag(want), Some(have)) => want == have,
                (Precondition::Etag(_), None) => false,
            };
            if !allowed {
                return Err(StoreError::conflict(&collection, &id));
            }
            tx.prepare_cached(
                "INSERT INTO docs (collection, id, value, etag, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (collection, id) DO UPDATE SET value = excluded.value, etag = excluded.etag, expires_ms = excluded.expires_ms",
            )
            .and_then(|mut s| s.execute(params![collection, id, body, new_etag, expires]))
            .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            Ok(())
        })
        .await?;
        Ok(etag)
    }

    async fn delete_doc(&self, collection: &str, id: &str, precondition: Precondition) -> Result<bool, StoreError> {
        check_name("collection", collection)?;
        check_name("id", id)?;
        let (collection, id) = (collection.to_string(), id.to_string());
        self.with_conn_store(move |c| {
            let deleted = match &precondition {
                Precondition::Any => c
                    .execute("DELETE FROM docs WHERE collection = ?1 AND id = ?2", params![collection, id])
                    .map_err(sql_error)?,
                Precondition::Etag(etag) => {
                    let n = c
                        .execute(
                            "DELETE FROM docs WHERE collection = ?1 AND id = ?2 AND etag = ?3",
                            params![collection, id, etag],
                        )
                        .map_err(sql_error)?;
                    if n == 0 {
                        return Err(StoreError::conflict(&collection, &id));
                    }
                    n
                }
                Precondition::Absent => {
                    return Err(StoreError::Invalid("a delete cannot require the document to be absent".into()));
                }
            };
            Ok(deleted > 0)
        })
        .await
    }

    async fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<(i64, &'static str, String)> = prepare_batch(events, |e| {
            let body = serde_json::to_string(e).map_err(|e| StoreError::Invalid(format!("event: {e}")))?;
            Ok((e.at_ms as i64, e.kind.as_str(), body))
        })
        .await?;
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO events (at_ms, kind, body) VALUES (?1, ?2, ?3)")?;
                for (at, kind, body) in &rows {
                    insert.execute(params![at, kind, body])?;
                }
            }
            tx.commit()
        })
        .await?;
        let now = now_ms();
        if now.saturating_sub(self.last_purge_ms.load(std::sync::atomic::Ordering::Relaxed))
            > PURGE_EVERY.as_millis() as u64
        {
            self.purge_expired(now).await?;
        }
        Ok(())
    }

    async fn count_events(&self, kind: Option<EventKind>, since_ms: u64) -> Result<u64, StoreError> {
        self.with_conn(move |c| {
            let n: i64 = match kind {
                Some(k) => c.query_row(
                    "SELECT COUNT(*) FROM events WHERE at_ms >= ?1 AND kind = ?2",
                    params![since_ms as i64, k.as_str()],
                    |r| r.get(0),
                )?,
                None => {
                    c.query_row("SELECT COUNT(*) FROM events WHERE at_ms >= ?1", params![since_ms as i64], |r| {
                        r.get(0)
                    })?
                }
            };
            Ok(n as u64)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|c| c.query_row("SELECT 1 FROM docs LIMIT 1", [], |_| Ok(())).optional().map(drop)).await
    }

    fn analytics_ttl(&self) -> Duration {
        self.ttl
    }
}
