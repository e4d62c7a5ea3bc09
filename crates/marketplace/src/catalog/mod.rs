//! The store's own catalogue as the source of stock and price syncs: OpenCart's MySQL database
//! (MesChain-Sync is an OpenCart extension), read-only.
//!
//! ## Which products a sync pushes
//! A sync takes a [`Snapshot`] when it starts: the database time `until` (the database's
//! `NOW()` minus [`MARK_LAG`], in OpenCart's time zone), the high-water mark `since` of the last
//! successful sync of that marketplace and operation ([`mark`]), and the batch boundaries: the
//! product ids that end each batch, in `product_id` order. A changed-items sync pushes the
//! products with `since < date_modified <= until` (strict below, inclusive above), a full sync
//! every product. When the run completes, the mark advances to `until` (never backwards), so
//! the next changed-items sync starts exactly where this one ended; a failed or crashed run
//! leaves the mark, and its products are pushed again.
//!
//! Why equal timestamps are safe: `date_modified` has one-second resolution, and OpenCart
//! stamps an edit with the database's `NOW()`. `until` is at least [`MARK_LAG`] seconds before
//! the snapshot's `NOW()`, so every edit made after the snapshot (or still being committed by a
//! statement that started up to that lag earlier) gets a stamp above `until` and belongs to the
//! next sync, and nothing stamped at or below `until` can appear later. A product's set
//! membership can therefore only be lost during a sync (edited again: its stamp moves above
//! `until`, and the next sync pushes it), never gained.
//!
//! Why batches are id ranges: the engine pushes batch `k` exactly once and may read it again
//! after a crash, so a batch must keep its products whatever happens to the catalogue during
//! the sync. Batch `k` is "the selected products with `boundaries[k-1] < product_id <=
//! boundaries[k]`": a product leaving the set shrinks its batch, never shifts another, and no
//! batch can grow past the connector's limit. The boundaries live in the run document, so a
//! resumed run reads the same ranges; memory holds one window of batches whatever the
//! catalogue's size.
//!
//! ## Mapping
//! `inventory` pushes `{barcode, quantity}` (a disabled product, `status = 0`, as quantity 0:
//! it is not for sale); `prices` pushes `{barcode, listPrice: price, salePrice}` where
//! `salePrice` is the special in force now for the customer group, as OpenCart's storefront
//! chooses it (lowest `priority`, then lowest price, `date_start`/`date_end` bounds, zero dates
//! open), else `price`. The barcode is the column `CATALOG_BARCODE_COLUMN` names. Products the
//! marketplace would refuse (no barcode, negative or too large a quantity, a price that is not
//! a positive number, a special above the price) are not pushed: they are reported as failed
//! items with their product id and reason.

pub mod mark;
pub mod settings;

use std::fmt::Write as _;
use std::time::Duration;

use mysql_async::prelude::{Query, Queryable, WithParams};
use mysql_async::{Conn, Pool, Row, Value as SqlValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::connector::ItemResult;
use crate::request::{Item, Operation, check_item};
use meschain_model::money::Money;
pub use settings::{BarcodeColumn, CatalogSettings};

/// How far behind the database's clock `until` is taken (see the module docs).
pub const MARK_LAG_SECONDS: u32 = 2;
/// The same, for documentation.
pub const MARK_LAG: Duration = Duration::from_secs(MARK_LAG_SECONDS as u64);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one query may take before the read is retried.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Most products one catalogue sync may push (the engine's limit of any source).
pub const MAX_PRODUCTS: u64 = 10_000_000;

/// Changed products only, or all of them (the request's `mode`).
pub use meschain_model::marketplace::SyncMode as Mode;

/// What a catalogue sync reads, fixed when it starts and kept in the run document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub mode: Mode,
    /// The mark this sync started from (`YYYY-MM-DD HH:MM:SS`, OpenCart's time zone); `None`:
    /// no earlier successful sync, so every product is pushed.
    pub since: Option<String>,
    /// The mark this sync advances to when it completes.
    pub until: String,
    /// The customer group whose specials give the sale price.
    pub customer_group: u32,
    /// Products selected when the snapshot was taken.
    pub total: u64,
    /// The last product id of each batch.
    pub boundaries: Vec<u64>,
}

impl Snapshot {
    /// The id range `(lo, hi]` of batch `k`.
    fn range(&self, k: usize) -> Option<(u64, u64)> {
        let hi = *self.boundaries.get(k)?;
        let lo = if k == 0 { 0 } else { self.boundaries[k - 1] };
        Some((lo, hi))
    }
}

/// Why the catalogue could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// Worth retrying: the database unreachable, a dropped connection, a timeout.
    #[error("catalogue: {0}")]
    Unavailable(String),
    /// Needs an operator: a wrong password, a missing table or column, a bad setting.
    #[error("catalogue: {0}")]
    Broken(String),
}

