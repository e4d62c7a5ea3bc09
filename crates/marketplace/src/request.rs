//! The sync request as it arrives on the queue, checked before anything runs.
//!
//! The body is untrusted JSON from whoever could write to the queue. It is checked field by
//! field against a [`serde_json::Value`] rather than through a derived `Deserialize`, because
//! serde stops at the first problem and an operator fixing a rejected message wants to see
//! every problem at once ([`InvalidRequest`] lists them all). What passes becomes a
//! [`SyncPlan`], which the engine trusts.

use std::fmt;

use meschain_model::marketplace::{Marketplace, SyncItem, SyncMode};
use meschain_model::money::{self, Money};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Inline items a message may carry; larger catalogues use `itemsUrl`.
pub const MAX_INLINE_ITEMS: usize = 50_000;
/// The longest barcode accepted (Trendyol documents none; longer ones are certainly mistakes).
pub const MAX_BARCODE_LEN: usize = 100;
/// Trendyol's documented maximum stock of one product.
pub const MAX_QUANTITY: u64 = 20_000;
/// How far back `since` may reach: Trendyol's order API reaches back three months.
pub const MAX_SINCE_AGE: time::Duration = time::Duration::days(90);
/// Prices at or above this are certainly mistakes (no marketplace documents a maximum).
pub const MAX_PRICE: Money = Money::from_parts(1_000_000_000, 0, 0, false, 0);
/// Problems listed in one error; the rest are counted.
const MAX_PROBLEMS: usize = 50;

const KNOWN_FIELDS: [&str; 11] = [
    "marketplace",
    "operation",
    "items",
    "itemsUrl",
    "mode",
    "since",
    "syncId",
    "requestedBy",
    "requestId",
    "requestedAt",
    "continuation",
];

/// What a sync does: the model's one definition, so the queue message, the hub and the engine
/// accept the same operations.
pub use meschain_model::marketplace::SyncOperation as Operation;

/// One stock/price change (the model's [`SyncItem`]).
pub type Item = SyncItem;

/// Where the items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemsSpec {
    Inline(Vec<Item>),
    /// A paged JSON source (see [`crate::items_source`]).
    Url(url::Url),
    /// The store's catalogue (see `crate::catalog`): changed products, or all of them.
    Catalog(SyncMode),
    /// Orders read from the marketplace; nothing is pushed.
    None,
}

/// A checked request: what the engine runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPlan {
    pub sync_id: String,
    pub marketplace: Marketplace,
    pub operation: Operation,
    pub items: ItemsSpec,
    /// For orders: import orders changed since then.
    pub since: Option<OffsetDateTime>,
    pub requested_by: Option<String>,
    /// How many continuation messages led to this delivery (0 for the operator's own).
    pub continuation: u32,
}

/// One thing wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A JSON path such as `items[3].quantity` (empty for the body itself).
    pub field: String,
    pub message: String,
}

/// Every problem found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub more: usize,
}

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid sync request: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if p.field.is_empty() {
                write!(f, "{}", p.message)?;
            } else {
                write!(f, "{}: {}", p.field, p.message)?;
            }
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidRequest {}

