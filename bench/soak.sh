#!/usr/bin/env bash
# Soak test: drives authbridge at about 70 % of its maximum verify throughput for a long run.
# It checks that no request fails, that every verify decision has its audit event, and that
# the daemon's resident memory stays flat after a warm-up.
#
# Builds the daemon in release mode and starts it on a fresh SQLite data directory with the
# default settings (batched audit, progress bookkeeping on, log level warn). The load is
# POST /v1/verify alternating between a native API key and a native RS256 access token
# (bench/mixed.lua), sent by wrk with 2 threads:
#   1. a full-load run (32 connections) measures the maximum rate;
#   2. short paced runs set the number of connections that gives 70 % of it (each connection
#      waits BENCH_PACING_MS between requests, because wrk has no rate option);
#   3. the soak run lasts SOAK_SECONDS, while the daemon's VmRSS is sampled every 5 seconds.
# Afterwards the daemon is stopped with SIGTERM (which flushes the audit queue), and the verify
# events in its database are compared with the verify decisions its /metrics counted over its
# whole life (setup, full-load and calibration runs included), less the admin API calls of the
# setup, which authenticate through the same pipeline but record admin events. The result is written as
# Markdown to SOAK_OUTPUT, which bench/report.py includes in BENCHMARKS.md at the next
# bench/run.sh, and the raw outputs stay in bench/results-soak/.
#
# Settings (environment):
#   SOAK_SECONDS        length of the soak run in seconds (default 600)
#   SOAK_WARMUP_SECONDS samples before this time are the warm-up (default 60)
#   SOAK_SHARE          share of the maximum rate to hold (default 0.7)
#   SOAK_OUTPUT         Markdown result (default bench/soak.md)
#   BENCH_PACING_MS     pause of each connection between requests (default 10)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SOAK_SECONDS=${SOAK_SECONDS:-600}
WARMUP_SECONDS=${SOAK_WARMUP_SECONDS:-60}
SHARE=${SOAK_SHARE:-0.7}
OUTPUT=${SOAK_OUTPUT:-$BENCH/soak.md}
PACING_MS=${BENCH_PACING_MS:-10}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RESULTS="$BENCH/results-soak"
WORK=$(mktemp -d /tmp/authbridge-soak.XXXXXX)
DAEMON_PID=""
SAMPLER_PID=""

log() { echo "soak: $*" >&2; }

cleanup() {
    [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null
    [[ -n "$DAEMON_PID" ]] && kill "$DAEMON_PID" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

if ! command -v wrk >/dev/null; then
    log "installing wrk with apt-get"
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

log "building authbridge in release mode"
(cd "$ROOT" && cargo build --release --quiet --bin authbridge)
AUTHBRIDGE="$TARGET_DIR/release/authbridge"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$PORT"
export AUTHBRIDGE_DATABASE__DATA_DIR="$WORK/data"
export AUTHBRIDGE_LOGGING__LEVEL=warn
# Tokens must outlive the whole run.
export AUTHBRIDGE_TOKENS__LIFETIME_SECONDS=86400
AB="http://127.0.0.1:$PORT"

ADMIN_KEY=$("$AUTHBRIDGE" bootstrap --json 2>>"$WORK/daemon.log" | json_field apiKey)
"$AUTHBRIDGE" serve 2>>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 1 300); do
    curl -s -o /dev/null "$AB/healthz" && break
    sleep 0.1
done

TENANT=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name":"acme"}' "$AB/v1/tenants" | json_field id)
MACHINE=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"name":"billing","roles":{"'"$TENANT"'":["reader"]}}' "$AB/v1/tenants/$TENANT/machines")
CLIENT_ID=$(echo "$MACHINE" | json_field clientId)
CLIENT_SECRET=$(echo "$MACHINE" | json_field clientSecret)
API_KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"role":"readonly","mode":"live"}' "$AB/v1/tenants/$TENANT/api-keys" | json_field key)
TOKEN=$(curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "$AB/oauth/token" \
    | json_field access_token)
for credential in "$API_KEY" "$TOKEN"; do
    answer=$(curl -s -X POST -H "Authorization: Bearer $credential" "$AB/v1/verify")
    if [[ "$(echo "$answer" | json_field valid)" != True ]]; then
        log "a soak credential does not verify: $answer"
        exit 1
    fi
done
export BENCH_CREDENTIALS="$API_KEY $TOKEN"

# Prints the Requests/sec figure of a wrk output file.
wrk_rate() { awk '/^Requests\/sec:/ {print $2}' "$1"; }

log "measuring the maximum rate (15 s, 32 connections)"
wrk -t2 -c32 -d15s --latency -s "$BENCH/mixed.lua" "$AB" >"$RESULTS/max.txt"
MAX_RATE=$(wrk_rate "$RESULTS/max.txt")
TARGET_RATE=$(python3 -c "print(round($MAX_RATE * $SHARE))")
log "maximum $MAX_RATE requests/s; holding $TARGET_RATE requests/s"

# Each paced connection sends about 1000 / (pause + latency) requests per second, so the
# first guess assumes 1 ms of latency and one more short run corrects it.
CONNECTIONS=$(python3 -c "print(max(2, round($TARGET_RATE * ($PACING_MS + 1) / 1000)))")
for attempt in 1 2; do
    BENCH_DELAY_MS=$PACING_MS wrk -t2 -c"$CONNECTIONS" -d10s -s "$BENCH/mixed.lua" "$AB" \
        >"$RESULTS/calibrate-$attempt.txt"
    reached=$(wrk_rate "$RESULTS/calibrate-$attempt.txt")
    CONNECTIONS=$(python3 -c "print(max(2, round($CONNECTIONS * $TARGET_RATE / $reached)))")
    log "calibration $attempt: $reached requests/s; next run uses $CONNECTIONS connections"
