#!/usr/bin/env bash
# The infrastructure and packaging tests (scripts/test.sh runs both parts):
#   bash scripts/test-infra.sh templates   # checkov on infra/ and the template tests (~1 min)
#   bash scripts/test-infra.sh package     # builds the release package and checks it (a release build: minutes)
# Installs checkov, pytest, cargo-zigbuild and Zig from PyPI into .tools/venv (inside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(templates package)
bash scripts/tools.sh checkov
pytest() { .tools/venv/bin/python -m pytest -p no:cacheprovider -q "$@"; }
for part in "${parts[@]}"; do
  case "$part" in
    templates) pytest infra/tests/test_checkov.py infra/tests/test_templates.py infra/tests/test_upstream_key.py infra/tests/test_workflow.py ;;
    package) pytest infra/tests/test_package.py ;;
    *) echo "test-infra.sh: unknown part '$part' (templates, package)" >&2; exit 2 ;;
  esac
done
