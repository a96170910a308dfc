#!/usr/bin/env bash
# The whole test suite: unit, integration, property and doc tests, with the `fleet` feature (the
# HSM tests against a SoftHSM2 token made by tools/softhsm.sh, the fleet tests against private
# nats-servers); the cedar-policy differential
# test (its own workspace member); then the loom models of the lock-free ring and free list.
set -euo pipefail
cd "$(dirname "$0")/.."
# A real SoftHSM2 token for the HSM tests (installed from Debian's packages when missing), in a
# throw-away directory.
hsm_dir="$(mktemp -d)"
trap 'rm -rf "$hsm_dir"' EXIT
eval "$(tools/softhsm.sh setup "$hsm_dir")"
# rsyslog for the SIEM tests (tests/siem.rs starts private instances), installed when missing.
tools/rsyslog.sh --install
# nats-server for the fleet tests (tests/fleet.rs starts private servers), installed when missing.
tools/nats.sh --install
# A Java runtime for the test that holds warden's model of Java's URL decoder to OpenJDK's
# (inputs::tests::java_reading_is_openjdk_s), installed when missing; the test fails rather than
# skips where the suite asks for it.
tools/java.sh --install
export WARDEN_TEST_JAVA=required
# The evaluation tools (tools/*.py) parse: the suite does not run them, and a syntax error in
# one passed it once (205768a).
python3 -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' tools/*.py
# `fleet` builds the NATS client in, for tests/fleet.rs and examples/fleet_node.rs.
cargo test --locked --features fleet
cargo test --locked -p warden-cedar-bench
# loom explores every interleaving of tests/loom.rs (the `loom` feature swaps in its atomics).
cargo test --locked --features loom --test loom
