#!/usr/bin/env bash
# A Java runtime for the test that holds warden's model of Java's URL decoder to OpenJDK's
# (inputs::tests::java_reading_is_openjdk_s, which runs tools/lenient-decoders/JavaDecode.java):
# installs openjdk-17-jre-headless from Debian's packages when `java` is missing.
#
#   tools/java.sh --install   # only installs it when missing (tools/test.sh)
#   tools/java.sh --path      # prints the java binary (installing it first)
set -euo pipefail
bin() {
    command -v java 2>/dev/null
}
install() {
    bin >/dev/null && return
    # (one installs where several ask at once: two apt-gets at once fail on dpkg's lock)
    exec 9>"${TMPDIR:-/tmp}/warden-java-install.lock"
    flock 9
    if ! bin >/dev/null; then
        echo "java.sh: java is missing; installing openjdk-17-jre-headless from Debian's packages" >&2
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless >&2
    fi
    flock -u 9
    bin >/dev/null || { echo "java.sh: java is still missing after the install" >&2; exit 1; }
}
case "${1:-}" in
--install) install ;;
--path) install; bin ;;
*) echo "usage: $0 --install | --path" >&2; exit 2 ;;
esac
