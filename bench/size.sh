#!/usr/bin/env bash
# What makes the handler large: a release build with its symbols kept (into target/size, so the
# normal release build is not invalidated), then the binary's sections and its code attributed to
# crates by symbol. cargo-bloat does the same but is not installed here and would need crates.io at
# bench time; nm and size (binutils) are on every machine that builds Rust.
#
# Under fat LTO, inlined code is counted in the function it was inlined into, so the per-crate
# split is approximate: it shows where code ends up, which is what the size target is about.
#
#   bash bench/size.sh [TOP]      TOP crates to list (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
top="${1:-20}"
[[ "$top" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "usage: bash bench/size.sh [TOP crates, 1-9999]" >&2; exit 2; }
export CARGO_TARGET_DIR="$PWD/target/size"
CARGO_PROFILE_RELEASE_STRIP=none cargo build --release --quiet -p meschain-functions --bin handler
bin="$CARGO_TARGET_DIR/release/handler"
stripped="$(mktemp)"
trap 'rm -f "$stripped"' EXIT
strip -o "$stripped" "$bin"
echo "handler stripped: $(stat -c %s "$stripped") bytes (with symbols: $(stat -c %s "$bin"))"
echo
echo "sections (bytes):"
size -A "$stripped" | awk '$2 ~ /^[0-9]+$/ && $2 > 65536 { printf "  %-22s %10d\n", $1, $2 }'
echo
nm -S --size-sort -C "$bin" | python3 -c '
import re, sys, collections
top = int(sys.argv[1])
by = collections.Counter()
total = 0
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4 or parts[2] not in "tTrRdD":
        continue
    size, name = int(parts[1], 16), parts[3]
    total += size
    if parts[2] in "tT":
        # Rust paths: the first segment, after impl/trait brackets.
        m = re.match(r"^(?:<)*(?:impl )?(?:&(?:mut )?)?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)::", name)
        if m:
            crate = m.group(1)
        elif name.startswith(("sqlite3", "sqlite")):
            crate = "SQLite (C)"
        elif name.lower().startswith(("aws_lc", "bn_", "ec_", "rsa_", "sha", "aes", "evp_", "x509", "asn1", "pkcs", "ed25519", "x25519", "chacha", "gcm", "md5", "hmac", "kyber", "mlkem", "ml_kem", "ml_dsa", "dilithium", "p256", "p384", "p521", "ecdsa", "dh_", "dsa_", "cbb_", "cbs_", "crypto_", "openssl", "err_")):
            crate = "aws-lc (C)"
        else:
            crate = "other code"
    else:
        crate = "data symbols"
    by[crate] += size
print(f"code and data by crate (symbol bytes, {total} attributed):")
for crate, size in by.most_common(top):
    print(f"  {crate:<32} {size:>10}  {100 * size / total:5.1f} %")
' "$top"
