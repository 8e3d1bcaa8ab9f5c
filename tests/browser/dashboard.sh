#!/usr/bin/env bash
# Renders the operator dashboard in headless Chromium and checks its HTML.
#
# Starts the more recently built authbridge binary (AUTHBRIDGE_BIN overrides) on a free
# 127.0.0.1 port with a temporary data directory, bootstraps it and creates some traffic with
# curl. Then it checks the page served with the session cookie and saves a screenshot to
# docs/dashboard.png (SCREENSHOT overrides). Installs Debian's chromium with apt-get
# when no chromium is on PATH. Exits non-zero and prints what failed on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCREENSHOT=${SCREENSHOT:-$ROOT/docs/dashboard.png}
WORK=$(mktemp -d)
SERVER_PID=""

fail() {
    echo "dashboard.sh: FAILED: $*" >&2
    if [[ -f $WORK/server.log ]]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 20 "$WORK/server.log" >&2
    fi
    exit 1
}

cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

BIN=${AUTHBRIDGE_BIN:-}
if [[ -z $BIN ]]; then
    # The more recently built of the release and debug binaries.
    for candidate in "$ROOT/target/release/authbridge" "$ROOT/target/debug/authbridge"; do
        if [[ -x $candidate && ( -z $BIN || $candidate -nt $BIN ) ]]; then
            BIN=$candidate
        fi
    done
fi
[[ -n $BIN && -x $BIN ]] || fail "no authbridge binary: run cargo build --release first or set AUTHBRIDGE_BIN"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $CHROMIUM ]]; then
    echo "installing chromium with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >"$WORK/apt.log" 2>&1 \
        || fail "apt-get install chromium failed: $(tail -n 3 "$WORK/apt.log")"
    CHROMIUM=$(command -v chromium) || fail "chromium is still missing after apt-get install"
fi

# A free port: bind port 0 and read the port the kernel picked.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
    || fail "cannot find a free port"
BASE="http://127.0.0.1:$PORT"

export AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$PORT"
export AUTHBRIDGE_DATABASE__DATA_DIR="$WORK/data"
export AUTHBRIDGE_LOGGING__LEVEL=warn
CONFIG=(--config "$WORK/empty.toml")
: >"$WORK/empty.toml"

BOOT=$("$BIN" "${CONFIG[@]}" bootstrap --name "acme <root>" --json 2>"$WORK/bootstrap.log") \
    || fail "bootstrap failed: $(cat "$WORK/bootstrap.log")"
TENANT=$(jq -r .tenantId <<<"$BOOT")
KEY=$(jq -r .apiKey <<<"$BOOT")
[[ -n $TENANT && -n $KEY && $KEY != null ]] || fail "bootstrap printed no tenantId and apiKey: $BOOT"

"$BIN" "${CONFIG[@]}" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited during startup"
    sleep 0.1
done
curl -fsS "$BASE/healthz" >/dev/null || fail "the server did not become healthy on $BASE"

# Traffic: a sub-tenant, a reader key verified a few times, and some failures.
SUB=$(curl -fsS -X POST "$BASE/v1/tenants" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "{\"name\":\"billing <script>x</script>\",\"parentId\":\"$TENANT\"}" \
    | jq -r .id) || fail "creating a sub-tenant failed"
READER=$(curl -fsS -X POST "$BASE/v1/tenants/$SUB/api-keys" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"role":"reader","mode":"live"}' | jq -r .key) \
    || fail "creating an API key failed"
for _ in 1 2 3 4 5; do
    curl -fsS -X POST "$BASE/v1/verify" -H "Authorization: Bearer $READER" >/dev/null \
        || fail "verifying the reader key failed"
done
for _ in 1 2; do
    curl -sS -o /dev/null -X POST "$BASE/v1/verify" -H "Authorization: Bearer ab_not_a_real_key"
done

# The key is accepted once in the query and exchanged for a session cookie.
HEADERS=$(curl -sS -o /dev/null -D - "$BASE/dashboard?key=$KEY") || fail "GET /dashboard?key= failed"
grep -qi '^HTTP/1.1 303' <<<"$HEADERS" || fail "GET /dashboard?key= did not redirect: $HEADERS"
grep -qi '^location: /dashboard' <<<"$HEADERS" || fail "the redirect does not go to /dashboard"
COOKIE_LINE=$(grep -i '^set-cookie:' <<<"$HEADERS" | tr -d '\r') || fail "no Set-Cookie header"
grep -q 'HttpOnly' <<<"$COOKIE_LINE" || fail "the session cookie is not HttpOnly: $COOKIE_LINE"
grep -q 'SameSite=Strict' <<<"$COOKIE_LINE" || fail "the session cookie is not SameSite=Strict"
if grep -qF "$KEY" <<<"$COOKIE_LINE"; then fail "the session cookie contains the admin key"; fi
COOKIE=$(sed -E 's/^[Ss]et-[Cc]ookie: *([^;]*).*/\1/' <<<"$COOKIE_LINE")

# Events are written in batches, so the writer gets time to commit the traffic above.
sleep 1
HTML=$(curl -fsS -H "Cookie: $COOKIE" "$BASE/dashboard") || fail "GET /dashboard with the cookie failed"
for needle in '<svg' 'id="phases"' 'id="traffic"' 'id="burndown"' 'id="inventory"' \
    'id="readiness"' 'id="stalest"' 'id="failures"' 'billing &lt;script&gt;x&lt;/script&gt;'; do
    grep -qF "$needle" <<<"$HTML" || fail "the dashboard HTML lacks $needle"
done
if grep -qF '<script>' <<<"$HTML"; then fail "the dashboard HTML contains an unescaped <script>"; fi
if grep -qE '<(link|script|img)[^>]+(src|href)="https?://' <<<"$HTML"; then
    fail "the dashboard HTML loads an external asset"
fi
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/dashboard")
[[ $STATUS == 401 ]] || fail "GET /dashboard without credentials returned $STATUS, expected 401"

mkdir -p "$(dirname "$SCREENSHOT")"
rm -f "$WORK/shot.png"
timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d -p "$WORK")" --screenshot="$WORK/shot.png" --window-size=1366,900 \
    "$BASE/dashboard?key=$KEY" >"$WORK/chromium.log" 2>&1 \
    || fail "chromium failed: $(tail -n 5 "$WORK/chromium.log")"
[[ -s $WORK/shot.png ]] || fail "chromium wrote no screenshot: $(tail -n 5 "$WORK/chromium.log")"
cp "$WORK/shot.png" "$SCREENSHOT"
echo "dashboard.sh: ok, screenshot in $SCREENSHOT"
