//! Where a sync's items come from: inline in the message, an `itemsUrl` for lists too large
//! for one message (fetched only as [`crate::net_guard`] allows), or the store's catalogue
//! ([`crate::catalog`]) when the message carries neither.
//!
//! ## The `itemsUrl` format
//! The sync reads `GET {itemsUrl}?offset=O&limit=L` (appending to any query the URL already
//! has) and expects `200` with `{"items": [ {barcode, quantity?, salePrice?, listPrice?}, ... ],
//! "total": N}`: the items at positions `O..` of a fixed, ordered list of `N` items, at most
//! `L` of them (fewer is fine: the sync asks again from where the page ended). `total` must be
//! the same on every page, items must keep their positions for the length of the sync (serve a
//! snapshot), and an empty page before `N` is an error. Because any batch can be fetched by
//! position, a resumed sync reads exactly its first unfinished batch, and memory holds one
//! window of batches whatever `N` is.
//!
//! Items that fail validation are not pushed; they are reported as failed items with the reason.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::catalog::{Catalog, CatalogError, Mode, Snapshot};
use crate::connector::ItemResult;
use crate::net_guard::{self, ItemsHttp};
use crate::request::{Item, Operation, check_item};

/// Most items one source may hold.
pub const MAX_SOURCE_ITEMS: u64 = 10_000_000;
/// Largest page body read.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One batch's worth of items: the ones to push, and the ones refused before pushing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SourceBatch {
    pub items: Vec<Item>,
    pub invalid: Vec<ItemResult>,
}

impl SourceBatch {
    pub fn len(&self) -> usize {
        self.items.len() + self.invalid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// Worth retrying (network errors, 429, 5xx).
    #[error("items source: {0}")]
    Transient(String),
    /// The source breaks the format; the sync cannot go on.
    #[error("items source: {0}")]
    Broken(String),
}

pub enum ItemsSource {
    Inline(Arc<[Item]>),
    Url(UrlSource),
    Catalog(CatalogSource),
}

pub struct UrlSource {
    http: ItemsHttp,
    url: url::Url,
    operation: Operation,
    total: Option<u64>,
}

/// The store's catalogue: a [`Snapshot`] taken once per sync, then one id range per batch.
pub struct CatalogSource {
    catalog: Arc<Catalog>,
    operation: Operation,
    mode: Mode,
    /// The mark the snapshot starts from (read when the sync starts).
    since: Option<String>,
    batch_size: u64,
    snapshot: Option<Snapshot>,
}

impl From<CatalogError> for SourceError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Unavailable(m) => SourceError::Transient(format!("catalogue: {m}")),
            CatalogError::Broken(m) => SourceError::Broken(format!("catalogue: {m}")),
        }
    }
}

impl ItemsSource {
    pub fn url(http: ItemsHttp, url: url::Url, operation: Operation) -> Self {
        ItemsSource::Url(UrlSource { http, url, operation, total: None })
    }

    /// A catalogue source: resumes `snapshot` when the run has one, else takes one from `since`.
    pub fn catalog(
        catalog: Arc<Catalog>,
        operation: Operation,
        mode: Mode,
        since: Option<String>,
        batch_size: u64,
        snapshot: Option<Snapshot>,
    ) -> Self {
        ItemsSource::Catalog(CatalogSource { catalog, operation, mode, since, batch_size, snapshot })
    }