#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    more: usize,
}

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem { field: field.into(), message: message.into() });
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Checks a request body. `message_id` is the queue message's id, the default `syncId`;
/// `now` is the clock the `since` window is checked against.
pub fn validate(body: &Value, message_id: Option<&str>, now: OffsetDateTime) -> Result<SyncPlan, InvalidRequest> {
    let mut p = Problems::default();
    let Some(obj) = body.as_object() else {
        p.add("", "the body must be a JSON object");
        return Err(InvalidRequest { problems: p.list, more: p.more });
    };
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            p.add(key.as_str(), "unknown field");
        }
    }

    let marketplace = match obj.get("marketplace") {
        None | Some(Value::Null) => {
            p.add("marketplace", "required");
            None
        }
        Some(Value::String(s)) => {
            let found = Marketplace::from_name(s);
            if found.is_none() {
                let names: Vec<&str> = Marketplace::ALL.iter().map(|m| m.name()).collect();
                p.add("marketplace", format!("unknown marketplace {s:?} (expected one of {})", names.join(", ")));
            }
            found
        }
        Some(_) => {
            p.add("marketplace", "must be a string");
            None
        }
    };

    let operation = match obj.get("operation") {
        None | Some(Value::Null) => {
            p.add("operation", "required");
            None
        }
        Some(Value::String(s)) => {
            let operation = Operation::from_name(s);
            if operation.is_none() {
                let known: Vec<_> = Operation::ALL.iter().map(|o| o.name()).collect();
                p.add("operation", format!("unknown operation {s:?} (expected one of {})", known.join(", ")));
            }
            operation
        }
        Some(_) => {
            p.add("operation", "must be a string");
            None
        }
    };

    let items = check_items(obj, operation, &mut p);
    let since = check_since(obj, operation, now, &mut p);

    let sync_id = match obj.get("syncId") {
        None | Some(Value::Null) => match message_id {
            Some(id) if valid_sync_id(id) => Some(id.to_string()),
            Some(_) => {
                p.add("syncId", "absent, and the message id cannot serve as one: set syncId");
                None
            }
            None => {
                p.add("syncId", "absent, and the message has no id: set syncId");
                None
            }
        },
        Some(Value::String(s)) if valid_sync_id(s) => Some(s.clone()),
        Some(_) => {
            p.add("syncId", "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'");
            None
        }
    };

    let requested_by = match obj.get("requestedBy") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Some(_) => {
            p.add("requestedBy", "must be a string of 1-256 printable characters");
            None
        }
    };

    let continuation = match obj.get("continuation") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => n,
            None => {
                p.add("continuation", "must be a non-negative integer");
                0
            }
        },
    };
    for field in ["requestId", "requestedAt"] {
        if obj.get(field).is_some_and(|v| !v.is_string() && !v.is_null()) {
            p.add(field, "must be a string");
        }
    }

    if !p.is_empty() {
        return Err(InvalidRequest { problems: p.list, more: p.more });
    }
    match (sync_id, marketplace, operation, items) {
        (Some(sync_id), Some(marketplace), Some(operation), Some(items)) => {
            Ok(SyncPlan { sync_id, marketplace, operation, items, since, requested_by, continuation })
        }
        // Unreachable: every `None` above recorded a problem.
        _ => Err(InvalidRequest {
            problems: vec![Problem { field: String::new(), message: "incomplete request".into() }],
            more: 0,
        }),
    }
}

