#!/usr/bin/env bash
# Times `authbridge import` of a generated djangorestframework-api-key table (SQLite, keys in
# the `sha512$$<hex>` form of version 3.x) with IMPORT_KEYS rows (default 1000000), using the
# release binary. Prints the import summary, the elapsed time and the peak resident size.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${IMPORT_KEYS:-1000000}"
binary="${AUTHBRIDGE:-target/release/authbridge}"
[[ -x "$binary" ]] || cargo build --release
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 bench/drf_keys.py table "$work/legacy.db" "$count"

export AUTHBRIDGE_DATABASE__DATA_DIR="$work/data" AUTHBRIDGE_LOGGING__LEVEL=warn
tenant=$("$binary" bootstrap --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenantId"])')
columns="prefix AS lookup, hashed_key, CAST(revoked AS INTEGER) AS revoked, CAST(strftime('%s', expiry_date) AS INTEGER) AS expiry_date, name, prefix"
cat > "$work/authbridge.toml" <<TOML
[[adapters]]
name = "django-keys"
preset = "drf-api-key"
url = "sqlite://$work/legacy.db"
import_query = "SELECT $columns FROM rest_framework_api_key_apikey WHERE prefix > \$1 ORDER BY prefix LIMIT \$2"
count_query = "SELECT COUNT(*) FROM rest_framework_api_key_apikey"
mapping = { tenant = { default = "$tenant" }, roles = { default = ["reader"] } }
TOML

echo "importing $count keys with $binary"
/usr/bin/time -f "elapsed %e s, peak resident %M KiB" "$binary" --config "$work/authbridge.toml" import django-keys
