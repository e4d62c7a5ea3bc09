#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, Rust unit and integration tests, and the
# end-to-end tests that drive the real binaries with the official @microsoft/signalr client.
# Installs what it needs (npm packages) by itself; nothing is cached outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "no import cycle between modules"
python3 scripts/check-module-cycles.py

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (binaries used by the integration and end-to-end tests)"
cargo build --workspace --bins --locked

step "npm packages (the Cosmos DB server the store suite runs against, the SignalR client)"
(cd tests && npm ci --no-audit --no-fund --loglevel=error)

# As root (a container) directly, else through sudo (a CI runner's user).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "MariaDB for the catalogue tests (Debian package)"
if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null || ! command -v openssl >/dev/null; then
  # The catalogue tests start their own server (TLS certificates made with openssl) and fail,
  # never skip, without it.
  (as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server openssl) \
    || { echo "cannot install Debian's mariadb-server: the catalogue tests need mariadbd" >&2; exit 1; }
fi

step "cargo test"
# The connector tests also validate every exchange with the fakes against the marketplaces' own
# OpenAPI files, which are reference material kept beside the checkout (shared/reference/openapi/),
# not in the repository. Say plainly whether that validation runs here.
openapi_dir="${MESCHAIN_OPENAPI_DIR:-}"
if [ -z "$openapi_dir" ]; then
  d="$PWD"
  while [ "$d" != / ]; do
    if [ -d "$d/shared/reference/openapi" ]; then openapi_dir="$d/shared/reference/openapi"; break; fi
    d="$(dirname "$d")"
  done
fi
if [ -n "$openapi_dir" ]; then
  echo "marketplace OpenAPI validation: on ($openapi_dir)"
else
  echo "marketplace OpenAPI validation: SKIPPED (no shared/reference/openapi beside the checkout; set MESCHAIN_OPENAPI_DIR)"
fi
cargo test --workspace --locked

step "dashboard (web/): npm ci, unit tests, build"
(cd web && npm ci --no-audit --no-fund --loglevel=error && node --test test/ && npm run build)

step "Chromium for the browser tests (Debian package)"
if [ ! -x /usr/bin/chromium ]; then
  # The browser tests fail, never skip, without it: install it or stop here.
  (as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
    || { echo "cannot install Debian's chromium: the browser tests need /usr/bin/chromium" >&2; exit 1; }
fi

if [ -f tests/package.json ]; then
  step "end-to-end tests (node --test)"
  (cd tests && node --test --test-concurrency=1 e2e/)
fi

step "infrastructure: checkov, template tests, release package (scripts/test-infra.sh)"
bash scripts/test-infra.sh templates package