fn valid_sync_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn check_items(obj: &Map<String, Value>, operation: Option<Operation>, p: &mut Problems) -> Option<ItemsSpec> {
    let inline = obj.get("items").filter(|v| !v.is_null());
    let url = obj.get("itemsUrl").filter(|v| !v.is_null());
    let operation = operation?;
    if !operation.pushes_items() {
        if obj.get("mode").is_some_and(|v| !v.is_null()) {
            p.add("mode", "not allowed for an orders sync");
        }
        if inline.is_some() {
            p.add("items", "not allowed for an orders sync");
        }
        if url.is_some() {
            p.add("itemsUrl", "not allowed for an orders sync");
        }
        return Some(ItemsSpec::None);
    }
    let mode = match obj.get("mode").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_str().and_then(SyncMode::from_name) {
            Some(m) if inline.is_none() && url.is_none() => Some(m),
            Some(_) => {
                p.add("mode", "only for a sync read from the catalogue (without items or itemsUrl)");
                None
            }
            None => {
                p.add("mode", "must be \"changed\" or \"full\"");
                None
            }
        },
    };
    match (inline, url) {
        // No items: the store's catalogue, changed products unless `mode` says full.
        (None, None) => Some(ItemsSpec::Catalog(mode.unwrap_or_default())),
        (Some(_), Some(_)) => {
            p.add("itemsUrl", "give items or itemsUrl, not both");
            None
        }
        (None, Some(url)) => match url.as_str().map(check_items_url) {
            Some(Ok(url)) => Some(ItemsSpec::Url(url)),
            Some(Err(message)) => {
                p.add("itemsUrl", message);
                None
            }
            None => {
                p.add("itemsUrl", "must be a string");
                None
            }
        },
        (Some(items), None) => {
            let Some(items) = items.as_array() else {
                p.add("items", "must be an array");
                return None;
            };
            if items.is_empty() {
                p.add("items", "must not be empty");
                return None;
            }
            if items.len() > MAX_INLINE_ITEMS {
                p.add("items", format!("at most {MAX_INLINE_ITEMS} inline items (use itemsUrl for more)"));
                return None;
            }
            let mut seen = std::collections::HashSet::with_capacity(items.len());
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                // Checked on the raw value so a repeat is reported even beside other problems.
                if let Some(barcode) = v.get("barcode").and_then(Value::as_str).filter(|b| !b.is_empty())
                    && !seen.insert(barcode)
                {
                    p.add(format!("items[{i}].barcode"), format!("{barcode:?} appears more than once"));
                }
                match check_item(v, operation) {
                    Ok(item) => out.push(item),
                    Err(problems) => {
                        for (field, message) in problems {
                            p.add(format!("items[{i}]{field}"), message);
                        }
                    }
                }
            }
            Some(ItemsSpec::Inline(out))
        }
    }
}

fn check_items_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    // Credentials in a URL end up in logs and dead-letter queues; the source must not need them.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    for (k, _) in url.query_pairs() {
        if k == "offset" || k == "limit" {
            return Err(format!("must not set {k:?}: the sync adds offset and limit itself"));
        }
    }
    Ok(url)
}

/// Checks one item for `operation`; on failure, `(field suffix, message)` pairs such as
/// `(".quantity", "required")`. Also used on every item read from an `itemsUrl` source.
pub fn check_item(v: &Value, operation: Operation) -> Result<Item, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let Some(obj) = v.as_object() else {
        return Err(vec![("", "must be an object".into())]);
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "barcode" | "quantity" | "salePrice" | "listPrice") {
            problems.push(("", format!("unknown field {key:?}")));
        }
    }
    let barcode = match obj.get("barcode") {
        Some(Value::String(s))
            if !s.trim().is_empty() && s.len() <= MAX_BARCODE_LEN && !s.chars().any(char::is_control) =>
        {
            s.clone()
        }
        None | Some(Value::Null) => {
            problems.push((".barcode", "required".into()));
            String::new()
        }
        Some(_) => {
            problems.push((".barcode", format!("must be a non-empty string of at most {MAX_BARCODE_LEN} characters")));
            String::new()
        }
    };
    let quantity = match obj.get("quantity") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(q) if q <= MAX_QUANTITY => Some(q as u32),
            _ => {
                problems.push((".quantity", format!("must be an integer from 0 to {MAX_QUANTITY}")));
                None
            }
        },
    };
    let mut price = |field: &'static str, suffix: &'static str| match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => match money::from_json(v).filter(|x| v.is_number() && *x > Money::ZERO && *x < MAX_PRICE) {
            Some(x) => Some(x),
            _ => {
                problems.push((suffix, "must be a positive number below 1,000,000,000".into()));
                None
            }
        },
    };
    let sale_price = price("salePrice", ".salePrice");
    let list_price = price("listPrice", ".listPrice");
    match operation {
        Operation::Inventory if quantity.is_none() && obj.get("quantity").is_none_or(|v| v.is_null()) => {
            problems.push((".quantity", "required for an inventory sync".into()));
        }
        Operation::Prices => {
            if obj.get("quantity").is_some_and(|v| !v.is_null()) {
                problems.push((".quantity", "not allowed in a prices sync (use inventory)".into()));
            }
            let given = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
            if !given("salePrice") && !given("listPrice") {
                problems.push((".salePrice", "salePrice or listPrice is required for a prices sync".into()));
            }
        }
        _ => {}
    }
    if let (Some(sale), Some(list)) = (sale_price, list_price)
        && list < sale
    {
        problems.push((".listPrice", "must not be lower than salePrice".into()));
    }
    if problems.is_empty() { Ok(Item { barcode, quantity, sale_price, list_price }) } else { Err(problems) }
}