done

log "soak: $SOAK_SECONDS s at about $TARGET_RATE requests/s ($CONNECTIONS connections)"
(
    start=$(date +%s)
    while kill -0 "$DAEMON_PID" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null || echo "")
        [[ -n "$rss" ]] && echo "$(($(date +%s) - start)) $rss"
        sleep 5
    done
) >"$RESULTS/rss.txt" &
SAMPLER_PID=$!
BENCH_DELAY_MS=$PACING_MS wrk -t2 -c"$CONNECTIONS" -d"${SOAK_SECONDS}s" --latency -s "$BENCH/mixed.lua" "$AB" \
    >"$RESULTS/soak.txt"
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
DECISIONS=$(curl -s "$AB/metrics" | awk '/^authbridge_verifications_total/ {sum += $2} END {print sum + 0}')
HWM_KIB=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status")

log "stopping the daemon (SIGTERM flushes the audit queue)"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=""
python3 - "$WORK/data" >"$RESULTS/audit.txt" <<'EOF'
import glob, sqlite3, sys
database = glob.glob(sys.argv[1] + "/*.db")[0]
connection = sqlite3.connect(database)
count = lambda sql: connection.execute(sql).fetchone()[0]
# Each admin API call of the setup authenticates its admin key through the same pipeline, which
# /metrics counts as a verify decision, and records an admin event instead of a verify event.
print(count("SELECT COUNT(*) FROM audit_events WHERE action = 'verify'"),
      count("SELECT COUNT(*) FROM audit_events WHERE action LIKE 'admin:%'"))
EOF
"$AUTHBRIDGE" audit verify >"$RESULTS/audit-verify.txt" 2>&1 || {
    log "authbridge audit verify failed:"
    cat "$RESULTS/audit-verify.txt" >&2
    exit 1
}

python3 - "$RESULTS" "$OUTPUT" "$MAX_RATE" "$TARGET_RATE" "$CONNECTIONS" "$PACING_MS" \
    "$SOAK_SECONDS" "$WARMUP_SECONDS" "$DECISIONS" "$HWM_KIB" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'EOF'
import datetime, os, re, sys

(results, output, max_rate, target_rate, connections, pacing, seconds, warmup,
 decisions, hwm_kib, commit) = sys.argv[1:]
soak = open(os.path.join(results, "soak.txt")).read()

def number(pattern, default=0.0):
    match = re.search(pattern, soak)
    return float(match.group(1)) if match else default

def latency(label):
    match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\b", soak, re.M)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

requests = int(number(r"(\d+) requests in"))
rate = number(r"Requests/sec:\s+([\d.]+)")
non_2xx = int(number(r"Non-2xx or 3xx responses: (\d+)"))
socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", soak))
samples = [tuple(map(int, line.split())) for line in open(os.path.join(results, "rss.txt")) if line.strip()]
after_warmup = [rss for at, rss in samples if at >= int(warmup)]
warm = after_warmup[0] if after_warmup else None
peak = max(after_warmup) if after_warmup else None
final = after_warmup[-1] if after_warmup else None
growth = (peak - warm) / warm * 100 if warm else None
audited, admin_calls = map(int, open(os.path.join(results, "audit.txt")).read().split())
decisions = int(float(decisions))
chain = open(os.path.join(results, "audit-verify.txt")).read().strip().splitlines()

mib = lambda kib: f"{kib / 1024:.1f} MiB"
ok_errors = non_2xx == 0 and socket_errors == 0
ok_audit = audited == decisions - admin_calls
ok_memory = growth is not None and growth < 10
lines = [
    "## Soak",
    "",
    f"`bench/soak.sh` on {datetime.date.today().isoformat()}, commit {commit}, "
    f"{os.cpu_count()} cores shared by the daemon and wrk. Load: `POST /v1/verify` alternating "
    "a native API key and a native RS256 token (`bench/mixed.lua`), SQLite store, batched audit.",
    "",
    "| measure | value |",
    "|---|---|",
    f"| maximum rate (15 s, 32 connections) | {float(max_rate):,.0f} requests/s |",
    f"| soak length | {int(seconds)} s, {connections} connections pausing {pacing} ms |",
    f"| rate held | {rate:,.0f} requests/s = {rate / float(max_rate):.2f} of the maximum |",
    f"| requests completed | {requests:,} |",
    f"| latency p50 / p99 | {latency('50'):.2f} ms / {latency('99'):.2f} ms |",
    f"| non-2xx answers, socket errors | {non_2xx}, {socket_errors} |",
    f"| verify decisions counted by /metrics over the daemon's life | {decisions:,} |",
    f"| of which admin API calls of the setup (audited as admin events) | {admin_calls:,} |",
    f"| verify events in the audit table after shutdown | {audited:,} |",
    f"| resident memory after {warmup} s warm-up / peak after it / at the end | "
    f"{mib(warm)} / {mib(peak)} / {mib(final)} |" if warm else "| resident memory | no samples |",
    f"| growth after warm-up | {growth:.1f} % |" if growth is not None else "| growth | not measured |",
    f"| VmHWM (whole run, including the full-load runs) | {mib(int(hwm_kib))} |",
    f"| `authbridge audit verify` | {chain[-1] if chain else 'no output'} |",
    "",
    ("Zero errors: met. " if ok_errors else "Zero errors: **missed**. ")
    + ("One audit event per decision: met. " if ok_audit else "One audit event per decision: **missed**. ")
    + ("Memory growth under 10 % after warm-up: met." if ok_memory else "Memory growth under 10 % after warm-up: **missed**."),
    "",
]
open(output, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
log "wrote $OUTPUT"
