#!/usr/bin/env bash
# Walks a complete cutover from two legacy credential sources to native credentials:
# shadow -> dual -> token exchange -> sunset -> enforce -> exception -> back to dual.
#
# The legacy sources are local: an HS256 JWT issuer (legacy_issuer.py) and a
# djangorestframework-api-key table in SQLite (make_drf_keystore.py). Everything runs on
# 127.0.0.1 in a temporary directory that is deleted at the end (KEEP=1 keeps it).
#
#   examples/cutover/run.sh
#   AUTHBRIDGE=target/debug/authbridge examples/cutover/run.sh
#
# Needs bash, curl and python3. Takes about a minute, most of it waiting for the daemon to
# pick up phase changes made with the CLI (it re-reads them every 10 seconds) and for the
# sunset cutoff.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

AUTHBRIDGE=${AUTHBRIDGE:-target/release/authbridge}
if [[ ! -x $AUTHBRIDGE ]]; then
    echo "building $AUTHBRIDGE (cargo build --release)" >&2
    cargo build --release
    AUTHBRIDGE=target/release/authbridge
fi
AUTHBRIDGE=$(cd "$(dirname "$AUTHBRIDGE")" && pwd)/$(basename "$AUTHBRIDGE")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/authbridge-cutover.XXXXXX")
DAEMON_PID=""

cleanup() {
    local status=$?
    if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 ]]; then
        echo "FAILED (exit status $status). Last lines of the daemon log:" >&2
        tail -n 20 "$WORK/authbridge.log" >&2 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every authbridge command of this run uses the same database and master key, and nothing
# from the caller's environment.
unset AUTHBRIDGE_DATABASE__URL AUTHBRIDGE_SECURITY__MASTER_KEY_FILE
export AUTHBRIDGE_DATABASE__DATA_DIR="$WORK/data"
AUTHBRIDGE_SECURITY__MASTER_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export AUTHBRIDGE_SECURITY__MASTER_KEY
export AUTHBRIDGE_LOGGING__LEVEL=warn

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AB="http://127.0.0.1:$PORT"
CONFIG="$WORK/authbridge.toml"
LEGACY_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
EXCHANGE=urn:ietf:params:oauth:grant-type:token-exchange
JWT_TYPE=urn:ietf:params:oauth:token-type:jwt
API_KEY_TYPE=urn:authbridge:params:oauth:token-type:api-key

# ---------------------------------------------------------------------------------------------
# Helpers

banner() {
    printf '\n=== %s\n' "$*"
}

# Prints one top-level field of the JSON object on standard input.
json() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Runs an authbridge command. Its log lines go to the run's log and its output to the terminal.
# NOTE: in the default batched audit mode a CLI command can exit before its audit event is
# written, so the CLI runs in sync mode, which returns only after the event is committed.
authbridge() {
    AUTHBRIDGE_AUDIT__MODE=sync "$AUTHBRIDGE" --config "$CONFIG" "$@" 2>>"$WORK/cli.log"
}

rfc3339_in() {
    python3 -c 'import sys, datetime; t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=int(sys.argv[1])); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$1"
}

# Calls the admin API and prints the response body. Fails on a status of 400 or more.
admin() {
    local method=$1 path=$2 body=${3:-}
    local args=(-sS -o "$WORK/admin.body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $ADMIN_KEY")
    if [[ -n $body ]]; then
        args+=(-H 'Content-Type: application/json' -d "$body")
    fi
    local status
    status=$(curl "${args[@]}" "$AB$path")
    if ((status >= 400)); then
        echo "admin API $method $path returned $status: $(cat "$WORK/admin.body")" >&2
        return 1
    fi
    cat "$WORK/admin.body"
}

start_daemon() {
    "$AUTHBRIDGE" --config "$CONFIG" serve >>"$WORK/authbridge.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 300); do
        if curl -sf -o /dev/null "$AB/healthz"; then
            return 0
        fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            echo "authbridge serve exited during startup" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "authbridge did not respond at $AB/healthz within 30 s" >&2
    return 1
}

stop_daemon() {
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || true
    DAEMON_PID=""
}

# Prints the verify API's response for one credential on one line.
show() {
    local label=$1 credential=$2 status
    status=$(curl -sS -o "$WORK/verify.body" -D "$WORK/verify.headers" -w '%{http_code}' \
        -X POST -H "Authorization: Bearer $credential" "$AB/v1/verify")
    python3 - "$label" "$status" "$WORK/verify.body" "$WORK/verify.headers" <<'PY'
import json, sys
label, status, body_path, headers_path = sys.argv[1:]
body = json.load(open(body_path))
headers = {}
for line in open(headers_path, encoding="latin-1"):
    name, sep, value = line.partition(":")
    if sep:
        headers[name.strip().lower()] = value.strip()
fields = [
    status,
    body.get("reason", "-"),
    "source=" + str(body.get("source", "-")),
    "adapter=" + str(body.get("adapter", "-")),
    "tenant=" + str(body.get("tenantId", "-")),
]
if "deprecation" in headers:
    fields.append("Deprecation: " + headers["deprecation"])
if "sunset" in headers:
    fields.append("Sunset: " + headers["sunset"])
print(f"  {label:<26} " + "  ".join(fields))
PY
}

