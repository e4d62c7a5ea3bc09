#!/usr/bin/env bash
# Installs the infrastructure and packaging tools into .tools/venv (inside the repository, git-ignored):
#   bash scripts/tools.sh checkov    # checkov (brings pycep-parser) and pytest
#   bash scripts/tools.sh zigbuild   # cargo-zigbuild and Zig
# Pinned versions; a second run with everything present does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV=checkov==3.3.30
PYTEST=pytest==9.1.1
ZIGBUILD=cargo-zigbuild==0.24.0
ZIG=ziglang==0.17.1

venv=.tools/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-cache-dir "$@"; }
# Installs the pinned requirements unless every one is already there at that version.
need() {
  local frozen
  frozen=$("$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | tr 'A-Z_' 'a-z-')
  for req in "$@"; do grep -qx "$req" <<<"$frozen" || { pip "$@"; return; }; done
}

for want in "$@"; do
  case "$want" in
    checkov) need "$CHECKOV" "$PYTEST" ;;
    zigbuild) need "$ZIGBUILD" "$ZIG" ;;
    *) echo "tools.sh: unknown tool set '$want' (checkov, zigbuild)" >&2; exit 2 ;;
  esac
done
