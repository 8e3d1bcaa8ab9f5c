#!/usr/bin/env bash
# Benchmarks authbridge against its baselines and a peer, and writes BENCHMARKS.md.
#
# Builds the daemon and bench/baseline in release mode, measures the raw aws-lc-rs sign and
# verify rates in-process, then drives HTTP load with wrk against:
#   - the bare axum baseline (bench/baseline, fixed 200 JSON on POST /v1/verify),
#   - authbridge POST /v1/verify with a native API key, and with native JWTs signed with RS256,
#     ES256 and EdDSA (one fresh daemon and data directory per algorithm),
#   - POST /v1/verify with a legacy RS256 JWT (jwt adapter, inline JWKS) and a legacy API key
#     (sql_keys adapter on SQLite, SHA-256 hex), both served from the adapters' caches,
#   - client_credentials issuance (POST /oauth/token) and introspection (POST /oauth/introspect),
#   - node oidc-provider's token and introspection endpoints (bench/peer).
# Every case runs once at full load (wrk -t2 -c32) and once paced at half the rate it reached.
# All servers listen on 127.0.0.1 ports chosen at start, and are stopped on exit.
#
# Settings (environment):
#   BENCH_SECONDS   duration of each wrk run, in seconds (default 10)
#   BENCH_OUTPUT    report path (default BENCHMARKS.md in the repository root)
#   BENCH_PEER      0 skips the oidc-provider comparison (default 1)
#   BENCH_PROFILE   0 skips the perf profiles (default 1; skipped anyway when perf cannot record)
#   BENCH_NOTE      a line placed at the top of the report, e.g. about a shared machine
#   BENCH_COMMIT    commit named in the report when the repository root is not a git checkout
#   BENCH_MEMORY    1 also runs bench/memory.sh (about 5 minutes) and writes bench/memory.md
#   BENCH_SOAK      1 also runs bench/soak.sh (about 12 minutes) and writes bench/soak.md
# Without them, the report includes bench/memory.md and bench/soak.md of earlier runs as they are.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SECONDS_PER_CASE=${BENCH_SECONDS:-10}
OUTPUT=${BENCH_OUTPUT:-$ROOT/BENCHMARKS.md}
RUN_PEER=${BENCH_PEER:-1}
RUN_PROFILE=${BENCH_PROFILE:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
THREADS=2
CONNECTIONS=32
# Pause of each connection between requests in the half-rate runs, in milliseconds. wrk's
# delay() takes whole milliseconds, so the rate is set by the number of connections.
PACING_DELAY_MS=10

WORK=$(mktemp -d /tmp/authbridge-bench.XXXXXX)
# Raw wrk outputs, crypto rates and profiles of the last run, kept for bench/report.py.
RESULTS="$BENCH/results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
SERVER_PIDS=()

log() { echo "bench: $*" >&2; }

cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Prints a TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits up to 30 s until URL returns any HTTP status, and fails after that.
wait_for_http() {
    local url=$1 attempt
    for attempt in $(seq 1 300); do
        if curl -s -o /dev/null "$url"; then
            return 0
        fi
        sleep 0.1
    done
    log "no answer from $url after 30 s"
    return 1
}

# Prints member $1 of the JSON object on standard input.
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

stop_server() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# --- Tools and builds -----------------------------------------------------------------------

if ! command -v wrk >/dev/null; then
    log "installing wrk with apt-get"
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
for tool in curl python3 cargo openssl; do
    command -v "$tool" >/dev/null || { log "$tool is required but not installed"; exit 1; }
done

log "building authbridge and bench/baseline in release mode"
(cd "$ROOT" && cargo build --release --quiet)
(cd "$BENCH/baseline" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet)
AUTHBRIDGE="$TARGET_DIR/release/authbridge"
BASELINE="$TARGET_DIR/release/baseline"
CRYPTO_RATES="$TARGET_DIR/release/crypto-rates"

CORES=$(nproc)
log "measuring raw aws-lc-rs sign and verify rates on one thread"
"$CRYPTO_RATES" 2 >"$RESULTS/crypto.json"

# --- Load runs ------------------------------------------------------------------------------

# Runs wrk against URL with a Lua script and stores its output as RESULTS/NAME.max.txt, then
# runs it again paced at half the measured rate and stores RESULTS/NAME.half.txt. The
# environment of the call (BENCH_CREDENTIAL, BENCH_PATH, ...) reaches the Lua script.
measure() {
    local name=$1 script=$2 url=$3
    log "$name: full load for ${SECONDS_PER_CASE}s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_CASE}s" --latency -s "$script" "$url" \
        >"$RESULTS/$name.max.txt"
    local rate
    rate=$(awk '/^Requests\/sec:/ {print $2}' "$RESULTS/$name.max.txt")
    if [[ -z "$rate" ]]; then
        log "$name: wrk printed no Requests/sec; output:"
        cat "$RESULTS/$name.max.txt" >&2
        return 1
    fi
    # Each paced connection sends about 1000 / (delay + latency) requests per second.
    local connections
    connections=$(python3 -c 'import sys; r, d, t = map(float, sys.argv[1:]); print(max(int(t), round(r / 2 * d / 1000)))' \
        "$rate" "$PACING_DELAY_MS" "$THREADS")
    log "$name: paced at about half of $rate requests/s ($connections connections, ${PACING_DELAY_MS} ms apart)"
    BENCH_DELAY_MS=$PACING_DELAY_MS wrk -t"$THREADS" -c"$connections" -d"${SECONDS_PER_CASE}s" --latency \
        -s "$script" "$url" >"$RESULTS/$name.half.txt"
}

# Records a CPU profile of PID while NAME runs at full load, when perf can record here.
profile() {
    local name=$1 pid=$2 script=$3 url=$4
    [[ "$RUN_PROFILE" == 1 && -n "${PERF_OK:-}" ]] || return 0
    log "$name: recording a perf profile of the daemon"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_CASE}s" -s "$script" "$url" >/dev/null &
    local load=$!
    sleep 1
    perf record -q -F 499 -g -p "$pid" -o "$WORK/$name.perf.data" -- sleep $((SECONDS_PER_CASE > 3 ? SECONDS_PER_CASE - 2 : 1)) \
        >/dev/null 2>&1 || true
    wait "$load" || true
    {
        perf report -q --stdio --no-children --sort comm -g none -i "$WORK/$name.perf.data" 2>/dev/null
        perf report -q --stdio --no-children --sort dso,symbol --percent-limit 1.5 -g none \
            -i "$WORK/$name.perf.data" 2>/dev/null
    } | sed -e 's/[[:space:]-]*$//' -e '/^$/d' | head -40 >"$RESULTS/$name.perf.txt" || true
}

