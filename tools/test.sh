#!/usr/bin/env bash
# The whole test suite: unit, integration, property and doc tests; the cedar-policy differential
# test (its own workspace member); then the loom models of the lock-free ring and free list.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked
cargo test --locked -p warden-cedar-bench
# loom explores every interleaving of tests/loom.rs; its own target dir keeps the cfg apart.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --locked --release --test loom
