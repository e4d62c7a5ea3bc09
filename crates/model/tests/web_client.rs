//! The dashboard page (`web/src/lib/client.js`) is JavaScript and cannot use this crate, so it
//! keeps its own copies of the names it sends and joins. This test fails when a copy differs
//! from the definition here.

use meschain_model::groups::METRICS;
use meschain_model::hubs::Hub;
use meschain_model::marketplace::Marketplace;

fn client_js() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/src/lib/client.js");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The quoted strings of `export const NAME = ...;` (up to the first `;`).
fn exported_strings(js: &str, name: &str) -> Vec<String> {
    let start = js.find(&format!("export const {name} =")).unwrap_or_else(|| panic!("client.js exports no {name}"));
    let decl = &js[start..start + js[start..].find(';').expect("a declaration ends with ;")];
    decl.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn test_page_names_are_the_models() {
    let js = client_js();
    assert_eq!(exported_strings(&js, "HUBS"), Hub::ALL.map(|h| h.name().to_string()));
    assert_eq!(exported_strings(&js, "MARKETPLACES"), Marketplace::ALL.map(|m| m.name().to_string()));
    assert_eq!(exported_strings(&js, "DASHBOARD_METRICS"), METRICS.map(str::to_string));
}
