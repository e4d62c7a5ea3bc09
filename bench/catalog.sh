#!/usr/bin/env bash
# The catalogue's read figures against a local MariaDB (Debian's mariadb-server) holding PRODUCTS OpenCart
# products (default 1,000,000), of which CHANGED (default 10,000) were modified after the last sync's mark:
#   - a changed-items sync: time to the first batch, products read;
#   - a full sync: products read per second;
#   - the reading process's peak RSS growth for each.
# TLS is on (a CA made here), as in Azure. Usage: bash bench/catalog.sh [PRODUCTS] [CHANGED]
set -euo pipefail
cd "$(dirname "$0")/.."
products=${1:-1000000}
changed=${2:-10000}

cargo build --release -q -p meschain-marketplace --example catalog_bench
dir=$(mktemp -d)
user=$(id -un)
cleanup() { [ -f "$dir/mysqld.pid" ] && kill "$(cat "$dir/mysqld.pid")" 2>/dev/null; sleep 1; rm -rf "$dir"; }
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server-key.pem" -out "$dir/server.csr" 2>/dev/null
echo "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$dir/san.ext"
openssl x509 -req -days 2 -CAcreateserial -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
  -out "$dir/server-cert.pem" -extfile "$dir/san.ext" 2>/dev/null
mariadb-install-db --no-defaults --auth-root-authentication-method=normal --skip-test-db --datadir="$dir/data" --user="$user" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mariadbd --no-defaults --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
  --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --user="$user" --ssl-ca="$dir/ca.pem" \
  --ssl-cert="$dir/server-cert.pem" --ssl-key="$dir/server-key.pem" --require-secure-transport=ON --skip-log-bin \
  --innodb-buffer-pool-size=256M >/dev/null 2>&1 &
sql() { mariadb --no-defaults -uroot -N -B --socket="$dir/mysqld.sock" "$@"; }
for _ in $(seq 300); do sql -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
sql -e "CREATE DATABASE opencart CHARACTER SET utf8mb4"
sql opencart < tests/fixtures/opencart/schema.sql
sql -e "CREATE USER 'reader'@'%' IDENTIFIED BY 'reader-pw' REQUIRE SSL; GRANT SELECT ON opencart.* TO 'reader'@'%';"

echo "loading $products products ($changed changed after the mark)..."
sql opencart -e "SET SESSION sql_mode = ''; INSERT INTO oc_product (product_id, model, sku, upc, ean, jan, isbn, mpn, location,
  quantity, stock_status_id, manufacturer_id, price, tax_class_id, status, date_added, date_modified)
  SELECT seq, CONCAT('M', seq), CONCAT('SKU', seq), '', CONCAT('868', LPAD(seq, 10, '0')), '', '', '', '',
    seq % 50, 7, 0, 10 + seq % 7, 0, 1, NOW() - INTERVAL 2 HOUR, NOW() - INTERVAL 2 HOUR FROM seq_1_to_${products};
  UPDATE oc_product SET date_modified = NOW() - INTERVAL 10 MINUTE WHERE product_id % (${products} DIV ${changed}) = 0 LIMIT ${changed};"
mark=$(sql opencart -e "SELECT DATE_FORMAT(NOW() - INTERVAL 1 HOUR, '%Y-%m-%d %H:%i:%s')")

export CATALOG_MYSQL_URL="mysql://reader:reader-pw@127.0.0.1:$port/opencart" CATALOG_MYSQL_CA_FILE="$dir/ca.pem"
echo "changed-items sync (mark $mark):"
target/release/examples/catalog_bench changed "$mark"
echo "full sync:"
target/release/examples/catalog_bench full
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