if [[ "$RUN_PROFILE" == 1 ]] && command -v perf >/dev/null \
    && perf record -q -o "$WORK/probe.perf.data" -- true >/dev/null 2>&1; then
    PERF_OK=1
else
    log "perf cannot record on this machine (or BENCH_PROFILE=0): no profiles"
    echo "perf record failed or was turned off; see perf_event_paranoid" >"$RESULTS/perf.unavailable"
fi

# The bare axum baseline.
BASELINE_PORT=$(free_port)
"$BASELINE" "127.0.0.1:$BASELINE_PORT" 2>"$WORK/baseline.log" &
BASELINE_PID=$!
SERVER_PIDS+=("$BASELINE_PID")
wait_for_http "http://127.0.0.1:$BASELINE_PORT/v1/verify"
BENCH_CREDENTIAL=baseline measure baseline "$BENCH/verify.lua" "http://127.0.0.1:$BASELINE_PORT"
stop_server "$BASELINE_PID"

# Starts authbridge with signing algorithm $1 on a fresh data directory, after `bootstrap`.
# With $2 = legacy, `serve` also loads the legacy adapters, which map to the root tenant and
# so are written only once bootstrap has created it. Sets DAEMON_PID, AB (base URL), ADMIN_KEY
# and ROOT_TENANT.
start_daemon() {
    local algorithm=$1 adapters=${2:-}
    local port
    port=$(free_port)
    export AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$port"
    export AUTHBRIDGE_DATABASE__DATA_DIR="$WORK/data-$algorithm-$adapters-$port"
    export AUTHBRIDGE_SIGNING__ALGORITHM="$algorithm"
    export AUTHBRIDGE_LOGGING__LEVEL=warn
    local boot
    boot=$("$AUTHBRIDGE" bootstrap --json 2>>"$WORK/daemon.log")
    ADMIN_KEY=$(echo "$boot" | json_field apiKey)
    ROOT_TENANT=$(echo "$boot" | json_field tenantId)
    local -a config_arguments=()
    if [[ "$adapters" == legacy ]]; then
        write_legacy_config "$ROOT_TENANT"
        config_arguments=(--config "$WORK/legacy.toml")
    fi
    "$AUTHBRIDGE" "${config_arguments[@]}" serve 2>>"$WORK/daemon.log" &
    DAEMON_PID=$!
    SERVER_PIDS+=("$DAEMON_PID")
    AB="http://127.0.0.1:$port"
    wait_for_http "$AB/healthz"
}

