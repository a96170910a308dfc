#!/usr/bin/env bash
# The whole test suite: unit, integration, property and doc tests, then the loom models of the
# lock-free ring and free list. Run from anywhere; installs nothing it cannot find in the registries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked
# loom explores every interleaving of tests/loom.rs; its own target dir keeps the cfg apart.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --locked --release --test loom
