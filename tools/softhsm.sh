#!/usr/bin/env bash
# SoftHSM2 for warden: installs it from Debian's packages when it is missing, then makes tokens
# in a directory of their own. Running it again on the same directory makes nothing twice.
#
#   eval "$(tools/softhsm.sh demo DIR)"   # one token labelled `warden`, DIR/hsm.pin (0600) and
#                                         # DIR/hsm.toml, a warden config that uses them; sets
#                                         # SOFTHSM2_CONF, which SoftHSM2 reads to find DIR
#   tools/softhsm.sh setup DIR            # the test suite's tokens; prints `export VAR=...`
#                                         # lines for the tests (tools/test.sh evals them)
#
# setup's tokens (user PIN, SO PIN):
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

. "$(dirname "$0")/debian-install.sh"
softhsm_present() {
    module_path && command -v softhsm2-util
}
install() {
    debian_install softhsm2 softhsm_present softhsm2
}

# A SoftHSM2 configuration whose tokens live in DIR/tokens; prints DIR as an absolute path.
conf() {
    local dir="$1"
    mkdir -p "$dir/tokens"
    dir="$(cd "$dir" && pwd)"
    cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    echo "$dir"
}

# Initialises a token labelled $1 unless one is there already.
token() {
    if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+$1[[:space:]]*$"; then
        return 0
    fi
    softhsm2-util --init-token --free --label "$1" --so-pin 87654321 --pin 123456 >/dev/null
}

demo() {
    local dir
    dir="$(conf "$1")"
    export SOFTHSM2_CONF="$dir/softhsm2.conf"
    token warden
    (umask 077; echo 123456 >"$dir/hsm.pin")
    cat >"$dir/hsm.toml" <<TOML
# warden with a PKCS#11 token: SoftHSM2's, made by tools/softhsm.sh demo.
[hsm]
module = "$(module_path)"
token_label = "warden"
pin_file = "$dir/hsm.pin"   # or the environment variable WARDEN_HSM_PIN
[identity]
keystore_hmac_key_id = 5    # tokens naming key 5 are verified by the token's HMAC key
TOML
    echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
    echo "# a SoftHSM2 token labelled warden, its PIN in $dir/hsm.pin; the config is $dir/hsm.toml" >&2
}

setup() {
    local dir
    dir="$(conf "$1")"
    export SOFTHSM2_CONF="$dir/softhsm2.conf"
    local label
    for label in warden-test warden-fault-1 warden-fault-2 warden-fault-3 warden-fault-4; do
        token "$label"
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
    demo) [ $# -eq 2 ] || { echo "usage: $0 demo DIR" >&2; exit 2; }; install; demo "$2" ;;
    *) echo "usage: $0 install | setup DIR | demo DIR" >&2; exit 2 ;;
esac
