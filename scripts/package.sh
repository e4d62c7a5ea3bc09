#!/usr/bin/env bash
# Builds the deployable Function App: a release `handler` for Linux x86-64 and the app folder the Functions host
# runs as is (host.json, one folder per function holding its function.json, `handler` with its execute bit,
# nothing else), plus its zip for `func azure functionapp publish <app> --no-build` or zip deploy.
#
#   bash scripts/package.sh            # -> dist/app/ and dist/meschain-functions.zip
#
# Target: static x86_64-unknown-linux-musl when its standard library is installed or `rustup target add` gets it;
# otherwise (no rustup server reachable) x86_64-unknown-linux-gnu with a glibc 2.28 baseline. Either way
# cargo-zigbuild links with Zig (both from PyPI, installed into .tools/ inside the repository): Zig brings the
# musl C toolchain that crates with C code (ring) need, and the old glibc's symbol versions for the fallback.
# Override with PACKAGE_TARGET=musl|glibc.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

GLIBC_BASELINE=2.28
MUSL=x86_64-unknown-linux-musl
GNU=x86_64-unknown-linux-gnu
DIST=${PACKAGE_DIST:-$root/dist}
APP=$DIST/app
ZIP=$DIST/meschain-functions.zip

log() { printf 'package: %s\n' "$*" >&2; }

musl_installed() { rustup target list --installed 2>/dev/null | grep -qx "$MUSL"; }

pick_target() {
  case "${PACKAGE_TARGET:-auto}" in
    musl) echo musl ;;
    glibc) echo glibc ;;
    auto)
      if musl_installed; then echo musl; return; fi
      # One bounded attempt: rustup hangs rather than fails when its server is unreachable.
      if command -v rustup >/dev/null && timeout 60 rustup target add "$MUSL" >/dev/null 2>&1 && musl_installed; then
        echo musl
      else
        echo glibc
      fi ;;
    *) log "PACKAGE_TARGET must be musl, glibc or auto"; exit 2 ;;
  esac
}

# cargo-zigbuild and Zig (both from PyPI) in a venv under .tools/, nothing outside the repository.
ensure_zigbuild() {
  bash scripts/tools.sh zigbuild >&2
  export PATH="$root/.tools/venv/bin:$PATH"
  # Their caches too stay in the repository.
  export CARGO_ZIGBUILD_CACHE_DIR="$root/.tools/cache/cargo-zigbuild"
  export ZIG_GLOBAL_CACHE_DIR="$root/.tools/cache/zig" ZIG_LOCAL_CACHE_DIR="$root/.tools/cache/zig"
}

kind=$(pick_target)
ensure_zigbuild
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
if [ "$kind" = musl ]; then
  log "building handler for $MUSL (static)"
  cargo zigbuild --release --locked -p meschain-functions --bin handler --target "$MUSL" >&2
  binary=target/$MUSL/release/handler
else
  reason="the musl target is not available"
  [ "${PACKAGE_TARGET:-auto}" = glibc ] && reason="PACKAGE_TARGET=glibc"
  log "$reason: building handler for $GNU with a glibc $GLIBC_BASELINE baseline"
  cargo zigbuild --release --locked -p meschain-functions --bin handler --target "$GNU.$GLIBC_BASELINE" >&2
  binary=target/$GNU/release/handler
fi

rm -rf "$APP" "$ZIP"
mkdir -p "$APP"
cp host.json "$APP/"
functions=()
for f in */function.json; do
  name=${f%/function.json}
  mkdir -p "$APP/$name"
  cp "$f" "$APP/$name/function.json"
  functions+=("$name")
done
exe=$(python3 -c 'import json,sys; print(json.load(open("host.json"))["customHandler"]["description"]["defaultExecutablePath"])')
install -m 0755 "$binary" "$APP/$exe"

# Zip with Python rather than zip(1): fixed timestamps and order (reproducible), and the Unix mode stored in
# each entry so the execute bit survives whatever unpacks it.
python3 - "$APP" "$ZIP" <<'PY'
import os, sys, zipfile
app, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for dirpath, dirnames, filenames in os.walk(app):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            info = zipfile.ZipInfo(os.path.relpath(path, app), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | (os.stat(path).st_mode & 0o777)) << 16
            info.create_system = 3  # Unix, so the mode above is honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY

size() { stat -c %s "$1"; }
log "functions: ${functions[*]}"
log "handler: $(size "$APP/$exe") bytes ($kind)"
log "zip: $(size "$ZIP") bytes -> $ZIP"
echo "$ZIP"
