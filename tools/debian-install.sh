# Sourced by the tools that need a program from Debian's packages (java.sh, nats.sh,
# redis-peer.sh, rsyslog.sh, softhsm.sh); not run alone.
#
#   debian_install NAME CHECK PACKAGE...
#
# Installs PACKAGE... unless the command CHECK succeeds, and fails, saying so, where CHECK still
# fails afterwards. Tests start several tools at once: under a lock named after NAME one installs
# and the others wait for it, then look again (two apt-gets at once fail on dpkg's lock). As root,
# or with sudo.
debian_install() {
    local name="$1" check="$2"
    shift 2
    "$check" >/dev/null 2>&1 && return 0
    exec 9>"${TMPDIR:-/tmp}/warden-$name-install.lock"
    flock 9
    if ! "$check" >/dev/null 2>&1; then
        echo "$name: missing; installing $* from Debian's packages" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
    fi
    flock -u 9
    exec 9>&-
    "$check" >/dev/null 2>&1 || { echo "$name: still missing after installing $*" >&2; exit 1; }
}