show_all() {
    show "legacy token (acme)" "$TOKEN_ACME"
    show "legacy token (globex)" "$TOKEN_GLOBEX"
    show "legacy key (acme)" "$KEY_ACME"
    show "legacy key (globex)" "$KEY_GLOBEX"
    show "native key (acme)" "$NATIVE_KEY"
    if [[ -n ${EXCHANGED_TOKEN:-} ]]; then
        show "exchanged token (acme)" "$EXCHANGED_TOKEN"
        show "replacement key (globex)" "$REPLACEMENT_KEY"
    fi
}

# Waits until the daemon reports PHASE for ADAPTER. A change made with the CLI reaches a
# running daemon at its next resync, at most 10 seconds later.
wait_for_phase() {
    local adapter=$1 phase=$2
    for _ in $(seq 1 150); do
        if admin GET /v1/adapters | python3 -c '
import json, sys
adapters = {a["name"]: a["phase"] for a in json.load(sys.stdin)}
sys.exit(0 if adapters.get(sys.argv[1]) == sys.argv[2] else 1)' "$adapter" "$phase"; then
            return 0
        fi
        sleep 0.1
    done
    echo "the daemon did not report phase $phase for $adapter within 15 s" >&2
    return 1
}

# Waits until CREDENTIAL gets HTTP status STATUS from the verify API.
wait_for_status() {
    local credential=$1 expected=$2
    for _ in $(seq 1 150); do
        if [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $credential" "$AB/v1/verify") == "$expected" ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "the credential did not get status $expected within 15 s" >&2
    return 1
}

# Exchanges a legacy credential at the token endpoint (RFC 8693) and prints the JSON response.
exchange() {
    local subject=$1 subject_type=$2 requested_type=$3
    curl -sS -X POST "$AB/oauth/token" \
        --data-urlencode "grant_type=$EXCHANGE" \
        --data-urlencode "subject_token=$subject" \
        --data-urlencode "subject_token_type=$subject_type" \
        --data-urlencode "requested_token_type=$requested_type"
}

# ---------------------------------------------------------------------------------------------
banner "0. Setup: legacy sources, tenants, adapters (binary $AUTHBRIDGE, port $PORT)"

TOKEN_ACME=$(python3 "$HERE/legacy_issuer.py" --secret "$LEGACY_SECRET" --org acme --client svc-billing)
TOKEN_GLOBEX=$(python3 "$HERE/legacy_issuer.py" --secret "$LEGACY_SECRET" --org globex --client svc-sync)
KEYS=$(python3 "$HERE/make_drf_keystore.py" "$WORK/legacy.sqlite3" acme:reporting globex:sync)
KEY_ACME=$(echo "$KEYS" | json acme:reporting)
KEY_GLOBEX=$(echo "$KEYS" | json globex:sync)
echo "legacy issuer: HS256 tokens for svc-billing (org acme) and svc-sync (org globex)"
echo "legacy key store: $WORK/legacy.sqlite3 with keys ${KEY_ACME%%.*}.… (acme:reporting) and ${KEY_GLOBEX%%.*}.… (globex:sync)"

printf '[server]\nlisten = "127.0.0.1:%s"\n' "$PORT" >"$CONFIG"
BOOT=$(authbridge bootstrap --json)
ADMIN_KEY=$(echo "$BOOT" | json apiKey)
echo "bootstrap: root tenant $(echo "$BOOT" | json tenantId)"

# The adapters map to tenant ids, so the tenants are created first, with the daemon running
# without adapters, and the daemon is then restarted with them.
start_daemon
ACME=$(admin POST /v1/tenants '{"name":"acme"}' | json id)
GLOBEX=$(admin POST /v1/tenants '{"name":"globex"}' | json id)
NATIVE_KEY=$(admin POST "/v1/tenants/$ACME/api-keys" '{"role":"reader","mode":"live","name":"native reader"}' | json key)
stop_daemon
echo "tenants: acme=$ACME globex=$GLOBEX; a native API key for acme"

cat >"$CONFIG" <<EOF
[server]
listen = "127.0.0.1:$PORT"

[[adapters]]
name = "legacy-idp"
kind = "jwt"
phase = "shadow"
issuers = ["https://idp.legacy.example/"]
audiences = ["orders-api"]
algorithms = ["HS256"]
hmac_secret = "$LEGACY_SECRET"

[adapters.mapping]
tenant = { claim = "org", table = { acme = "$ACME", globex = "$GLOBEX" } }
machine = { claim = "sub" }
roles = { claim = "roles" }

[[adapters]]
name = "legacy-keys"
preset = "drf-api-key"
url = "sqlite://$WORK/legacy.sqlite3"
phase = "shadow"

# The preset copies the key's name, "<org>:<purpose>", to the claim "owner".
[adapters.mapping]
tenant = { claim = "owner", regex = '^(?P<org>[a-z]+):', capture = "org", table = { acme = "$ACME", globex = "$GLOBEX" } }
machine = { claim = "owner" }
roles = { default = ["reader"] }
EOF
start_daemon
echo "adapters: legacy-idp (jwt, HS256) and legacy-keys (drf-api-key on SQLite), both configured in phase shadow"

# ---------------------------------------------------------------------------------------------
banner "1. shadow: the legacy sources decide; no headers; token exchange is closed"
show_all
echo "  exchange of the acme token: $(exchange "$TOKEN_ACME" "$JWT_TYPE" urn:ietf:params:oauth:token-type:access_token)"

# ---------------------------------------------------------------------------------------------
banner "2. authbridge phase set legacy-idp dual; authbridge phase set legacy-keys dual"
authbridge phase set legacy-idp dual >/dev/null
authbridge phase set legacy-keys dual >/dev/null
wait_for_phase legacy-idp dual
wait_for_phase legacy-keys dual
show_all

# ---------------------------------------------------------------------------------------------
banner "3. dual: clients exchange their legacy credentials (RFC 8693 at /oauth/token)"
TOKEN_ANSWER=$(exchange "$TOKEN_ACME" "$JWT_TYPE" urn:ietf:params:oauth:token-type:access_token)
KEY_ANSWER=$(exchange "$KEY_GLOBEX" "$API_KEY_TYPE" "$API_KEY_TYPE")
if [[ $TOKEN_ANSWER != *'"access_token"'* || $KEY_ANSWER != *'"access_token"'* ]]; then
    echo "  exchange refused; the next steps run without exchanged credentials:" >&2
    echo "    acme token: $TOKEN_ANSWER" >&2
    echo "    globex key: $KEY_ANSWER" >&2
else
    EXCHANGED_TOKEN=$(echo "$TOKEN_ANSWER" | json access_token)
    REPLACEMENT_KEY=$(echo "$KEY_ANSWER" | json access_token)
    echo "  acme token -> $(echo "$TOKEN_ANSWER" | json issued_token_type), expires_in $(echo "$TOKEN_ANSWER" | json expires_in) s"
    echo "  globex key -> $(echo "$KEY_ANSWER" | json issued_token_type): ${REPLACEMENT_KEY:0:30}…"
    echo "  the same key again: $(exchange "$KEY_GLOBEX" "$API_KEY_TYPE" "$API_KEY_TYPE")"
fi
show_all

# ---------------------------------------------------------------------------------------------
CUTOFF=$(rfc3339_in 20)
banner "4. authbridge phase set ADAPTER sunset --sunset-at $CUTOFF"
authbridge phase set legacy-idp sunset --sunset-at "$CUTOFF" >/dev/null
authbridge phase set legacy-keys sunset --sunset-at "$CUTOFF" >/dev/null
wait_for_phase legacy-idp sunset
wait_for_phase legacy-keys sunset
show_all

# ---------------------------------------------------------------------------------------------
banner "5. past the cutoff: sunset has become enforce on its own"
CUTOFF_UNIX=$(python3 -c 'import sys, datetime; print(int(datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()))' "$CUTOFF")
while (($(date +%s) <= CUTOFF_UNIX)); do
    sleep 1
done
wait_for_phase legacy-idp enforce
show_all
echo "  exchange of the globex token: $(exchange "$TOKEN_GLOBEX" "$JWT_TYPE" urn:ietf:params:oauth:token-type:access_token)"

# ---------------------------------------------------------------------------------------------
UNTIL=$(rfc3339_in 3600)
banner "6. authbridge phase except legacy-idp --tenant $ACME (acme) --until $UNTIL"
authbridge phase except legacy-idp --tenant "$ACME" --until "$UNTIL"
wait_for_status "$TOKEN_ACME" 200
show_all

# ---------------------------------------------------------------------------------------------
banner "7. restore: authbridge phase set legacy-idp dual; authbridge phase set legacy-keys dual"
authbridge phase set legacy-idp dual >/dev/null
authbridge phase set legacy-keys dual >/dev/null
wait_for_phase legacy-idp dual
wait_for_phase legacy-keys dual
show_all

# ---------------------------------------------------------------------------------------------
banner "8. authbridge phase list; authbridge audit verify"
authbridge phase list
stop_daemon
authbridge audit verify
