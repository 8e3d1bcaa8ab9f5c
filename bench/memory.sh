#!/usr/bin/env bash
# Measures the resident memory of `authbridge serve` with many stored keys: 1,000,000 imported
# legacy keys (a generated djangorestframework-api-key table, as in bench/import_million.sh)
# and 100,000 native API keys created through the admin API by the daemon itself.
#
# The script builds the release binary, bootstraps a fresh data directory, and generates and
# imports the legacy table. It starts `serve`, creates the native keys with wrk
# (bench/create_keys.lua) and restarts `serve`. It checks that every sampled key verifies as
# valid, then drives POST /v1/verify with wrk (bench/verify_sample.lua) over a random sample of
# both kinds while it reads VmRSS from /proc/PID/status every second. A second load cycles
# through every native key, which fills the API key cache as far as its time to live allows. At
# the end it prints a Markdown section with the peak (VmHWM) and steady-state resident memory
# and the database file sizes. Saved as bench/memory.md (`bench/memory.sh > bench/memory.md`),
# the section is included in BENCHMARKS.md by the next bench/run.sh.
#
# Settings (environment):
#   MEMORY_LEGACY_KEYS   imported legacy keys (default 1000000)
#   MEMORY_NATIVE_KEYS   native API keys (default 100000)
#   MEMORY_SAMPLE        keys of each kind in the verify load (default 2000)
#   MEMORY_LOAD_SECONDS  length of each of the two verify loads in seconds (default 60)
# The daemon listens on a free port of 127.0.0.1; everything is removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
LEGACY_KEYS=${MEMORY_LEGACY_KEYS:-1000000}
NATIVE_KEYS=${MEMORY_NATIVE_KEYS:-100000}
SAMPLE=${MEMORY_SAMPLE:-2000}
LOAD_SECONDS=${MEMORY_LOAD_SECONDS:-60}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
THREADS=2
CONNECTIONS=32

WORK=$(mktemp -d /tmp/authbridge-memory.XXXXXX)
DAEMON_PID=""
SAMPLER_PID=""

log() { echo "memory: $*" >&2; }

cleanup() {
    [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null
    [[ -n "$DAEMON_PID" ]] && kill "$DAEMON_PID" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for package in wrk sqlite3; do
    if ! command -v "$package" >/dev/null; then
        log "installing $package with apt-get"
        apt-get install -y "$package" >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y "$package" >/dev/null; }
    fi
done
for tool in wrk curl python3 sqlite3 cargo; do
    command -v "$tool" >/dev/null || { log "$tool is required but not installed"; exit 1; }
done

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Prints member $1 of the JSON object on standard input.
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Prints field $2 (such as VmRSS or VmHWM) of /proc/$1/status in KiB.
proc_kib() {
    awk -v field="$2:" '$1 == field {print $2}' "/proc/$1/status"
}

mib() {
    python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1024:.1f}")' "$1"
}

file_mib() {
    local total=0 file
    for file in "$@"; do
        [[ -f "$file" ]] && total=$((total + $(stat -c %s "$file")))
    done
    python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1048576:.1f}")' "$total"
}

start_daemon() {
    "$AUTHBRIDGE" --config "$WORK/authbridge.toml" serve 2>>"$WORK/daemon.log" &
    DAEMON_PID=$!
    local attempt
    for attempt in $(seq 1 300); do
        curl -s -o /dev/null "$AB/healthz" && return 0
        sleep 0.1
    done
    log "the daemon did not respond within 30 s; its log:"
    cat "$WORK/daemon.log" >&2
    exit 1
}

