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

python3 - "$work/legacy.db" "$count" <<'PY'
import hashlib, sqlite3, sys
path, count = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute('CREATE TABLE "rest_framework_api_key_apikey" ("id" varchar(150) NOT NULL PRIMARY KEY, "prefix" varchar(8) NOT NULL UNIQUE, "hashed_key" varchar(150) NOT NULL, "created" datetime NOT NULL, "name" varchar(50) NOT NULL, "revoked" bool NOT NULL, "expiry_date" datetime NULL)')
def rows():
    for index in range(count):
        prefix = f"{index:08d}"
        key = f"{prefix}.{hashlib.sha256(str(index).encode()).hexdigest()[:32]}"
        hashed = "sha512$$" + hashlib.sha512(key.encode()).hexdigest()
        yield (f"{prefix}.{hashed}", prefix, hashed, "2024-01-01 00:00:00", "generated", 0, None)
db.executemany('INSERT INTO "rest_framework_api_key_apikey" VALUES (?, ?, ?, ?, ?, ?, ?)', rows())
db.commit()
PY

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
