#!/usr/bin/env bash
# The alternative to a fleet that gateways deploy today: a shared store asked on every request
# (a Redis lookup of the revocation list). Installs redis from Debian's packages when missing,
# starts a private redis-server on 127.0.0.1 (no persistence) with 10,000 revoked agents in a
# set, and measures one client asking SISMEMBER for each request, one at a time (what a gateway
# thread waits per request), with redis-benchmark. PERF.md "Fleet" sets it beside warden's
# request path, which asks nothing over the network.
#
#   tools/redis-peer.sh [REQUESTS]
set -euo pipefail
n="${1:-200000}"
. "$(dirname "$0")/debian-install.sh"
redis_present() {
    command -v redis-server && command -v redis-benchmark
}
debian_install redis redis_present redis-server redis-tools
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize no >"$dir/redis.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
seq 1 10000 | sed 's/^/SADD revoked acme\/agent-/' | redis-cli -p "$port" >/dev/null
echo "redis $(redis-server --version | grep -o 'v=[0-9.]*'), $(nproc) CPUs; $n lookups, 1 client, 1 at a time:"
redis-benchmark -p "$port" -c 1 -n "$n" --csv SISMEMBER revoked acme/agent-77
