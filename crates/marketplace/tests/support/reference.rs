//! The marketplaces' own API descriptions (`shared/reference/openapi/`, beside the checkout) are
//! reference material whose licences do not let this repository carry copies. Contract tests
//! validate the fakes' exchanges against them when the folder is there (found from the crate
//! upwards, or named by `MESCHAIN_OPENAPI_DIR`); a clone without it still runs every other check,
//! and `scripts/test.sh` says that the OpenAPI validation was skipped.
//!
//! One copy, included by path from each crate whose tests need it.

use std::path::PathBuf;

/// `rel` under the OpenAPI folder, or `None` when this checkout has no such folder.
pub fn openapi_file(rel: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MESCHAIN_OPENAPI_DIR") {
        let path = PathBuf::from(dir).join(rel);
        assert!(path.is_file(), "MESCHAIN_OPENAPI_DIR is set but {} is not a file", path.display());
        return Some(path);
    }
    let found = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/reference/openapi").join(rel))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("OpenAPI validation skipped: shared/reference/openapi/{rel} is not beside the repository");
    }
    found
}