stop_daemon() {
    kill "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}

log "building the release binary"
(cd "$ROOT" && cargo build --release --quiet)
AUTHBRIDGE="$TARGET_DIR/release/authbridge"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

PORT=$(free_port)
AB="http://127.0.0.1:$PORT"
export AUTHBRIDGE_DATABASE__DATA_DIR="$WORK/data"
export AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$PORT"
export AUTHBRIDGE_LOGGING__LEVEL=warn

BOOT=$("$AUTHBRIDGE" bootstrap --json 2>>"$WORK/daemon.log")
ADMIN_KEY=$(echo "$BOOT" | json_field apiKey)
TENANT=$(echo "$BOOT" | json_field tenantId)

log "generating a legacy table of $LEGACY_KEYS keys"
python3 "$BENCH/drf_keys.py" table "$WORK/legacy.db" "$LEGACY_KEYS"
columns="prefix AS lookup, hashed_key, CAST(revoked AS INTEGER) AS revoked, CAST(strftime('%s', expiry_date) AS INTEGER) AS expiry_date, name, prefix"
cat >"$WORK/authbridge.toml" <<TOML
[[adapters]]
name = "django-keys"
preset = "drf-api-key"
url = "sqlite://$WORK/legacy.db"
import_query = "SELECT $columns FROM rest_framework_api_key_apikey WHERE prefix > \$1 ORDER BY prefix LIMIT \$2"
count_query = "SELECT COUNT(*) FROM rest_framework_api_key_apikey"
mapping = { tenant = { default = "$TENANT" }, roles = { default = ["reader"] } }
TOML

log "importing the legacy keys"
IMPORT_START=$(date +%s.%N)
"$AUTHBRIDGE" --config "$WORK/authbridge.toml" import django-keys >"$WORK/import.txt" 2>>"$WORK/daemon.log"
IMPORT_SECONDS=$(python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$IMPORT_START")
IMPORTED=$(sqlite3 "$WORK/data/authbridge.db" "SELECT COUNT(*) FROM legacy_keys")
[[ "$IMPORTED" -ge "$LEGACY_KEYS" ]] || { log "only $IMPORTED legacy keys imported"; cat "$WORK/import.txt" >&2; exit 1; }

log "creating $NATIVE_KEYS native API keys through the admin API"
start_daemon
mkdir -p "$WORK/keys"
CREATE_START=$(date +%s.%N)
# wrk runs for its whole duration even after every thread has stopped, so it is interrupted
# (SIGINT makes it print its summary) once enough keys are stored.
MEMORY_ADMIN_KEY="$ADMIN_KEY" MEMORY_TENANT="$TENANT" MEMORY_KEY_DIR="$WORK/keys" \
    MEMORY_KEYS_PER_THREAD=$(((NATIVE_KEYS + THREADS - 1) / THREADS)) \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s -s "$BENCH/create_keys.lua" "$AB" >"$WORK/create.txt" &
CREATE_PID=$!
while kill -0 "$CREATE_PID" 2>/dev/null; do
    if [[ $(cat "$WORK"/keys/native-*.txt 2>/dev/null | wc -l) -ge "$NATIVE_KEYS" ]]; then
        kill -INT "$CREATE_PID"
        break
    fi
    sleep 0.5
done
wait "$CREATE_PID" || true
CREATE_SECONDS=$(python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$CREATE_START")
cat "$WORK"/keys/native-*.txt >"$WORK/native.txt"
STORED=$(wc -l <"$WORK/native.txt")
[[ "$STORED" -ge "$NATIVE_KEYS" ]] || { log "only $STORED keys created:"; cat "$WORK/create.txt" >&2; exit 1; }
stop_daemon
NATIVE_ROWS=$(sqlite3 "$WORK/data/authbridge.db" "SELECT COUNT(*) FROM api_keys")
log "$STORED keys stored in $CREATE_SECONDS s; the api_keys table has $NATIVE_ROWS rows"

shuf -n "$SAMPLE" "$WORK/native.txt" >"$WORK/sample.txt"
python3 "$BENCH/drf_keys.py" sample "$LEGACY_KEYS" "$SAMPLE" >>"$WORK/sample.txt"
shuf -o "$WORK/sample.txt" "$WORK/sample.txt"

log "restarting serve"
start_daemon
START_RSS=$(proc_kib "$DAEMON_PID" VmRSS)

log "checking that all $(wc -l <"$WORK/sample.txt") sampled keys verify as valid"
python3 - "$PORT" "$WORK/sample.txt" <<'PY'
import http.client, json, sys
port, path = int(sys.argv[1]), sys.argv[2]
connection = http.client.HTTPConnection("127.0.0.1", port)
invalid = []
for key in open(path).read().split():
    connection.request("POST", "/v1/verify", headers={"Authorization": f"Bearer {key}"})
    response = connection.getresponse()
    body = json.loads(response.read())
    if response.status != 200 or not body.get("valid"):
        invalid.append((key[:12], response.status, body.get("reason")))
if invalid:
    sys.exit(f"{len(invalid)} sampled keys do not verify, first: {invalid[:3]}")
PY
CHECKED_RSS=$(proc_kib "$DAEMON_PID" VmRSS)

# Runs wrk with bench/verify_sample.lua over the keys in file $1 for LOAD_SECONDS, writing its
# output to file $2, while it reads VmRSS every second. Sets LOAD_RATE, LOAD_NOT_OK,
# LOAD_END_RSS (KiB) and LOAD_STEADY (the lowest and highest sample of the second half of the
# run, in MiB).
verify_load() {
    local keys=$1 output=$2
    (
        while kill -0 "$DAEMON_PID" 2>/dev/null; do
            proc_kib "$DAEMON_PID" VmRSS
            sleep 1
        done
    ) >"$output.rss" 2>/dev/null &
    SAMPLER_PID=$!
    MEMORY_SAMPLE_FILE="$keys" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${LOAD_SECONDS}s" -s "$BENCH/verify_sample.lua" "$AB" >"$output"
    LOAD_END_RSS=$(proc_kib "$DAEMON_PID" VmRSS)
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    LOAD_NOT_OK=$(awk '/^responses other than 200:/ {print $5}' "$output")
    LOAD_RATE=$(awk '/^Requests\/sec:/ {print $2}' "$output")
    LOAD_STEADY=$(python3 - "$output.rss" <<'PY'
import sys
samples = [int(line) for line in open(sys.argv[1]) if line.strip()]
second_half = samples[len(samples) // 2:] or samples
print(f"{min(second_half) / 1024:.1f} to {max(second_half) / 1024:.1f}")
PY
)
}

log "verify load over the sample for ${LOAD_SECONDS}s"
verify_load "$WORK/sample.txt" "$WORK/load-sample.txt"
SAMPLE_RATE=$LOAD_RATE SAMPLE_NOT_OK=$LOAD_NOT_OK SAMPLE_END_RSS=$LOAD_END_RSS SAMPLE_STEADY=$LOAD_STEADY
SAMPLE_PEAK_RSS=$(proc_kib "$DAEMON_PID" VmHWM)

log "verify load over all $STORED native keys for ${LOAD_SECONDS}s"
cat "$WORK/native.txt" >"$WORK/all.txt"
python3 "$BENCH/drf_keys.py" sample "$LEGACY_KEYS" "$SAMPLE" >>"$WORK/all.txt"
shuf -o "$WORK/all.txt" "$WORK/all.txt"
verify_load "$WORK/all.txt" "$WORK/load-all.txt"
ALL_RATE=$LOAD_RATE ALL_NOT_OK=$LOAD_NOT_OK ALL_END_RSS=$LOAD_END_RSS ALL_STEADY=$LOAD_STEADY
PEAK_RSS=$(proc_kib "$DAEMON_PID" VmHWM)
stop_daemon

DATA="$WORK/data/authbridge.db"
cat <<MARKDOWN
## Serve-time memory

\`bench/memory.sh\` on $(date -u +%Y-%m-%d), commit $COMMIT, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM,
SQLite. Settings: MEMORY_LEGACY_KEYS=$LEGACY_KEYS, MEMORY_NATIVE_KEYS=$NATIVE_KEYS,
MEMORY_SAMPLE=$SAMPLE, MEMORY_LOAD_SECONDS=$LOAD_SECONDS; default configuration
(\`api_keys.cache_capacity\` 100000, adapter cache capacity 10000).

| | value |
|---|---|
| imported legacy keys | $IMPORTED (import took $IMPORT_SECONDS s) |
| native API keys created through the admin API | $NATIVE_ROWS rows ($STORED keys stored by the client, in $CREATE_SECONDS s) |
| resident size after restart | $(mib "$START_RSS") MiB |
| resident size after checking the sample ($SAMPLE native and $SAMPLE legacy keys, all valid) | $(mib "$CHECKED_RSS") MiB |
| load 1, the sample: wrk -t$THREADS -c$CONNECTIONS, $LOAD_SECONDS s | $SAMPLE_RATE requests/s, responses other than 200: $SAMPLE_NOT_OK |
| load 1: steady state, second half (lowest to highest sample) | $SAMPLE_STEADY MiB |
| load 1: at the end, and peak so far (VmHWM) | $(mib "$SAMPLE_END_RSS") MiB, $(mib "$SAMPLE_PEAK_RSS") MiB |
| load 2, all $STORED native keys and $SAMPLE legacy keys: wrk -t$THREADS -c$CONNECTIONS, $LOAD_SECONDS s | $ALL_RATE requests/s, responses other than 200: $ALL_NOT_OK |
| load 2: steady state, second half (lowest to highest sample) | $ALL_STEADY MiB |
| load 2: at the end | $(mib "$ALL_END_RSS") MiB |
| peak resident size of the whole run (VmHWM) | $(mib "$PEAK_RSS") MiB |
| authbridge.db (with -wal and -shm) | $(file_mib "$DATA" "$DATA-wal" "$DATA-shm") MiB |
| legacy.db | $(file_mib "$WORK/legacy.db") MiB |
MARKDOWN
