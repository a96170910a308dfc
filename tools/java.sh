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
. "$(dirname "$0")/debian-install.sh"
install() {
    debian_install java bin openjdk-17-jre-headless
}
case "${1:-}" in
--install) install ;;
--path) install; bin ;;
*) echo "usage: $0 --install | --path" >&2; exit 2 ;;
esac
