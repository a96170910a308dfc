#!/usr/bin/env bash
# SoftHSM2 for warden's tests: installs it from Debian's packages when it is missing, then
# initialises throw-away tokens in a directory of their own.
#
#   tools/softhsm.sh setup DIR   # prints `export VAR=...` lines; eval them before the tests
#
# DIR gets softhsm2.conf, tokens/, and pin files (mode 0600). Tokens (user PIN, SO PIN):
#   warden-test        the token most tests share
#   warden-fault-1..4  one per fault test (wrong PIN, closed sessions, removed token, timeout)
# The PINs are test PINs for throw-away tokens; nothing else uses them.
set -euo pipefail

module_path() {
    for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
             /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
        [ -e "$m" ] && { echo "$m"; return 0; }
    done
    return 1
}

install() {
    if module_path >/dev/null && command -v softhsm2-util >/dev/null; then return 0; fi
    echo "softhsm.sh: SoftHSM2 is missing; installing it from Debian's packages" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq softhsm2 >&2
    module_path >/dev/null || { echo "softhsm.sh: libsofthsm2.so not found after installing" >&2; exit 1; }
}

setup() {
    local dir="$1"
    mkdir -p "$dir/tokens"
    dir="$(cd "$dir" && pwd)"
    cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    export SOFTHSM2_CONF="$dir/softhsm2.conf"
    local label
    for label in warden-test warden-fault-1 warden-fault-2 warden-fault-3 warden-fault-4; do
        softhsm2-util --init-token --free --label "$label" --so-pin 87654321 --pin 123456 >/dev/null
    done
    umask 077
    echo 123456 >"$dir/user.pin"
    echo 87654321 >"$dir/so.pin"
    echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
    echo "export WARDEN_TEST_PKCS11_MODULE=$(module_path)"
    echo "export WARDEN_TEST_PIN_FILE=$dir/user.pin"
    echo "export WARDEN_TEST_TOKEN_DIR=$dir/tokens"
}

case "${1:-}" in
    install) install ;;
    setup) [ $# -eq 2 ] || { echo "usage: $0 setup DIR" >&2; exit 2; }; install; setup "$2" ;;
    *) echo "usage: $0 install | setup DIR" >&2; exit 2 ;;
esac
