//! The catalogue's settings, read once and checked with every problem named (never a value:
//! the connection string holds a password).

use std::path::PathBuf;

use meschain_model::settings as names;
use mysql_async::{Opts, OptsBuilder, SslOpts};

use super::CatalogError;

/// Which `oc_product` column is the marketplace barcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarcodeColumn {
    Ean,
    Upc,
    Jan,
    Isbn,
    Mpn,
    Sku,
    Model,
}

impl BarcodeColumn {
    pub const ALL: [BarcodeColumn; 7] = [
        BarcodeColumn::Ean,
        BarcodeColumn::Upc,
        BarcodeColumn::Jan,
        BarcodeColumn::Isbn,
        BarcodeColumn::Mpn,
        BarcodeColumn::Sku,
        BarcodeColumn::Model,
    ];

    /// The column name (also the setting's value).
    pub fn column(self) -> &'static str {
        match self {
            BarcodeColumn::Ean => "ean",
            BarcodeColumn::Upc => "upc",
            BarcodeColumn::Jan => "jan",
            BarcodeColumn::Isbn => "isbn",
            BarcodeColumn::Mpn => "mpn",
            BarcodeColumn::Sku => "sku",
            BarcodeColumn::Model => "model",
        }
    }
}

/// Where the catalogue is and how to read it. `Debug` leaves the connection string out.
#[derive(Clone)]
pub struct CatalogSettings {
    url: url::Url,
    /// OpenCart's table prefix (`oc_` by default); letters, digits and `_` only, because it is
    /// written into the queries.
    pub table_prefix: String,
    pub barcode: BarcodeColumn,
    /// The customer group whose specials give the sale price; `None`: the store's default.
    pub customer_group: Option<u32>,
    /// OpenCart's time zone as an offset (`+03:00`): `date_modified` is written in it.
    pub time_zone: String,
    /// One more trusted root certificate (PEM) for the database's TLS, for a private CA.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for CatalogSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSettings")
            .field("host", &self.url.host_str())
            .field("table_prefix", &self.table_prefix)
            .field("barcode", &self.barcode)
            .field("customer_group", &self.customer_group)
            .field("time_zone", &self.time_zone)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Why the catalogue is not available, for the dashboard and for refused syncs.
pub const NOT_CONFIGURED: &str = "no store catalogue is configured (CATALOG_MYSQL_URL)";

impl CatalogSettings {
    /// `Ok(None)` when `CATALOG_MYSQL_URL` is unset or empty (no catalogue); otherwise the
    /// settings, or every problem by setting name.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, Vec<(&'static str, String)>> {
        let get = |n: &str| get(n).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(raw) = get(names::CATALOG_MYSQL_URL) else { return Ok(None) };
        let mut problems = Vec::new();
        let url = match url::Url::parse(&raw) {
            Ok(u) if u.scheme() == "mysql" && u.host_str().is_some_and(|h| !h.is_empty()) => {
                let db = u.path().trim_start_matches('/');
                if db.is_empty() || db.contains('/') {
                    problems.push((
                        names::CATALOG_MYSQL_URL,
                        "must name the database: mysql://user:password@host:3306/opencart".into(),
                    ));
                }
                if u.username().is_empty() {
                    problems.push((names::CATALOG_MYSQL_URL, "must name the (read-only) user".into()));
                }
                if u.query().is_some() {
                    problems
                        .push((names::CATALOG_MYSQL_URL, "must not have query parameters (TLS is always on)".into()));
                }
                Some(u)
            }
            // Never echo the value: it holds a password.
            _ => {
                problems.push((names::CATALOG_MYSQL_URL, "must be mysql://user:password@host:3306/database".into()));
                None
            }
        };
        let table_prefix = get(names::CATALOG_TABLE_PREFIX).unwrap_or_else(|| "oc_".into());
        if table_prefix.len() > 32 || !table_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            problems.push((names::CATALOG_TABLE_PREFIX, "must be at most 32 letters, digits or '_'".into()));
        }
        let barcode = match get(names::CATALOG_BARCODE_COLUMN) {
            None => BarcodeColumn::Ean,
            Some(v) => match BarcodeColumn::ALL.into_iter().find(|c| c.column().eq_ignore_ascii_case(&v)) {
                Some(c) => c,
                None => {
                    problems.push((
                        names::CATALOG_BARCODE_COLUMN,
                        "must be one of ean, upc, jan, isbn, mpn, sku, model".into(),
                    ));
                    BarcodeColumn::Ean
                }
            },
        };
        let customer_group = match get(names::CATALOG_CUSTOMER_GROUP_ID) {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(g) if g > 0 => Some(g),
                _ => {
                    problems.push((names::CATALOG_CUSTOMER_GROUP_ID, "must be a positive customer_group_id".into()));
                    None
                }
            },
        };
        let time_zone = get(names::CATALOG_TIME_ZONE).unwrap_or_else(|| "+00:00".into());
        if !valid_offset(&time_zone) {
            problems.push((names::CATALOG_TIME_ZONE, "must be an offset such as +03:00 (OpenCart's time zone)".into()));
        }
        let ca_file = get(names::CATALOG_MYSQL_CA_FILE).map(PathBuf::from);
        if let Some(f) = &ca_file
            && !f.is_file()
        {
            problems.push((names::CATALOG_MYSQL_CA_FILE, "must be a readable PEM file".into()));
        }
        match url {
            Some(url) if problems.is_empty() => {
                Ok(Some(CatalogSettings { url, table_prefix, barcode, customer_group, time_zone, ca_file }))
            }
            _ => Err(problems),
        }
    }

    /// The host the catalogue is on (shown to operators; never the user or password).
    pub fn host(&self) -> String {
        self.url.host_str().unwrap_or_default().to_string()
    }

    /// Driver options: TLS always on with the host name verified (Azure Database for MySQL
    /// requires TLS; its roots are in the built-in set), every session in OpenCart's time zone.
    pub(super) fn mysql_opts(&self) -> Result<Opts, CatalogError> {
        let opts = Opts::from_url(self.url.as_str())
            .map_err(|_| CatalogError::Broken("CATALOG_MYSQL_URL is not a valid mysql:// URL".into()))?;
        let mut ssl = SslOpts::default();
        if let Some(ca) = &self.ca_file {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        let builder = OptsBuilder::from_opts(opts)
            .ssl_opts(ssl)
            .init(vec![format!("SET time_zone = '{}'", self.time_zone)])
            .pool_opts(
                mysql_async::PoolOpts::default()
                    .with_constraints(mysql_async::PoolConstraints::new(0, 8).expect("0 <= 8"))
                    .with_inactive_connection_ttl(std::time::Duration::from_secs(60)),
            );
        Ok(builder.into())
    }
}