/// Says what a driver error means for the sync, without echoing anything secret (the driver's
/// messages hold no password; the connection string is never formatted).
fn classify(e: mysql_async::Error) -> CatalogError {
    use mysql_async::Error as E;
    match e {
        E::Server(s) => {
            let reason = match s.code {
                1045 => format!("the database refused the user or password ({})", s.message),
                1044 | 1142 | 1143 => format!("the user may not read this (grant SELECT): {}", s.message),
                1049 => format!("no such database ({})", s.message),
                1146 => format!("a table is missing ({}); check CATALOG_TABLE_PREFIX", s.message),
                1054 => format!("a column is missing ({})", s.message),
                // Too many connections, lock wait, server shutting down, query killed.
                1040 | 1053 | 1205 | 1213 | 1317 | 2013 => return CatalogError::Unavailable(s.message),
                _ => format!("the database refused a query: {} (error {})", s.message, s.code),
            };
            CatalogError::Broken(reason)
        }
        E::Io(io) => CatalogError::Unavailable(format!("database unreachable: {io}")),
        E::Driver(d) => CatalogError::Broken(format!("database connection: {d}")),
        E::Url(_) => CatalogError::Broken("CATALOG_MYSQL_URL is not a valid mysql:// URL".into()),
        other => CatalogError::Unavailable(other.to_string()),
    }
}