# Creates the tenant `acme`, a machine with the role `reader` and a live API key in it, and a
# token for the machine. Sets TENANT, CLIENT_ID, CLIENT_SECRET, API_KEY and TOKEN.
create_credentials() {
    TENANT=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        -d '{"name":"acme"}' "$AB/v1/tenants" | json_field id)
    local machine
    machine=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        -d '{"name":"billing","roles":{"'"$TENANT"'":["reader"]}}' "$AB/v1/tenants/$TENANT/machines")
    CLIENT_ID=$(echo "$machine" | json_field clientId)
    CLIENT_SECRET=$(echo "$machine" | json_field clientSecret)
    API_KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        -d '{"role":"readonly","mode":"live"}' "$AB/v1/tenants/$TENANT/api-keys" | json_field key)
    TOKEN=$(curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
        "$AB/oauth/token" | json_field access_token)
}

# Fails unless CREDENTIAL verifies as valid, so a misconfigured case is never timed.
check_valid() {
    local name=$1 credential=$2 answer
    answer=$(curl -s -X POST -H "Authorization: Bearer $credential" "$AB/v1/verify")
    if [[ "$(echo "$answer" | json_field valid)" != True ]]; then
        log "$name: the credential does not verify: $answer"
        return 1
    fi
}

# Prints the `alg` of the JWT header of $1.
jwt_algorithm() {
    python3 -c 'import base64, json, sys; h = sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["alg"])' "$1"
}

for algorithm in RS256 ES256 EdDSA; do
    start_daemon "$algorithm"
    create_credentials
    if [[ "$(jwt_algorithm "$TOKEN")" != "$algorithm" ]]; then
        log "the daemon signed with $(jwt_algorithm "$TOKEN"), expected $algorithm"
        exit 1
    fi
    check_valid "jwt-$algorithm" "$TOKEN"
    BENCH_CREDENTIAL=$TOKEN measure "jwt-$algorithm" "$BENCH/verify.lua" "$AB"
    if [[ "$algorithm" == RS256 ]]; then
        check_valid api-key "$API_KEY"
        BENCH_CREDENTIAL=$API_KEY measure api-key "$BENCH/verify.lua" "$AB"
        BENCH_PATH=/oauth/token BENCH_BASIC="$CLIENT_ID:$CLIENT_SECRET" BENCH_FORM=grant_type=client_credentials \
            measure issue-RS256 "$BENCH/form.lua" "$AB"
        BENCH_PATH=/oauth/introspect BENCH_BASIC="$CLIENT_ID:$CLIENT_SECRET" BENCH_FORM="token=$TOKEN" \
            measure introspect "$BENCH/form.lua" "$AB"
        BENCH_CREDENTIAL=$API_KEY profile api-key "$DAEMON_PID" "$BENCH/verify.lua" "$AB"
        BENCH_CREDENTIAL=$TOKEN profile jwt-RS256 "$DAEMON_PID" "$BENCH/verify.lua" "$AB"
        BENCH_PATH=/oauth/token BENCH_BASIC="$CLIENT_ID:$CLIENT_SECRET" BENCH_FORM=grant_type=client_credentials \
            profile issue-RS256 "$DAEMON_PID" "$BENCH/form.lua" "$AB"
    fi
    stop_server "$DAEMON_PID"
done

# --- Legacy adapters ------------------------------------------------------------------------

# A legacy RS256 issuer: a key pair, its JWKS and one token, made by bench/legacy.py, and a
# legacy API key table in SQLite with one key stored as its SHA-256 hex digest.
log "creating the legacy issuer and the legacy key table"
python3 "$BENCH/legacy.py" "$WORK/legacy" >"$WORK/legacy.json"
LEGACY_TOKEN=$(json_field token <"$WORK/legacy.json")
LEGACY_API_KEY=$(json_field api_key <"$WORK/legacy.json")
LEGACY_JWKS=$(json_field jwks_toml <"$WORK/legacy.json")