fn check_since(
    obj: &Map<String, Value>,
    operation: Option<Operation>,
    now: OffsetDateTime,
    p: &mut Problems,
) -> Option<OffsetDateTime> {
    let since = obj.get("since").filter(|v| !v.is_null());
    match (operation, since) {
        (Some(Operation::Orders), None) => {
            p.add("since", "required for an orders sync (RFC 3339)");
            None
        }
        (Some(Operation::Orders), Some(v)) => {
            let Some(t) = v.as_str().and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()) else {
                p.add("since", "must be an RFC 3339 time such as 2026-12-01T00:00:00Z");
                return None;
            };
            if t > now + time::Duration::minutes(5) {
                p.add("since", "is in the future");
            } else if t < now - MAX_SINCE_AGE {
                p.add("since", "reaches back more than 90 days (the marketplace keeps three months)");
            }
            Some(t)
        }
        (Some(_), Some(_)) => {
            p.add("since", "only allowed for an orders sync");
            None
        }
        (_, None) | (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-12-02T06:00:00Z", &Rfc3339).unwrap()
    }

    #[test]
    fn test_inline_inventory_request() {
        let body = json!({
            "marketplace": "Trendyol", "operation": "inventory", "requestedBy": "ops@example.com",
            "items": [{"barcode": "A1", "quantity": 5}, {"barcode": "A2", "quantity": 0, "salePrice": 10.5, "listPrice": 12}],
        });
        let plan = validate(&body, Some("msg-1"), now()).unwrap();
        assert_eq!(plan.sync_id, "msg-1");
        assert_eq!(plan.marketplace, Marketplace::Trendyol);
        assert_eq!(plan.operation, Operation::Inventory);
        assert_eq!(plan.requested_by.as_deref(), Some("ops@example.com"));
        let ItemsSpec::Inline(items) = plan.items else { panic!("inline expected") };
        assert_eq!(
            items[1],
            Item {
                barcode: "A2".into(),
                quantity: Some(0),
                sale_price: Some(Money::new(105, 1)),
                list_price: Some(Money::from(12))
            }
        );
    }

    #[test]
    fn test_every_problem_reported_at_once() {
        let body = json!({
            "marketplace": "etsy", "operation": "inventory", "syncId": "a/b", "itemsURL": "x",
            "items": [{"barcode": "", "quantity": -1}, {"barcode": "B", "quantity": 20001, "salePrice": 10, "listPrice": 5}, {"barcode": "B", "quantity": 1}],
        });
        let err = validate(&body, Some("m"), now()).unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        for f in [
            "itemsURL",
            "marketplace",
            "items[0].barcode",
            "items[0].quantity",
            "items[1].quantity",
            "items[1].listPrice",
            "items[2].barcode",
            "syncId",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        let text = err.to_string();
        assert!(text.starts_with("invalid sync request: "), "{text}");
        assert!(text.contains("unknown marketplace \"etsy\""), "{text}");
    }

    #[test]
    fn test_items_url_rules() {
        let ok = json!({"marketplace": "n11", "operation": "prices", "itemsUrl": "https://catalog.example/items?total=5", "syncId": "s1"});
        assert!(matches!(validate(&ok, None, now()).unwrap().items, ItemsSpec::Url(_)));
        for (url, needle) in [
            ("ftp://x/y", "http or https"),
            ("https://u:p@x/y", "credentials"),
            ("https://x/y?offset=3", "offset"),
            ("not a url", "not a URL"),
        ] {
            let body = json!({"marketplace": "n11", "operation": "prices", "itemsUrl": url});
            let err = validate(&body, Some("m"), now()).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
        let both = json!({"marketplace": "n11", "operation": "prices", "itemsUrl": "https://x/", "items": [{"barcode": "a", "salePrice": 1}]});
        assert!(validate(&both, Some("m"), now()).unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn test_operation_specific_item_rules() {
        let prices =
            json!({"marketplace": "trendyol", "operation": "prices", "items": [{"barcode": "a", "quantity": 3}]});
        let err = validate(&prices, Some("m"), now()).unwrap_err().to_string();
        assert!(err.contains("items[0].quantity: not allowed"), "{err}");
        assert!(err.contains("items[0].salePrice"), "{err}");
        let inventory =
            json!({"marketplace": "trendyol", "operation": "inventory", "items": [{"barcode": "a", "salePrice": 3}]});
        let err = validate(&inventory, Some("m"), now()).unwrap_err().to_string();
        assert!(err.contains("items[0].quantity: required"), "{err}");
        let catalog = json!({"marketplace": "trendyol", "operation": "inventory"});
        assert_eq!(validate(&catalog, Some("m"), now()).unwrap().items, ItemsSpec::Catalog(SyncMode::Changed));
        let full = json!({"marketplace": "trendyol", "operation": "prices", "mode": "full"});
        assert_eq!(validate(&full, Some("m"), now()).unwrap().items, ItemsSpec::Catalog(SyncMode::Full));
        for (body, needle) in [
            (json!({"marketplace": "trendyol", "operation": "prices", "mode": "all"}), "mode: must be"),
            (
                json!({"marketplace": "trendyol", "operation": "prices", "mode": "full", "itemsUrl": "https://x/"}),
                "mode: only for",
            ),
            (
                json!({"marketplace": "trendyol", "operation": "orders", "mode": "full", "since": "2026-12-01T00:00:00Z"}),
                "mode: not allowed",
            ),
        ] {
            let err = validate(&body, Some("m"), now()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let unsupported = json!({"marketplace": "trendyol", "operation": "full"});
        assert!(validate(&unsupported, Some("m"), now()).unwrap_err().to_string().contains("unknown operation"));
    }

    #[test]
    fn test_orders_since_window() {
        let ok = json!({"marketplace": "trendyol", "operation": "orders", "since": "2026-12-01T00:00:00Z"});
        let plan = validate(&ok, Some("m"), now()).unwrap();
        assert_eq!(plan.items, ItemsSpec::None);
        assert_eq!(plan.since.unwrap().unix_timestamp(), 1_764_547_200 + 365 * 86_400);
        for (since, needle) in [
            (json!("2026-12-03T00:00:00Z"), "future"),
            (json!("2026-01-01T00:00:00Z"), "90 days"),
            (json!(12), "RFC 3339"),
        ] {
            let body = json!({"marketplace": "trendyol", "operation": "orders", "since": since});
            let err = validate(&body, Some("m"), now()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let missing = json!({"marketplace": "trendyol", "operation": "orders", "items": []});
        let err = validate(&missing, Some("m"), now()).unwrap_err().to_string();
        assert!(err.contains("since: required") && err.contains("items: not allowed"), "{err}");
    }

    #[test]
    fn test_non_object_and_problem_cap() {
        assert_eq!(
            validate(&json!([1]), Some("m"), now()).unwrap_err().problems[0].message,
            "the body must be a JSON object"
        );
        let items: Vec<Value> = (0..200).map(|_| json!({})).collect();
        let body = json!({"marketplace": "trendyol", "operation": "inventory", "items": items});
        let err = validate(&body, Some("m"), now()).unwrap_err();
        assert_eq!(err.problems.len(), MAX_PROBLEMS);
        assert!(err.more > 0 && err.to_string().ends_with(&format!("and {} more", err.more)));
    }
}