/// OpenCart's catalogue database: a small pool of read-only connections.
pub struct Catalog {
    pool: Pool,
    settings: CatalogSettings,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the password: never formatted.
        f.debug_struct("Catalog").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Catalog {
    /// A pool for `settings`; nothing connects until the first read.
    pub fn new(settings: CatalogSettings) -> Result<Catalog, CatalogError> {
        // The driver asks rustls for the process's default provider, which is only chosen
        // automatically when exactly one is compiled in; installing aws-lc-rs's (the one
        // reqwest uses here) keeps that true whatever another crate enables. An earlier
        // install (ours or anyone's) is kept.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let opts = settings.mysql_opts()?;
        Ok(Catalog { pool: Pool::new(opts), settings })
    }

    pub fn settings(&self) -> &CatalogSettings {
        &self.settings
    }

    async fn conn(&self) -> Result<Conn, CatalogError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(conn) => conn.map_err(classify),
            Err(_) => Err(CatalogError::Unavailable(format!(
                "database unreachable: no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn table(&self, name: &str) -> String {
        format!("`{}{}`", self.settings.table_prefix, name)
    }

    /// Checks that every table and column the sync reads exists, so a wrong prefix or an
    /// unexpected schema fails with their names rather than a driver message.
    async fn check_schema(&self, conn: &mut Conn, operation: Operation) -> Result<(), CatalogError> {
        let prefix = &self.settings.table_prefix;
        let mut wanted: Vec<(String, &str)> = ["product_id", "quantity", "price", "status", "date_modified"]
            .into_iter()
            .chain([self.settings.barcode.column()])
            .map(|c| (format!("{prefix}product"), c))
            .collect();
        if operation == Operation::Prices {
            for c in ["product_id", "customer_group_id", "priority", "price", "date_start", "date_end"] {
                wanted.push((format!("{prefix}product_special"), c));
            }
        }
        let rows: Vec<(String, String)> =
            run("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME IN (?, ?)"
                .with((format!("{prefix}product"), format!("{prefix}product_special")))
                .fetch(&mut *conn))
            .await?;
        let have = |t: &str, c: &str| rows.iter().any(|(rt, rc)| rt == t && rc.eq_ignore_ascii_case(c));
        let mut missing = Vec::new();
        for (t, c) in &wanted {
            if !rows.iter().any(|(rt, _)| rt == t) {
                let m = format!("table {t}");
                if !missing.contains(&m) {
                    missing.push(m);
                }
            } else if !have(t, c) {
                missing.push(format!("column {t}.{c}"));
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::Broken(format!(
                "missing in the database: {} (CATALOG_TABLE_PREFIX is {:?}, CATALOG_BARCODE_COLUMN {:?})",
                missing.join(", "),
                prefix,
                self.settings.barcode.column()
            )))
        }
    }

    /// The customer group whose specials apply: the setting, else the store's default
    /// (`config_customer_group_id` of store 0 in OpenCart's settings table), else 1, the
    /// group OpenCart installs as the default.
    async fn customer_group(&self, conn: &mut Conn) -> Result<u32, CatalogError> {
        if let Some(g) = self.settings.customer_group {
            return Ok(g);
        }
        let sql = format!(
            "SELECT `value` FROM {} WHERE store_id = 0 AND `key` = 'config_customer_group_id' LIMIT 1",
            self.table("setting")
        );
        match conn.query_first::<String, _>(sql).await {
            Ok(Some(v)) => v.trim().parse::<u32>().map_err(|_| {
                CatalogError::Broken(format!(
                    "config_customer_group_id is {v:?}, not a group id; set CATALOG_CUSTOMER_GROUP_ID"
                ))
            }),
            Ok(None) => Ok(1),
            // No settings table readable: OpenCart's installed default.
            Err(mysql_async::Error::Server(s)) if matches!(s.code, 1146 | 1142 | 1054) => Ok(1),
            Err(e) => Err(classify(e)),
        }
    }

    /// The `WHERE` condition selecting a snapshot's products, and its parameters: all of them
    /// (full), those stamped up to `until` (changed, no earlier mark), or those changed in
    /// `(since, until]`.
    fn selection(&self, snapshot: &Snapshot, operation: Operation) -> (String, Vec<SqlValue>) {
        let until = snapshot.until.as_str();
        match (snapshot.mode, snapshot.since.as_deref()) {
            (Mode::Full, _) => ("1 = 1".into(), Vec::new()),
            (Mode::Changed, None) => ("p.date_modified <= ?".into(), vec![until.into()]),
            (Mode::Changed, Some(since)) => {
                let mut cond = String::from("(p.date_modified > ? AND p.date_modified <= ?");
                let mut params: Vec<SqlValue> = vec![since.into(), until.into()];
                if operation == Operation::Prices {
                    // A special that started or ended by date, without an edit: the price in force
                    // changed at that midnight. Counted only while the product itself was not edited
                    // after `until`, so the set still cannot grow during the sync.
                    let _ = write!(
                        cond,
                        " OR (p.date_modified <= ? AND EXISTS (SELECT 1 FROM {} ps WHERE ps.product_id = p.product_id \
                         AND ps.customer_group_id = ? AND ((ps.date_start > ? AND ps.date_start <= ?) \
                         OR (ps.date_end > ? AND ps.date_end <= ?))))",
                        self.table("product_special")
                    );
                    params.extend([
                        until.into(),
                        snapshot.customer_group.into(),
                        since.into(),
                        until.into(),
                        since.into(),
                        until.into(),
                    ]);
                }
                cond.push(')');
                (cond, params)
            }
        }
    }

    /// Takes the snapshot of a new sync: `until`, the batch boundaries (streamed: one id per
    /// product is read, one per batch kept).
    pub async fn snapshot(
        &self,
        operation: Operation,
        mode: Mode,
        since: Option<String>,
        batch_size: u64,
    ) -> Result<Snapshot, CatalogError> {
        let mut conn = self.conn().await?;
        self.check_schema(&mut conn, operation).await?;
        let customer_group = self.customer_group(&mut conn).await?;
        let (until, ahead): (String, i64) = conn
            .query_first(format!(
                "SELECT DATE_FORMAT(NOW() - INTERVAL {MARK_LAG_SECONDS} SECOND, '%Y-%m-%d %H:%i:%s'), \
                 COALESCE(TIMESTAMPDIFF(SECOND, NOW(), (SELECT MAX(date_modified) FROM {})), 0)",
                self.table("product")
            ))
            .await
            .map_err(classify)?
            .ok_or_else(|| CatalogError::Broken("the database answered no time".into()))?;
        if ahead > 60 {
            return Err(CatalogError::Broken(format!(
                "products are stamped up to {ahead} s ahead of the database clock in time zone {}: set \
                 CATALOG_TIME_ZONE to OpenCart's",
                self.settings.time_zone
            )));
        }
        let mut snapshot = Snapshot {
            mode,
            since: if mode == Mode::Changed { since } else { None },
            until,
            customer_group,
            total: 0,
            boundaries: Vec::new(),
        };
        let (cond, params) = self.selection(&snapshot, operation);
        let sql = format!("SELECT p.product_id FROM {} p WHERE {cond} ORDER BY p.product_id", self.table("product"));
        let size = batch_size.max(1);
        let mut total: u64 = 0;
        let mut last: u64 = 0;
        let mut boundaries = Vec::new();
        let read = async {
            let mut result = conn.exec_iter(sql, params).await?;
            result
                .for_each(|row: Row| {
                    let id: Option<u64> = row.get(0);
                    last = id.unwrap_or(0);
                    total += 1;
                    if total.is_multiple_of(size) {
                        boundaries.push(last);
                    }
                })
                .await?;
            Ok::<_, mysql_async::Error>(())
        };
        match tokio::time::timeout(QUERY_TIMEOUT, read).await {
            Ok(r) => r.map_err(classify)?,
            Err(_) => return Err(CatalogError::Unavailable("reading product ids took too long".into())),
        }
        if !total.is_multiple_of(size) {
            boundaries.push(last);
        }
        if total > MAX_PRODUCTS {
            return Err(CatalogError::Broken(format!("{total} products selected; at most {MAX_PRODUCTS} per sync")));
        }
        snapshot.total = total;
        snapshot.boundaries = boundaries;
        Ok(snapshot)
    }

    /// The products of batch `k` of `snapshot`, mapped to items for `operation`: those to
    /// push, and those refused with their reasons.
    pub async fn batch(
        &self,
        snapshot: &Snapshot,
        k: usize,
        operation: Operation,
    ) -> Result<(Vec<Item>, Vec<ItemResult>), CatalogError> {
        let Some((lo, hi)) = snapshot.range(k) else { return Ok((Vec::new(), Vec::new())) };
        let barcode = self.settings.barcode.column();
        let special = if operation == Operation::Prices {
            format!(
                "(SELECT ps.price FROM {} ps WHERE ps.product_id = p.product_id AND ps.customer_group_id = ? \
                 AND (ps.date_start = '0000-00-00' OR ps.date_start < NOW()) \
                 AND (ps.date_end = '0000-00-00' OR ps.date_end > NOW()) \
                 ORDER BY ps.priority ASC, ps.price ASC LIMIT 1)",
                self.table("product_special")
            )
        } else {
            "NULL".into()
        };
        let (cond, selection_params) = self.selection(snapshot, operation);
        let sql = format!(
            "SELECT p.product_id, p.`{barcode}`, p.quantity, CAST(p.price AS CHAR), p.status, CAST({special} AS CHAR) \
             FROM {} p WHERE p.product_id > ? AND p.product_id <= ? AND {cond} ORDER BY p.product_id",
            self.table("product"),
        );
        let mut params: Vec<SqlValue> = Vec::new();
        if operation == Operation::Prices {
            params.push(snapshot.customer_group.into());
        }
        params.extend([lo.into(), hi.into()]);
        params.extend(selection_params);
        let mut conn = self.conn().await?;
        let rows: Vec<Row> = match tokio::time::timeout(QUERY_TIMEOUT, conn.exec(sql, params)).await {
            Ok(r) => r.map_err(classify)?,
            Err(_) => return Err(CatalogError::Unavailable(format!("reading batch {k} took too long"))),
        };
        let mut items = Vec::with_capacity(rows.len());
        let mut invalid = Vec::new();
        for row in rows {
            let product = Product::from_row(row);
            match product.item(operation) {
                Ok(item) => items.push(item),
                Err(reasons) => invalid.push(ItemResult {
                    barcode: product.label(),
                    ok: false,
                    reasons: reasons.into_iter().map(|r| format!("product {}: {r}", product.id)).collect(),
                }),
            }
        }
        Ok((items, invalid))
    }

    /// Closes the pool's connections.
    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

async fn run<T>(f: impl std::future::Future<Output = mysql_async::Result<T>>) -> Result<T, CatalogError> {
    match tokio::time::timeout(QUERY_TIMEOUT, f).await {
        Ok(r) => r.map_err(classify),
        Err(_) => Err(CatalogError::Unavailable("the database did not answer in time".into())),
    }
}

/// One `oc_product` row as read, before any rule is applied.
#[derive(Debug, Clone, PartialEq)]
struct Product {
    id: u64,
    barcode: Option<String>,
    quantity: Option<i64>,
    price: Option<String>,
    status: Option<i64>,
    special: Option<String>,
}

impl Product {
    fn from_row(mut row: Row) -> Product {
        fn text(v: Option<SqlValue>) -> Option<String> {
            match v? {
                SqlValue::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                SqlValue::NULL => None,
                other => Some(other.as_sql(true).trim_matches('\'').to_string()),
            }
        }
        fn int(v: Option<SqlValue>) -> Option<i64> {
            match v? {
                SqlValue::Int(i) => Some(i),
                SqlValue::UInt(u) => i64::try_from(u).ok(),
                SqlValue::Bytes(b) => std::str::from_utf8(&b).ok()?.trim().parse().ok(),
                _ => None,
            }
        }
        let id = int(row.take(0)).and_then(|i| u64::try_from(i).ok()).unwrap_or(0);
        Product {
            id,
            barcode: text(row.take(1)),
            quantity: int(row.take(2)),
            price: text(row.take(3)),
            status: int(row.take(4)),
            special: text(row.take(5)),
        }
    }

    /// The barcode, or the product id when there is none (for reports).
    fn label(&self) -> String {
        match self.barcode.as_deref().map(str::trim) {
            Some(b) if !b.is_empty() => b.to_string(),
            _ => format!("product {}", self.id),
        }
    }

    /// The item this product becomes, or why the marketplace would refuse it.
    fn item(&self, operation: Operation) -> Result<Item, Vec<String>> {
        let mut reasons = Vec::new();
        let barcode = self.barcode.as_deref().map(str::trim).unwrap_or("");
        if barcode.is_empty() {
            reasons.push("no barcode".to_string());
        }
        let value = match operation {
            Operation::Inventory => {
                let quantity = match self.quantity {
                    Some(q) if q < 0 => {
                        reasons.push(format!("quantity {q} is negative"));
                        0
                    }
                    Some(q) if self.status == Some(0) => {
                        let _ = q;
                        0
                    }
                    Some(q) => q,
                    None => {
                        reasons.push("quantity is not a number".into());
                        0
                    }
                };
                json!({ "barcode": barcode, "quantity": quantity })
            }
            Operation::Prices => {
                let list = price(self.price.as_deref());
                let special = self.special.as_deref().map(|s| price(Some(s)));
                let list = match list {
                    Ok(p) => Some(p),
                    Err(r) => {
                        reasons.push(format!("price {r}"));
                        None
                    }
                };
                let sale = match special {
                    None => list,
                    Some(Ok(p)) => Some(p),
                    Some(Err(r)) => {
                        reasons.push(format!("special price {r}"));
                        None
                    }
                };
                if let (Some(l), Some(s)) = (list, sale)
                    && s > l
                {
                    reasons.push(format!("special price {s} is above the price {l}"));
                }
                json!({ "barcode": barcode, "listPrice": list.map(number), "salePrice": sale.map(number) })
            }
            Operation::Orders => return Err(vec!["orders are not pushed".into()]),
        };
        if !reasons.is_empty() {
            return Err(reasons);
        }
        // The same rules as any pushed item (barcode length, quantity range, positive prices).
        check_item(&value, operation).map_err(|problems| {
            problems
                .into_iter()
                .map(|(field, message)| {
                    let field = field.trim_start_matches('.');
                    if field.is_empty() { message } else { format!("{field}: {message}") }
                })
                .collect()
        })
    }
}

/// A price as read from the catalogue (`DECIMAL(15,4)` as text), exactly. The one place that
/// turns the database's decimal into the item's price type.
pub fn price(text: Option<&str>) -> Result<Money, String> {
    let Some(text) = text.map(str::trim) else { return Err("is missing".into()) };
    let valid = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && text.bytes().filter(|b| *b == b'.').count() <= 1;
    match text.parse::<Money>() {
        Ok(v) if valid => Ok(v.normalize()),
        _ => Err(format!("{text:?} is not a number")),
    }
}

/// A price as the JSON number [`check_item`] validates. `DECIMAL(15,4)` has at most 15
/// significant digits, which a binary64 carries and prints back unchanged, so the item's
/// decimal read back from this number is the database's.
fn number(m: Money) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    m.to_f64().map_or(Value::Null, |f| json!(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(barcode: Option<&str>, quantity: Option<i64>, price: Option<&str>, special: Option<&str>) -> Product {
        Product {
            id: 7,
            barcode: barcode.map(Into::into),
            quantity,
            price: price.map(Into::into),
            status: Some(1),
            special: special.map(Into::into),
        }
    }

    #[test]
    fn test_inventory_mapping() {
        let item = product(Some(" 868001 "), Some(12), Some("1.0000"), None).item(Operation::Inventory).unwrap();
        assert_eq!((item.barcode.as_str(), item.quantity, item.sale_price), ("868001", Some(12), None));
        let mut disabled = product(Some("868001"), Some(12), Some("1"), None);
        disabled.status = Some(0);
        assert_eq!(disabled.item(Operation::Inventory).unwrap().quantity, Some(0), "disabled: not for sale");
        let err = product(Some("868001"), Some(-3), None, None).item(Operation::Inventory).unwrap_err();
        assert_eq!(err, ["quantity -3 is negative"]);
        let err = product(None, Some(1), None, None).item(Operation::Inventory).unwrap_err();
        assert_eq!(err, ["no barcode"]);
        assert_eq!(product(Some(""), Some(1), None, None).label(), "product 7");
        let err = product(Some("b"), Some(20_001), None, None).item(Operation::Inventory).unwrap_err();
        assert!(err[0].starts_with("quantity: must be an integer from 0 to 20000"), "{err:?}");
        let long = "9".repeat(101);
        assert!(product(Some(&long), Some(1), None, None).item(Operation::Inventory).is_err());
    }

    #[test]
    fn test_prices_mapping() {
        let item = product(Some("b"), None, Some("113.8500"), Some("112.8500")).item(Operation::Prices).unwrap();
        assert_eq!(
            (item.list_price, item.sale_price, item.quantity),
            (Some(Money::new(11385, 2)), Some(Money::new(11285, 2)), None)
        );
        let item = product(Some("b"), None, Some("10.0000"), None).item(Operation::Prices).unwrap();
        assert_eq!((item.list_price, item.sale_price), (Some(Money::TEN), Some(Money::TEN)));
        let err = product(Some("b"), None, Some("abc"), None).item(Operation::Prices).unwrap_err();
        assert_eq!(err, ["price \"abc\" is not a number"]);
        let err = product(Some("b"), None, Some("10"), Some("12")).item(Operation::Prices).unwrap_err();
        assert_eq!(err, ["special price 12 is above the price 10"]);
        let err = product(Some("b"), None, Some("0.0000"), None).item(Operation::Prices).unwrap_err();
        assert!(err.iter().any(|r| r.contains("positive")), "{err:?}");
        assert!(price(Some("1e5")).is_err() && price(Some("NaN")).is_err() && price(None).is_err());
    }

    #[test]
    fn test_snapshot_ranges() {
        let s = Snapshot {
            mode: Mode::Changed,
            since: None,
            until: "2026-12-05 08:00:00".into(),
            customer_group: 1,
            total: 5,
            boundaries: vec![10, 42],
        };
        assert_eq!(s.range(0), Some((0, 10)));
        assert_eq!(s.range(1), Some((10, 42)));
        assert_eq!(s.range(2), None);
        assert_eq!(Mode::from_name(" FULL "), Some(Mode::Full));
        assert_eq!(Mode::from_name("products"), None);
    }
}
