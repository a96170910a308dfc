#!/usr/bin/env bash
# Throw-away NATS JetStream servers for the fleet tests and measurements: installs nats-server
# from Debian's packages when missing, then runs servers in the foreground, each with its store
# in DIR. Nothing touches a system-wide NATS.
#
#   tools/nats.sh --install              # only installs it when missing (tools/test.sh)
#   tools/nats.sh --path                 # prints the nats-server binary (installing it first)
#   tools/nats.sh DIR PORT               # one JetStream server on 127.0.0.1:PORT, until killed
#   tools/nats.sh DIR PORT NAME ROUTES   # one server of a cluster: NAME, cluster port PORT+1000,
#                                        # ROUTES = comma-separated cluster ports of the others
#
# tests/fleet.rs starts its servers itself (the binary from --path), so that it can stop,
# restart and kill them; a person can start a cluster of three by hand with:
#   for i in 0 1 2; do tools/nats.sh /tmp/n$i $((4222+i)) n$i 5222,5223,5224 & done
set -euo pipefail
bin() {
    for b in nats-server /usr/sbin/nats-server /usr/bin/nats-server; do
        if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
    done
    return 1
}
. "$(dirname "$0")/debian-install.sh"
install() {
    debian_install nats-server bin nats-server
}
case "${1:-}" in
--install) install; exit 0 ;;
--path) install; bin; exit 0 ;;
esac
[ $# -eq 2 ] || [ $# -eq 4 ] || { echo "usage: $0 DIR PORT [NAME ROUTES] | --install | --path" >&2; exit 2; }
install
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
args=(-a 127.0.0.1 -p "$2" -js -sd "$dir")
if [ $# -eq 4 ]; then
    routes=""
    IFS=, read -ra ports <<<"$4"
    for p in "${ports[@]}"; do routes+="${routes:+,}nats-route://127.0.0.1:$p"; done
    args+=(-n "$3" --cluster_name warden --cluster "nats://127.0.0.1:$(($2 + 1000))" --routes "$routes")
fi
exec "$(bin)" "${args[@]}"
