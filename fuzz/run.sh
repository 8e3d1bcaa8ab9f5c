#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS seconds each (default 60).
# Installs cargo-fuzz from crates.io when it is missing. cargo-fuzz passes nightly-only flags to
# rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in jws_parse api_key_parse jwks_parse config_parse classify; do
    echo "=== fuzzing ${target} for ${seconds} s ==="
    cargo fuzz run "$target" "corpus/${target}" -- -max_total_time="$seconds" -max_len=8192
done