fn valid_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit)
        && s[1..3].parse::<u8>().is_ok_and(|h| h <= 14)
        && s[4..6].parse::<u8>().is_ok_and(|m| m < 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<CatalogSettings>, Vec<(&'static str, String)>> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CatalogSettings::from_lookup(&move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn test_settings() {
        assert!(read(&[]).unwrap().is_none());
        assert!(read(&[("CATALOG_MYSQL_URL", " ")]).unwrap().is_none());
        let s = read(&[("CATALOG_MYSQL_URL", "mysql://reader:s3cret@db.example:3306/opencart")]).unwrap().unwrap();
        assert_eq!((s.table_prefix.as_str(), s.barcode, s.customer_group), ("oc_", BarcodeColumn::Ean, None));
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("reader"), "{debug}");
        let err = read(&[
            ("CATALOG_MYSQL_URL", "postgres://reader:s3cret@db/x"),
            ("CATALOG_TABLE_PREFIX", "oc_; DROP"),
            ("CATALOG_BARCODE_COLUMN", "gtin"),
            ("CATALOG_CUSTOMER_GROUP_ID", "0"),
            ("CATALOG_TIME_ZONE", "Europe/Istanbul"),
        ])
        .unwrap_err();
        let named: Vec<&str> = err.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            named,
            [
                "CATALOG_MYSQL_URL",
                "CATALOG_TABLE_PREFIX",
                "CATALOG_BARCODE_COLUMN",
                "CATALOG_CUSTOMER_GROUP_ID",
                "CATALOG_TIME_ZONE"
            ]
        );
        assert!(!format!("{err:?}").contains("s3cret"));
        let err = read(&[("CATALOG_MYSQL_URL", "mysql://reader:pw@db:3306/")]).unwrap_err();
        assert!(err[0].1.contains("database"), "{err:?}");
        assert!(valid_offset("+03:00") && valid_offset("-05:30") && !valid_offset("+3:00") && !valid_offset("+15:00"));
    }
}
