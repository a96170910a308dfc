#!/usr/bin/env bash
# A flame graph of any command with perf (kernel sampling, `-e cpu-clock`, so it works where
# hardware counters do not) and inferno. Where perf is not allowed, use the in-process profiler:
# `cargo run --release --features flamegraph -- bench --flamegraph out.svg`.
#
#   tools/flamegraph.sh OUT.svg -- COMMAND [ARGS...]
#   tools/flamegraph.sh /tmp/bench.svg -- target/release/warden bench --seconds 3
#
# Installs inferno (inferno-collapse-perf, inferno-flamegraph) under target/tools the first time.
set -euo pipefail
usage() { echo "usage: $0 OUT.svg -- COMMAND [ARGS...]" >&2; exit 2; }
[ $# -ge 3 ] && [ "$2" = "--" ] || usage
out=$1; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/tools/bin"
command -v perf >/dev/null || { echo "$0: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
if [ ! -x "$bin/inferno-flamegraph" ]; then
    echo "$0: installing inferno into target/tools (once)" >&2
    cargo install --quiet --locked inferno --root "$root/target/tools" >&2
fi
data=$(mktemp /tmp/warden-perf.XXXXXX)
trap 'rm -f "$data"' EXIT
perf record -e cpu-clock -F 999 -g -o "$data" -- "$@"
perf script -i "$data" 2>/dev/null | "$bin/inferno-collapse-perf" | "$bin/inferno-flamegraph" > "$out"
echo "$0: wrote $out" >&2