    /// The catalogue snapshot, once taken (kept in the run document).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        match self {
            ItemsSource::Catalog(c) => c.snapshot.as_ref(),
            _ => None,
        }
    }

    /// How many items the source holds.
    pub async fn total(&mut self) -> Result<u64, SourceError> {
        match self {
            ItemsSource::Inline(items) => Ok(items.len() as u64),
            ItemsSource::Url(src) => {
                if let Some(total) = src.total {
                    return Ok(total);
                }
                let (_, total) = src.page(0, 1).await?;
                if total > MAX_SOURCE_ITEMS {
                    return Err(SourceError::Broken(format!("total {total} is over {MAX_SOURCE_ITEMS}")));
                }
                src.total = Some(total);
                Ok(total)
            }
            ItemsSource::Catalog(src) => {
                if src.snapshot.is_none() {
                    let snapshot =
                        src.catalog.snapshot(src.operation, src.mode, src.since.clone(), src.batch_size).await?;
                    src.snapshot = Some(snapshot);
                }
                Ok(src.snapshot.as_ref().map_or(0, |s| s.total))
            }
        }
    }

    /// Items `start..start + len` (fewer at the end). Call [`ItemsSource::total`] first.
    pub async fn batch(&self, start: u64, len: usize) -> Result<SourceBatch, SourceError> {
        match self {
            ItemsSource::Inline(items) => {
                let from = (start as usize).min(items.len());
                let to = from.saturating_add(len).min(items.len());
                Ok(SourceBatch { items: items[from..to].to_vec(), invalid: Vec::new() })
            }
            ItemsSource::Url(src) => src.batch(start, len).await,
            ItemsSource::Catalog(src) => {
                let snapshot = src.snapshot.as_ref().ok_or_else(|| SourceError::Broken("no snapshot yet".into()))?;
                let size = src.batch_size.max(1);
                if !start.is_multiple_of(size) || len as u64 != size {
                    return Err(SourceError::Broken(format!("catalogue batches are {size} products")));
                }
                let (items, invalid) = src.catalog.batch(snapshot, (start / size) as usize, src.operation).await?;
                Ok(SourceBatch { items, invalid })
            }
        }
    }
}

impl UrlSource {
    async fn batch(&self, start: u64, len: usize) -> Result<SourceBatch, SourceError> {
        let total = self.total.ok_or_else(|| SourceError::Broken("total not read yet".into()))?;
        let end = start.saturating_add(len as u64).min(total);
        let mut out = SourceBatch::default();
        let mut offset = start;
        while offset < end {
            let (page, page_total) = self.page(offset, end - offset).await?;
            if page_total != total {
                return Err(SourceError::Broken(format!("total changed from {total} to {page_total} during the sync")));
            }
            if page.is_empty() {
                return Err(SourceError::Broken(format!("empty page at offset {offset} of {total}")));
            }
            if page.len() as u64 > end - offset {
                return Err(SourceError::Broken(format!("page at offset {offset} has more items than asked")));
            }
            for (i, v) in page.iter().enumerate() {
                match check_item(v, self.operation) {
                    Ok(item) => out.items.push(item),
                    Err(problems) => {
                        let position = offset + i as u64;
                        let barcode = v
                            .get("barcode")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("#{position}"));
                        let reasons = problems.into_iter().map(|(f, m)| format!("item{f}: {m}")).collect();
                        out.invalid.push(ItemResult { barcode, ok: false, reasons });
                    }
                }
            }
            offset += page.len() as u64;
        }
        Ok(out)
    }

    async fn page(&self, offset: u64, limit: u64) -> Result<(Vec<Value>, u64), SourceError> {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("offset", &offset.to_string()).append_pair("limit", &limit.to_string());
        self.http.policy.check_url(&url).map_err(|r| SourceError::Broken(r.0))?;
        let mut response = self.http.client.get(url).timeout(PAGE_TIMEOUT).send().await.map_err(|e| {
            // A refused address or redirect will be refused again: the sync fails, saying why.
            match net_guard::refusal(&e) {
                Some(reason) => SourceError::Broken(reason),
                None => SourceError::Transient(format!("request failed: {}", e.without_url())),
            }
        })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(SourceError::Transient(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(SourceError::Broken(format!("HTTP {} at offset {offset}", status.as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SourceError::Transient(format!("reading failed: {}", e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(SourceError::Broken(format!("page larger than {MAX_PAGE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        #[derive(serde::Deserialize)]
        struct Page {
            items: Vec<Value>,
            total: u64,
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| SourceError::Broken(format!("page at offset {offset} is not {{items, total}}: {e}")))?;
        Ok((page.items, page.total))
    }
}
