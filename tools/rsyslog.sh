#!/usr/bin/env bash
# A private rsyslog for the SIEM tests: installs rsyslog from Debian's packages when missing,
# then runs `rsyslogd` in the foreground with a config of its own in DIR: RFC 5424 over UDP on
# 127.0.0.1:PORT and over the Unix datagram socket DIR/log.sock, every message written to
# DIR/out.log as `APP-NAME|MSGID|STRUCTURED-DATA|MSG`, one per line (so a test sees what
# rsyslog's own parser made of each message). It never touches the system's syslog.
#
#   tools/rsyslog.sh DIR PORT     # runs until killed (the caller starts it in the background)
#   tools/rsyslog.sh --install    # only installs it when missing (tools/test.sh, before the tests)
set -euo pipefail
. "$(dirname "$0")/debian-install.sh"
rsyslogd_present() {
    command -v rsyslogd
}
install() {
    debian_install rsyslog rsyslogd_present rsyslog
}
if [ "${1:-}" = "--install" ]; then
    install
    exit 0
fi
[ $# -eq 2 ] || { echo "usage: $0 DIR PORT | --install" >&2; exit 2; }
install
dir="$(cd "$1" && pwd)"
cat >"$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="$2")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$dir/log.sock" UseSpecialParser="off" ParseHostname="on")
template(name="fields" type="string" string="%app-name%|%msgid%|%structured-data%|%msg%\n")
*.* action(type="omfile" file="$dir/out.log" template="fields")
CONF
exec "$(command -v rsyslogd)" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid"
