#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer for SECONDS each (default 60). Installs cargo-fuzz from
# crates.io when missing. Uses `--sanitizer none`, whose flags are all stable Rust: the default
# address sanitizer needs a nightly toolchain. Crashes land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in decode_request json_request config_toml token policy_toml scan threat_files audit_record resource ipc_ring; do
    echo "== $t ($secs s)"
    mkdir -p "fuzz/corpus/$t"
    # seeds (valid inputs, in the tree) get libFuzzer past magic prefixes it cannot see
    # through without the sanitizer's comparison hooks
    cargo fuzz run -O -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 \
        | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|.*panicked)" || true
    if [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
        echo "crash found for $t: fuzz/artifacts/$t" >&2
        exit 1
    fi
done
echo "all fuzz targets ran $secs s without a crash"
