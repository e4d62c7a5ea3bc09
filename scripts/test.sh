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

step "cargo test"
cargo test --workspace --locked

if [ -f tests/package.json ]; then
  step "end-to-end tests (node --test)"
  (cd tests && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1 e2e/)
fi
