#!/usr/bin/env bash
# The scaling curve: `warden bench` on 1, 2, 4 and 8 cores, with as many client threads as cores
# and with twice as many (where the machine has the CPUs), batch 16, then batch 1 at one client
# per core. One JSON report per run in OUT (default ./scaling-out), the machine's description,
# and a summary table (summary.txt). WARDEN names the binary (default target/release/warden);
# SECS the seconds per run (default 4). Falls back to engine.executor = "threads" where
# io_uring is unavailable (a sandboxed kernel), and says so in the table.
set -euo pipefail
w="${WARDEN:-target/release/warden}"
out="${OUT:-scaling-out}"
secs="${SECS:-4}"
mkdir -p "$out"
cpus=$(nproc)
{ echo "nproc $cpus"; uname -a; grep -m1 'model name' /proc/cpuinfo || true; } > "$out/machine.txt"
printf '[engine]\nexecutor = "threads"\n' > "$out/threads.toml"
run() { # cores threads batch
    local f="$out/c$1-t$2-b$3.json" exec=glommio
    if ! "$w" bench --seconds "$secs" --cores "$1" --threads "$2" --batch "$3" --json > "$f" 2> "$f.err"; then
        exec=threads
        "$w" -c "$out/threads.toml" bench --seconds "$secs" --cores "$1" --threads "$2" --batch "$3" --json > "$f" 2> "$f.err"
    fi
    python3 - "$f" "$1" "$2" "$3" "$exec" >> "$out/summary.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); l = r["metrics"]["latency"]
print(f"{sys.argv[2]:>5} {sys.argv[3]:>7} {sys.argv[4]:>5} {sys.argv[5]:>8} {r['requests_per_s']/1e6:>8.2f} {l['p50_ns']/1e3:>8.1f} {l['p99_ns']/1e3:>8.1f} {r['metrics']['cache_hit_rate']*100:>6.1f}")
PY
}
echo "cores threads batch executor  M req/s  p50 us   p99 us  hit %" > "$out/summary.txt"
for c in 1 2 4 8; do
    [ "$c" -le "$cpus" ] || continue
    run "$c" "$c" 16
    t2=$((2 * c))
    if [ $((c + t2)) -le "$cpus" ]; then run "$c" "$t2" 16; fi
done
for c in 1 2 4 8; do
    [ "$c" -le "$cpus" ] || continue
    run "$c" "$c" 1
done
cat "$out/machine.txt" "$out/summary.txt"
