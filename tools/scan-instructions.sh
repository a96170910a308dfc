#!/usr/bin/env bash
# Instructions (and simulated D1 misses) per threat scan of a 4 KiB text, counted by cachegrind:
# the difference between 0 and 1,000 scans, divided by 1,000, which moves ±0.3 % between runs
# (start-up varies by ~0.1 M instructions; with 100 scans the figure moved ±4 %), where this VM's
# timings move ±30 %. Compare a change with its parent by running this on both. Installs
# valgrind from Debian's packages when missing.
#   tools/scan-instructions.sh            # both texts
#   tools/scan-instructions.sh PROSE      # benign prose only (or ATTACKS, or CHECK: the 1 KiB
#                                         # content of benches/check.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release --quiet --example scan_profile
bin=target/release/examples/scan_profile
count() { # SCANS TEXT -> "instructions d1-misses"
    SCANS=$1 valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file=/dev/null \
        "$bin" "$2" 2>&1 | tr -d , | awk '/I *refs/ {i=$4} /D1  misses/ {d=$4} END {print i, d}'
}
for text in ${1:-PROSE ATTACKS}; do
    read -r i0 d0 < <(count 0 "$text")
    read -r i1 d1 < <(count 1000 "$text")
    echo "$text: $(( (i1 - i0) / 1000 )) instructions a scan, $(( (d1 - d0) / 1000 )) D1 misses"
done