# Writes the adapter config, mapping every legacy credential to tenant $1 with the role reader.
write_legacy_config() {
    local tenant=$1
    cat >"$WORK/legacy.toml" <<EOF
[[adapters]]
name = "bench-legacy-jwt"
kind = "jwt"
issuers = ["https://legacy.bench.invalid/"]
audiences = ["legacy-api"]
algorithms = ["RS256"]
jwks = $LEGACY_JWKS

[adapters.mapping]
tenant = { default = "$tenant" }
roles = { default = ["reader"] }

[[adapters]]
name = "bench-legacy-keys"
kind = "sql_keys"
url = "sqlite://$WORK/legacy/keys.db"
pattern = '^lk_(?P<lookup>[a-z0-9]{8})_(?P<secret>[A-Za-z0-9]{32})\$'
sample = "lk_abcdefgh_0123456789abcdef0123456789ABCDEF"
query = "SELECT hash, revoked, owner FROM api_keys WHERE prefix = \$1"
columns = { hash = "hash", revoked = "revoked", owner = "owner" }
hash = { scheme = "sha256", encoding = "hex" }
cache_seconds = 300

[adapters.mapping]
tenant = { default = "$tenant" }
roles = { default = ["reader"] }
EOF
}

start_daemon RS256 legacy
check_valid legacy-jwt "$LEGACY_TOKEN"
BENCH_CREDENTIAL=$LEGACY_TOKEN measure legacy-jwt "$BENCH/verify.lua" "$AB"
check_valid legacy-api-key "$LEGACY_API_KEY"
BENCH_CREDENTIAL=$LEGACY_API_KEY measure legacy-api-key "$BENCH/verify.lua" "$AB"
stop_server "$DAEMON_PID"

# --- Peer: node oidc-provider ---------------------------------------------------------------

if [[ "$RUN_PEER" == 1 ]]; then
    if command -v node >/dev/null && command -v npm >/dev/null \
        && (cd "$BENCH/peer" && npm install --no-audit --no-fund --silent >"$WORK/npm.log" 2>&1); then
        PEER_PORT=$(free_port)
        PEER_SECRET=peer-bench-secret-0123456789abcdef
        node "$BENCH/peer/server.mjs" "$PEER_PORT" bench "$PEER_SECRET" >"$WORK/peer.log" 2>&1 &
        PEER_PID=$!
        SERVER_PIDS+=("$PEER_PID")
        PEER="http://127.0.0.1:$PEER_PORT"
        wait_for_http "$PEER/.well-known/openid-configuration"
        PEER_TOKEN=$(curl -sf -u "bench:$PEER_SECRET" -d grant_type=client_credentials "$PEER/token" \
            | json_field access_token)
        BENCH_PATH=/token BENCH_BASIC="bench:$PEER_SECRET" BENCH_FORM=grant_type=client_credentials \
            measure peer-issue "$BENCH/form.lua" "$PEER"
        BENCH_PATH=/token/introspection BENCH_BASIC="bench:$PEER_SECRET" BENCH_FORM="token=$PEER_TOKEN" \
            measure peer-introspect "$BENCH/form.lua" "$PEER"
        stop_server "$PEER_PID"
    else
        log "npm install of oidc-provider failed or node is missing: no peer comparison"
        cp "$WORK/npm.log" "$RESULTS/peer.unavailable" 2>/dev/null || echo "node or npm missing" >"$RESULTS/peer.unavailable"
    fi
fi

# --- Memory and soak ------------------------------------------------------------------------

if [[ "${BENCH_MEMORY:-0}" == 1 ]]; then
    log "running bench/memory.sh"
    "$BENCH/memory.sh" >"$WORK/memory.md"
    mv "$WORK/memory.md" "$BENCH/memory.md"
fi
if [[ "${BENCH_SOAK:-0}" == 1 ]]; then
    log "running bench/soak.sh"
    SOAK_OUTPUT="$BENCH/soak.md" "$BENCH/soak.sh" >/dev/null
fi

# --- Report ---------------------------------------------------------------------------------

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "${BENCH_COMMIT:-unknown}")
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    COMMIT="$COMMIT (with uncommitted changes in src/ or Cargo files)"
fi
python3 "$BENCH/report.py" \
    --results "$RESULTS" \
    --cores "$CORES" \
    --seconds "$SECONDS_PER_CASE" \
    --threads "$THREADS" \
    --connections "$CONNECTIONS" \
    --pacing-delay-ms "$PACING_DELAY_MS" \
    --commit "$COMMIT" \
    --note "${BENCH_NOTE:-}" \
    --limits "$BENCH/limits.md" \
    --section "$BENCH/memory.md" \
    --section "$BENCH/soak.md" \
    --output "$OUTPUT"
log "wrote $OUTPUT"
